"""Names in Python code: dotted names, and the names a node binds or imports.

Small rules that several walkers share. The walkers themselves stay with their users
(capture's read scanner, the exporter's def/use analysis) because they answer different
questions; what a node binds is the same for all of them, so it is defined here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

__all__ = [
    "dotted_name",
    "argument_names",
    "imported",
    "imported_names",
    "imported_modules",
    "node_binds",
    "target_leaves",
]


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


def argument_names(args: ast.arguments) -> set[str]:
    """Every parameter name of a function or lambda (``*args`` and ``**kwargs`` too)."""
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {arg.arg for arg in every if arg is not None}


def imported(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str, bool]]:
    """``(bound name, dotted origin, is a plain import)`` for each name an import binds.

    ``import a.b`` binds ``a`` (origin ``a``); ``import a.b as c`` binds ``c`` (origin
    ``a.b``); ``from .m import x`` binds ``x`` (origin ``.m.x`` without the leading dot
    when absolute); ``from m import *`` binds nothing that can be named.
    """
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                yield alias.asname, alias.name, True
            else:
                top = alias.name.split(".")[0]
                yield top, top, True
    else:
        base = ("." * node.level) + (node.module or "")
        for alias in node.names:
            if alias.name != "*":
                yield alias.asname or alias.name, f"{base}.{alias.name}".lstrip("."), False


def imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The names an import statement binds (see :func:`imported`)."""
    return [name for name, _, _ in imported(node)]


def imported_modules(tree: ast.AST) -> Iterator[str]:
    """Top-level names of the modules ``tree`` imports anywhere (absolute imports only),
    in source order, repeats included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def node_binds(node: ast.AST) -> list[str]:
    """The names ``node`` itself binds, not counting its children.

    A name in store context (assignment, ``for``, ``with ... as``, walrus targets), a
    ``def``/``class`` name, imported names, ``except ... as`` names and ``match``
    captures (``case x``, ``case [*rest]``, ``case {**rest}``).
    """
    if isinstance(node, ast.Name):
        return [node.id] if isinstance(node.ctx, ast.Store) else []
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return imported_names(node)
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
        return [node.name]
    if isinstance(node, ast.MatchMapping) and node.rest:
        return [node.rest]
    return []


def target_leaves(target: ast.expr) -> Iterator[ast.expr]:
    """The leaves of an assignment target: names, subscripts and attributes."""
    if isinstance(target, ast.Tuple | ast.List):
        for elt in target.elts:
            yield from target_leaves(elt)
    elif isinstance(target, ast.Starred):
        yield from target_leaves(target.value)
    else:
        yield target
