"""Small helpers over Python's ``ast`` shared by the capture code and the query parser."""

from __future__ import annotations

import ast


def dotted_name(node: ast.expr) -> str | None:
    """``np.random.seed`` for a Name/Attribute chain, ``None`` for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
