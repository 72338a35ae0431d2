"""Parameters of a cell: the literal values its top-level assignments give to names.

Callers pass source that has already been transformed from IPython syntax (magics,
``!cmd``) to plain Python, so nothing here imports IPython. What counts as a parameter,
and which assignment ``--set`` rewrites, is decided once in :mod:`nbtrack.pyast.bindings`
(the exporter's flags rewrite the same binding)::

    lr = 1e-3                 # lr
    epochs: int = 10          # annotated
    a = b = 2                 # both a and b (immutable value); --set a=3 splits the line
    width, depth = 64, 3      # tuple unpacking, element by element
    layers = [64, 64]         # containers of literals
    lr = 1e-3; lr = 1e-2      # the last literal binding is the parameter

Assignments of anything else (``x = f()``, ``x = y``, ``x = 2 ** 10``) are not parameters.
"""

from __future__ import annotations

import ast
import json
import keyword
from collections.abc import Iterable
from os import PathLike
from typing import Any

from nbtrack.errors import UsageError
from nbtrack.pyast.bindings import (
    LITERAL_ERRORS,
    parameter_bindings,
    parameter_values,
    parse_module,
    rewrite_bindings,
    value_source,
)

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


def extract_params(source: str) -> dict[str, object]:
    """The parameters a cell sets: ``{name: value}`` for its top-level literal assignments.

    The last literal assignment of a name wins. Non-literal assignments are ignored (they
    do not remove an earlier literal: ``lr = 1e-3`` then ``lr = float(lr)`` still records
    ``lr``, the knob the user turns). Returns ``{}`` when ``source`` does not parse.
    """
    return parameter_values(source)


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
    except LITERAL_ERRORS:
        value = raw  # not a literal: the user meant the text itself
    return key, value


def _value_source(value: object) -> str:
    """Python source for ``value`` that evaluates back to it, for writing into a cell."""
    try:
        return value_source(value)
    except ValueError:
        raise UsageError(
            f"cannot write {value!r} (a {type(value).__name__}) into the cell: a --set value "
            "must be a Python literal (number, string, bool, None, or a list/tuple/dict/set of them)"
        ) from None


def apply_overrides(source: str, overrides: dict[str, object]) -> str:
    """``source`` with each overridden parameter's value replaced by the new value.

    The parameter binding of each name (its last top-level literal assignment; for tuple
    unpacking, just that element) is rewritten, so the cell still runs its own code
    before it; ``a = b = 1`` is split into ``a = <new>; b = 1`` so only ``a`` changes.
    Everything else (comments, spacing, other lines) is kept character for character.
    Raises :class:`UsageError` for a key the cell has no top-level literal assignment of
    (naming the cell's parameters) and for a value that is not a Python literal.
    """
    if not overrides:
        return source
    tree = parse_module(source)
    if tree is None:
        raise UsageError("cannot apply --set: the cell is not valid Python; fix it first")
    known = sorted(parameter_bindings(tree))
    for key in overrides:
        if key not in known:
            have = ", ".join(known) if known else "none"
            raise UsageError(
                f"--set {key}: the cell has no top-level assignment of a literal to {key!r}; "
                f"its parameters are: {have}"
            )
    replacements = {name: _value_source(value) for name, value in overrides.items()}
    rewritten, _ = rewrite_bindings(source, replacements)
    return rewritten


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
