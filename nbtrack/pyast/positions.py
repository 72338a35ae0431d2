"""Where an ast node sits in its source text, and editing that text in place.

:mod:`ast` reports a column as a count of UTF-8 *bytes* from the start of the line, while
Python strings are indexed by *characters*; any non-ASCII text earlier on a line
(``título = "x"; lr = 1``) makes the two differ. Lines end at ``\\r\\n``, ``\\r`` or
``\\n`` only, the tokenizer's rule: ``str.splitlines`` also splits on form feeds and other
separators that are not newlines to Python, and would shift every later line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

__all__ = ["line_starts", "source_lines", "char_offset", "node_span", "apply_edits", "Edit"]

#: One replacement: ``(start, end, new text)`` in character offsets of the source.
Edit = tuple[int, int, str]

_NEWLINE = re.compile(r"\r\n|\r|\n")


def line_starts(source: str) -> list[int]:
    """Character offset where each line of ``source`` begins (index 0 is line 1)."""
    return [0, *(m.end() for m in _NEWLINE.finditer(source))]


def source_lines(source: str) -> list[str]:
    """The lines of ``source`` as ast numbers them (line ``n`` is index ``n - 1``), each
    with its line ending."""
    starts = line_starts(source)
    ends = [*starts[1:], len(source)]
    lines = [source[start:end] for start, end in zip(starts, ends, strict=True)]
    return lines[:-1] if lines and not lines[-1] else lines


def char_offset(source: str, starts: list[int], lineno: int, col_byte: int) -> int:
    """Character offset in ``source`` of the ast position ``(lineno, col_byte)``.

    ``starts`` is :func:`line_starts` of ``source`` (computed once per source by the
    caller, since a cell has many nodes).
    """
    line_start = starts[lineno - 1]
    line_end = starts[lineno] if lineno < len(starts) else len(source)
    prefix = source[line_start:line_end].encode("utf-8")[:col_byte]
    # An ast column always falls between characters; "ignore" only guards against a
    # position from a different source, which then lands on the character before.
    return line_start + len(prefix.decode("utf-8", "ignore"))


def node_span(source: str, starts: list[int], node: ast.expr | ast.stmt) -> tuple[int, int]:
    """``(start, end)`` character offsets of ``node`` in ``source``."""
    if node.end_lineno is None or node.end_col_offset is None:
        raise ValueError(f"{type(node).__name__} node has no end position")
    return (
        char_offset(source, starts, node.lineno, node.col_offset),
        char_offset(source, starts, node.end_lineno, node.end_col_offset),
    )


def apply_edits(source: str, edits: Iterable[Edit]) -> str:
    """``source`` with each ``(start, end, text)`` edit applied.

    Edits are applied back to front so earlier offsets stay valid. Raises ValueError when
    two edits overlap: the caller built them wrong, and applying them would corrupt code.
    """
    ordered = sorted(edits)
    for (_, prev_end, _), (start, _, _) in zip(ordered, ordered[1:], strict=False):
        if start < prev_end:
            raise ValueError("overlapping source edits")
    for start, end, text in reversed(ordered):
        source = source[:start] + text + source[end:]
    return source
