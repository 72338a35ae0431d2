"""Parameters of a cell: the literal values its top-level assignments give to names.

Everything here is pure :mod:`ast` work on Python source. Callers pass source that has
already been transformed from IPython syntax (magics, ``!cmd``) to plain Python, so
nothing here imports IPython.

A *parameter* is a module-level (not nested in ``if``/``for``/``def``/``with``...)
assignment whose value is a Python literal, as :func:`ast.literal_eval` understands it::

    lr = 1e-3                 # lr
    epochs: int = 10          # annotated
    a = b = 2                 # both a and b
    width, depth = 64, 3      # tuple unpacking, element by element
    layers = [64, 64]         # containers of literals

Assignments of anything else (``x = f()``, ``x = y``, ``x = 2 ** 10``) are not parameters.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from typing import Any

from nbtrack.errors import UsageError

__all__ = [
    "extract_params",
    "parse_set_option",
    "apply_overrides",
    "papermill_params",
    "notebook_parameter_cells",
    "PAPERMILL_MARKER",
    "PARAMETER_TAGS",
]

#: First line of the cell papermill injects with the values given by ``-p``.
PAPERMILL_MARKER = "# Parameters"

#: Cell tags that mark parameter cells: papermill's own and the one it injects.
PARAMETER_TAGS = frozenset({"parameters", "injected-parameters"})

# Errors literal_eval can raise on input that is not a literal: ValueError/TypeError for
# non-literal nodes, SyntaxError for unparsable text, MemoryError/RecursionError for
# pathologically nested input (a user can type anything after --set).
_LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)


@dataclass(frozen=True)
class _Binding:
    """One top-level literal assignment of one name: where its value node sits."""

    name: str
    node: ast.expr  # the literal value node (an element of a tuple for unpacking)
    value: object


def _parse(source: str) -> ast.Module | None:
    """Parse ``source``, or None when it is not valid Python."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: null bytes on some Python versions
        return None


def _literal(node: ast.expr) -> tuple[bool, object]:
    """``(True, value)`` when ``node`` is a literal, else ``(False, None)``."""
    try:
        return True, ast.literal_eval(node)
    except _LITERAL_ERRORS:
        return False, None


def _bind(target: ast.expr, value: ast.expr) -> Iterator[_Binding]:
    """Literal bindings one assignment target makes from one value node."""
    if isinstance(target, ast.Name):
        ok, literal = _literal(value)
        if ok:
            yield _Binding(target.id, value, literal)
        return
    if isinstance(target, ast.Tuple | ast.List):
        # Unpacking is only followed element by element when the value is a tuple/list
        # display of the same length; ``a, b = pair`` or ``a, *b = 1, 2, 3`` bind nothing
        # we can point at, so they are not parameters.
        if (
            isinstance(value, ast.Tuple | ast.List)
            and len(target.elts) == len(value.elts)
            and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
        ):
            for sub_target, sub_value in zip(target.elts, value.elts, strict=True):
                yield from _bind(sub_target, sub_value)
    # Attribute and subscript targets (cfg.lr = 1, d["k"] = 1) are not parameters.


def _bindings(tree: ast.Module) -> list[_Binding]:
    """Every top-level literal binding in source order."""
    found: list[_Binding] = []
    for stmt in tree.body:  # module level only: nested statements may not run
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                found.extend(_bind(target, stmt.value))
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            found.extend(_bind(stmt.target, stmt.value))
    return found


def extract_params(source: str) -> dict[str, object]:
    """The parameters a cell sets: ``{name: value}`` for its top-level literal assignments.

    Later assignments of the same name win. Non-literal assignments are ignored (they do
    not remove an earlier literal: ``lr = 1e-3`` then ``lr = float(lr)`` still records
    ``lr``, the knob the user turns). Returns ``{}`` when ``source`` does not parse.
    """
    tree = _parse(source)
    if tree is None:
        return {}
    params: dict[str, object] = {}
    for binding in _bindings(tree):
        params[binding.name] = binding.value
    return params


def parse_set_option(text: str) -> tuple[str, object]:
    """Parse one ``--set KEY=VALUE`` option into ``(key, value)``.

    ``VALUE`` is read as a Python literal when it is one (``lr=1e-3``, ``layers=[64,64]``,
    ``flag=True``) and kept as the plain string otherwise, so ``--set opt=adam`` works
    without quotes. Raises :class:`UsageError` when there is no ``=`` or ``KEY`` is not a
    Python name.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not key.isidentifier() or keyword.iskeyword(key):
        raise UsageError(
            f"bad --set option {text!r}: expected KEY=VALUE where KEY is a Python name, "
            "e.g. --set lr=0.01 or --set opt=adam"
        )
    try:
        value: object = ast.literal_eval(raw.strip())
    except _LITERAL_ERRORS:
        value = raw  # not a literal: the user meant the text itself
    return key, value


def _value_source(value: object) -> str:
    """Python source for ``value`` that evaluates back to it, for writing into a cell."""
    if isinstance(value, float) and not math.isfinite(value):
        # repr gives 'nan'/'inf', which would be NameErrors in the cell.
        return f"float({str(value)!r})"
    text = repr(value)
    ok = True
    try:
        ast.literal_eval(text)
    except _LITERAL_ERRORS:
        ok = False
    if not ok:
        raise UsageError(
            f"cannot write {text} (a {type(value).__name__}) into the cell: a --set value "
            "must be a Python literal (number, string, bool, None, or a list/tuple/dict/set of them)"
        )
    return text


def _line_starts(source: str) -> list[int]:
    """Character offset where each line of ``source`` begins (index 0 is line 1).

    Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` — the same rule the tokenizer (and
    :func:`ast.get_source_segment`) uses, unlike ``str.splitlines`` which also splits on
    form feeds and other separators that are not newlines to Python.
    """
    return [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", source))]


def _char_offset(source: str, starts: list[int], lineno: int, col_byte: int) -> int:
    """Character offset in ``source`` of ast position ``(lineno, col_byte)``.

    ast column offsets count UTF-8 bytes, not characters, so any non-ASCII text earlier
    on the line (``título = "x"; lr = 1``) shifts them; convert through the encoded line.
    """
    line_start = starts[lineno - 1]
    line_end = starts[lineno] if lineno < len(starts) else len(source)
    prefix = source[line_start:line_end].encode("utf-8")[:col_byte]
    return line_start + len(prefix.decode("utf-8"))


def apply_overrides(source: str, overrides: dict[str, object]) -> str:
    """``source`` with each overridden parameter's literal value replaced by the new value.

    Every top-level literal assignment of an overridden name is rewritten (for tuple
    unpacking, just that element); everything else — comments, spacing, other lines — is
    kept byte for byte. Raises :class:`UsageError` for a key the cell has no top-level
    literal assignment of (naming the cell's parameters), for a value that is not a Python
    literal, and for ``a = b = 1`` when only one of the names is overridden (the shared
    value cannot change for one name alone).
    """
    if not overrides:
        return source
    tree = _parse(source)
    if tree is None:
        raise UsageError("cannot apply --set: the cell is not valid Python; fix it first")
    bindings = _bindings(tree)
    known = sorted({b.name for b in bindings})
    for key in overrides:
        if key not in known:
            have = ", ".join(known) if known else "none"
            raise UsageError(
                f"--set {key}: the cell has no top-level assignment of a literal to {key!r}; "
                f"its parameters are: {have}"
            )

    # Group by value node: ``a = b = 2`` binds both names to one node, which can only be
    # rewritten when every name it binds gets the same new value.
    by_node: dict[int, tuple[ast.expr, list[str]]] = {}
    for binding in bindings:
        entry = by_node.setdefault(id(binding.node), (binding.node, []))
        entry[1].append(binding.name)

    starts = _line_starts(source)
    edits: list[tuple[int, int, str]] = []
    for node, names in by_node.values():
        touched = [n for n in names if n in overrides]
        if not touched:
            continue
        new_values = [overrides[n] for n in touched]
        if len(touched) != len(names) or any(
            not _same(new_values[0], other) for other in new_values[1:]
        ):
            shared = " = ".join(names)
            raise UsageError(
                f"--set {touched[0]}: {shared} share one value in the cell; give them all the "
                "same --set value or assign them on separate lines"
            )
        assert node.end_lineno is not None and node.end_col_offset is not None
        start = _char_offset(source, starts, node.lineno, node.col_offset)
        end = _char_offset(source, starts, node.end_lineno, node.end_col_offset)
        edits.append((start, end, _value_source(new_values[0])))

    edits.sort()
    for (_, prev_end, _), (start, _, _) in zip(edits, edits[1:], strict=False):
        if start < prev_end:
            # ``a = (b, c) = 1, 2`` binds a to the tuple and b, c to its elements.
            raise UsageError(
                "cannot apply --set: the overridden names share nested values in one "
                "assignment; assign them on separate lines"
            )
    for start, end, text in reversed(edits):  # back to front keeps earlier offsets valid
        source = source[:start] + text + source[end:]
    return source


def _same(a: object, b: object) -> bool:
    """Equal and of the same type (1 and True and 1.0 are different --set values)."""
    return type(a) is type(b) and a == b


def papermill_params(sources: Iterable[str]) -> dict[str, object]:
    """Parameters from papermill's injected cells among ``sources`` (later cells win).

    papermill writes the values given with ``-p``/``-y`` into a cell whose first line is
    the comment ``# Parameters``; only such cells are read.
    """
    params: dict[str, object] = {}
    for source in sources:
        # Cheap test first: this runs over the kernel's whole history on every tracked cell.
        if PAPERMILL_MARKER not in source:
            continue
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        if first == PAPERMILL_MARKER:
            params.update(extract_params(source))
    return params


def notebook_parameter_cells(notebook_path: str | PathLike[str]) -> list[str]:
    """Sources of the code cells tagged ``parameters`` or ``injected-parameters``.

    Reads the ``.ipynb`` as plain JSON (no nbformat import). Returns ``[]`` on any error
    — a missing, unreadable or malformed notebook simply has no parameter cells to report.
    """
    try:
        with open(notebook_path, encoding="utf-8") as fh:
            nb: Any = json.load(fh)
        sources: list[str] = []
        for cell in nb.get("cells", []):
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            tags = (cell.get("metadata") or {}).get("tags") or []
            if not isinstance(tags, list) or not PARAMETER_TAGS.intersection(
                t for t in tags if isinstance(t, str)
            ):
                continue
            source = cell.get("source", "")
            # nbformat stores source either as one string or as a list of lines.
            sources.append("".join(source) if isinstance(source, list) else str(source))
        return sources
    except Exception:  # noqa: BLE001 - documented: any error means "no parameter cells"
        return []
