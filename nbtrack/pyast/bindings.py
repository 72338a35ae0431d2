"""THE rule of what a parameter binding is, and rewriting one in place.

A cell's *parameters* are the names it binds to literal values at module level. The
magic records them, ``%%track --set`` rewrites them, and the exporter turns them into
command-line flags by rewriting the same bindings; all three use this module, so what is
recorded, what ``--set`` changes and what a flag changes are always the same code.

The rule, statement by statement (module level only: a binding inside
``if``/``for``/``def``/``with``/``try`` may not run; the value must be a literal as
:func:`ast.literal_eval` understands it)::

    lr = 1e-3                 # simple: lr
    epochs: int = 10          # annotated with a value: epochs
    epochs: int               # annotated without a value: nothing
    width, depth = 64, 3      # unpacking a same-length tuple/list display (no starred
                              # element): each element, recursively
    lr = wd = 1e-3            # chained, all targets names, immutable value: lr and wd
    xs = ys = []              # chained with a mutable value (one shared list): nothing
    a = (b, c) = 1, 2         # chained with a non-name target: nothing
    lr *= 0.5                 # augmented: not a binding, and lr stays a parameter
    lr = float(lr)            # non-literal: not a binding, and lr stays a parameter
    cfg.lr = 1; d["k"] = 1    # attribute/subscript targets: nothing

Immutable values are numbers, strings, bytes, bools, None, and tuples/frozensets of
immutable values. A chained assignment of one is a binding of each name; rewriting any of
them *splits* the statement into one assignment per name on the same line
(``lr = <new>; wd = 1e-3``), so changing ``wd`` really changes only ``wd``. A mutable
value is one object under two names, which no rewrite of one name can keep, so such a
statement binds no parameter.

When a name is bound by a literal several times, its parameter is the LAST such binding:
that value is recorded, and that binding is the one ``--set`` and the exporter rewrite.
Rewriting only the last keeps the code between two assignments as it was, so an exported
script run at its default values is the cell as it ran.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from nbtrack.pyast.positions import Edit, apply_edits, line_starts, node_span

__all__ = [
    "Binding",
    "parse_module",
    "literal_value",
    "is_immutable",
    "literal_bindings",
    "parameter_bindings",
    "parameter_values",
    "rewrite_bindings",
    "value_source",
    "LITERAL_ERRORS",
]

#: What :func:`ast.literal_eval` raises on input that is not a literal: ValueError and
#: TypeError for non-literal nodes, SyntaxError for text that does not parse, MemoryError
#: and RecursionError for pathologically nested input.
LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)

_IMMUTABLE_SCALARS = (int, float, complex, str, bytes, bool, type(None))


@dataclass(frozen=True)
class Binding:
    """One module-level literal binding of one name."""

    name: str
    value: object
    #: The literal value node (an element of the value for tuple unpacking).
    node: ast.expr
    #: The statement it is in; for a chained assignment every name shares it.
    statement: ast.stmt


def parse_module(source: str) -> ast.Module | None:
    """``source`` parsed, or None when it is not valid Python."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        # ValueError: NUL bytes; the others: absurdly nested input.
        return None


def literal_value(node: ast.expr) -> tuple[bool, object]:
    """``(True, value)`` when ``node`` is a literal, else ``(False, None)``."""
    try:
        return True, ast.literal_eval(node)
    except LITERAL_ERRORS:
        return False, None


def is_immutable(value: object) -> bool:
    """Whether ``value`` (a literal) can be shared by two names without aliasing."""
    if isinstance(value, _IMMUTABLE_SCALARS):
        return True
    if isinstance(value, tuple | frozenset):
        return all(is_immutable(item) for item in value)
    return False


def _unpack(target: ast.expr, value: ast.expr, stmt: ast.stmt) -> Iterator[Binding]:
    """Bindings one (non-chained) target makes from one value node."""
    if isinstance(target, ast.Name):
        ok, literal = literal_value(value)
        if ok:
            yield Binding(target.id, literal, value, stmt)
    elif (
        isinstance(target, ast.Tuple | ast.List)
        and isinstance(value, ast.Tuple | ast.List)
        and len(target.elts) == len(value.elts)
        and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
    ):
        # Only a same-length display can be followed element by element: ``a, b = pair``
        # and ``a, *b = 1, 2, 3`` bind nothing we can point at.
        for sub_target, sub_value in zip(target.elts, value.elts, strict=True):
            yield from _unpack(sub_target, sub_value, stmt)


def _statement_bindings(stmt: ast.stmt) -> Iterator[Binding]:
    if isinstance(stmt, ast.AnnAssign):
        if stmt.value is not None:
            yield from _unpack(stmt.target, stmt.value, stmt)
    elif isinstance(stmt, ast.Assign):
        if len(stmt.targets) == 1:
            yield from _unpack(stmt.targets[0], stmt.value, stmt)
        elif all(isinstance(t, ast.Name) for t in stmt.targets):
            ok, literal = literal_value(stmt.value)
            if ok and is_immutable(literal):
                for target in stmt.targets:
                    assert isinstance(target, ast.Name)
                    yield Binding(target.id, literal, stmt.value, stmt)


def literal_bindings(tree: ast.Module) -> list[Binding]:
    """Every module-level literal binding in ``tree``, in source order (see the module doc)."""
    return [b for stmt in tree.body for b in _statement_bindings(stmt)]


def parameter_bindings(tree: ast.Module) -> dict[str, Binding]:
    """The parameter binding of each name: its last literal binding.

    Names come in the order they are first bound.
    """
    last: dict[str, Binding] = {}
    for binding in literal_bindings(tree):
        last[binding.name] = binding
    return last


def parameter_values(source: str) -> dict[str, object]:
    """``{name: value}`` of the parameters ``source`` sets; ``{}`` when it does not parse."""
    tree = parse_module(source)
    if tree is None:
        return {}
    return {name: b.value for name, b in parameter_bindings(tree).items()}


def rewrite_bindings(source: str, replacements: Mapping[str, str]) -> tuple[str, set[str]]:
    """``source`` with each named parameter's value replaced by the given source text.

    ``replacements`` maps a name to the Python source of its new value (a literal's
    ``repr`` for ``--set``, ``PARAMS['lr']`` for an exported script). Only the parameter
    binding (the last literal binding) of each name is rewritten; a chained assignment is
    split into one assignment per name. Everything else (comments, spacing, other lines)
    is kept character for character. Returns the new source and the names replaced;
    names with no parameter binding, and source that does not parse, are left alone.
    """
    tree = parse_module(source)
    if tree is None or not replacements:
        return source, set()
    chosen = [b for name, b in parameter_bindings(tree).items() if name in replacements]
    if not chosen:
        return source, set()
    starts = line_starts(source)
    edits: list[Edit] = []
    split: dict[int, ast.Assign] = {}
    for binding in chosen:
        stmt = binding.statement
        if isinstance(stmt, ast.Assign) and len(stmt.targets) > 1:
            split[id(stmt)] = stmt  # one edit per statement, for all its names at once
            continue
        start, end = node_span(source, starts, binding.node)
        edits.append((start, end, replacements[binding.name]))
    chosen_at = {(id(b.statement), b.name) for b in chosen}
    for stmt in split.values():
        start, end = node_span(source, starts, stmt)
        value_start, value_end = node_span(source, starts, stmt.value)
        original = source[value_start:value_end]
        parts = []
        for target in stmt.targets:
            assert isinstance(target, ast.Name)
            target_start, target_end = node_span(source, starts, target)
            # The target's own text, not target.id: ast normalizes identifiers (NFKC).
            written = source[target_start:target_end]
            # A name whose parameter binding is later keeps this value.
            chosen_here = (id(stmt), target.id) in chosen_at
            new = replacements[target.id] if chosen_here else original
            parts.append(f"{written} = {new}")
        edits.append((start, end, "; ".join(parts)))
    return apply_edits(source, edits), {b.name for b in chosen}


def value_source(value: object) -> str:
    """Python source that evaluates back to ``value``, for writing a value into code.

    Raises ValueError when ``value`` has no literal source (an object, a class...).
    """
    if isinstance(value, float) and not math.isfinite(value):
        # repr gives 'nan'/'inf', which would be NameErrors in the code.
        return f"float({str(value)!r})"
    text = repr(value)
    try:
        ast.literal_eval(text)
    except LITERAL_ERRORS:
        raise ValueError(f"{text} (a {type(value).__name__}) is not a Python literal") from None
    return text
