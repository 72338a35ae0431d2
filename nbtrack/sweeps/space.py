"""A sweep's search space: ``--space`` options, ``nbtrack.suggest`` calls, narrowing.

One dimension per searched parameter, written the same way in both places::

    --space lr=loguniform(1e-5, 1e-2)         lr = nbtrack.suggest.loguniform(1e-5, 1e-2)
    --space dropout=uniform(0, 0.5)           # uniform(low, high[, step])
    --space layers=int(2, 8)                  # int(low, high[, step]), logint(low, high)
    --space hidden=choice(64, 128, 256)       # choice(value, ...)

A ``--space`` parameter replaces the cell's own literal binding of that name (the binding
``--set`` rewrites, :mod:`nbtrack.pyast.bindings`); an ``nbtrack.suggest`` call is replaced
by the sampled literal. Either way a trial's recorded code binds each parameter to its
sampled value, so the trial's params, its ``--set`` and its exported flags are one binding.

Core module: no Optuna at import (only :meth:`Dimension.distribution` imports it).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbtrack.errors import SweepError
from nbtrack.pyast.bindings import parameter_bindings, parse_module, rewrite_bindings, value_source
from nbtrack.pyast.positions import Edit, apply_edits, line_starts, node_span

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

__all__ = [
    "KINDS",
    "Dimension",
    "parse_dimension",
    "parse_space_options",
    "cell_suggestions",
    "stray_suggestions",
    "check_bindings",
    "trial_code",
    "narrow",
    "space_to_json",
    "space_from_json",
]

#: The kinds of dimension, with the arguments each takes (for messages and docs).
KINDS: dict[str, str] = {
    "uniform": "uniform(low, high[, step])",
    "loguniform": "loguniform(low, high)",
    "int": "int(low, high[, step])",
    "logint": "logint(low, high)",
    "choice": "choice(value, value, ...)",
}

#: Values a choice may hold: what Optuna's storages keep as they are.
_CHOICE_TYPES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: its name, kind and arguments, validated.

    ``low``/``high`` bound numeric kinds (inclusive), ``step`` is the grid of ``uniform``
    and ``int`` (``None``: continuous / 1), ``choices`` lists a ``choice``.
    """

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    choices: tuple[Any, ...] = ()
    source: str = "option"  # "option" (--space) or "cell" (an nbtrack.suggest call)

    @property
    def log(self) -> bool:
        """Whether the dimension is searched on a log scale."""
        return self.kind in ("loguniform", "logint")

    @property
    def is_int(self) -> bool:
        return self.kind in ("int", "logint")

    def text(self) -> str:
        """The dimension as written: ``loguniform(1e-05, 0.01)``."""
        if self.kind == "choice":
            args = [repr(c) for c in self.choices]
        else:
            args = [_num(self.low, self.is_int), _num(self.high, self.is_int)]
            if self.step is not None and not (self.kind == "int" and self.step == 1):
                args.append(_num(self.step, self.is_int))
        return f"{self.kind}({', '.join(args)})"

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution this dimension samples from."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.is_int:
            return IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def grid(self) -> list[Any] | None:
        """Every value, for the grid sampler; ``None`` for a continuous dimension."""
        if self.kind == "choice":
            return list(self.choices)
        if self.is_int:
            if self.log:
                return list(range(int(self.low), int(self.high) + 1))
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def plain_value(self) -> Any:
        """The value outside a sweep (:mod:`nbtrack.suggest` without ``default``): the
        middle of the range (geometric for log kinds), the first choice."""
        if self.kind == "choice":
            return self.choices[0]
        if self.log:
            middle = math.sqrt(self.low * self.high)
        else:
            middle = (self.low + self.high) / 2
        if self.is_int:
            step = int(self.step or 1)
            return int(self.low) + (round(middle) - int(self.low)) // step * step
        if self.step is not None:
            return round(self.low + round((middle - self.low) / self.step) * self.step, 12)
        return middle

    def to_json(self) -> dict[str, Any]:
        """The dimension as stored with its sweep."""
        return {
            "name": self.name,
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "choices": list(self.choices),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Dimension:
        """The dimension :meth:`to_json` stored."""
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            low=float(data.get("low", 0.0)),
            high=float(data.get("high", 0.0)),
            step=data.get("step"),
            choices=tuple(data.get("choices", ())),
            source=str(data.get("source", "option")),
        )


def _num(value: float, as_int: bool) -> str:
    return str(int(value)) if as_int else repr(float(value))


def make_dimension(
    name: str, kind: str, args: Sequence[Any], where: str, source: str = "option"
) -> Dimension:
    """A validated :class:`Dimension`; ``where`` names the option or line in errors."""
    usage = KINDS.get(kind)
    if usage is None:
        raise SweepError(f"{where}: unknown kind {kind!r}; use one of: {', '.join(KINDS.values())}")
    if kind == "choice":
        if not args:
            raise SweepError(f"{where}: choice needs at least one value, e.g. choice(64, 128)")
        bad = [a for a in args if not isinstance(a, _CHOICE_TYPES)]
        if bad:
            raise SweepError(
                f"{where}: choice values must be numbers, strings, bools or None, not {bad[0]!r}"
            )
        if len(set(map(repr, args))) != len(args):
            raise SweepError(f"{where}: choice lists a value twice")
        return Dimension(name, kind, choices=tuple(args), source=source)
    numbers = [a for a in args if isinstance(a, int | float) and not isinstance(a, bool)]
    wants = (2, 3) if kind in ("uniform", "int") else (2,)
    if len(numbers) != len(args) or len(args) not in wants:
        raise SweepError(f"{where}: expected {usage} with numbers")
    low, high = float(args[0]), float(args[1])
    step = float(args[2]) if len(args) == 3 else None
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise SweepError(f"{where}: {usage} needs finite low < high")
    if kind in ("loguniform", "logint") and low <= 0:
        raise SweepError(f"{where}: {kind} needs 0 < low (a log scale has no zero)")
    if kind in ("int", "logint"):
        if low != int(low) or high != int(high) or (step is not None and step != int(step)):
            raise SweepError(f"{where}: {usage} takes whole numbers")
        step = step if step is not None else 1.0
    if step is not None and (not math.isfinite(step) or step <= 0):
        raise SweepError(f"{where}: the step must be a positive number")
    if kind in ("int", "logint"):
        return Dimension(name, kind, low, high, step, source=source)
    return Dimension(name, kind, low, high, step, source=source)


def parse_dimension(text: str) -> Dimension:
    """One ``--space NAME=KIND(ARGS)`` option; a malformed one is a one-line SweepError."""
    where = f"--space {text}"
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise SweepError(
            f"{where}: expected NAME=KIND(ARGS) with NAME a Python name, "
            "e.g. --space lr=loguniform(1e-5,1e-2)"
        )
    try:
        node = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError:
        node = None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or node.keywords:
        raise SweepError(f"{where}: expected KIND(ARGS), one of: {', '.join(KINDS.values())}")
    args = _literal_args(node, where)
    return make_dimension(name, node.func.id, args, where)


def _literal_args(node: ast.Call, where: str) -> list[Any]:
    out = []
    for arg in node.args:
        try:
            out.append(ast.literal_eval(arg))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise SweepError(f"{where}: arguments must be literals (numbers, strings)") from None
    return out


def parse_space_options(texts: Iterable[str]) -> list[Dimension]:
    """Every ``--space`` option; naming one parameter twice is an error."""
    dims = [parse_dimension(t) for t in texts]
    _no_duplicates(dims)
    return dims


def _no_duplicates(dims: Sequence[Dimension]) -> None:
    seen: set[str] = set()
    for dim in dims:
        if dim.name in seen:
            raise SweepError(f"the search space names {dim.name!r} twice; keep one")
        seen.add(dim.name)


# --- nbtrack.suggest calls in the cell ---------------------------------------------------


def _suggest_kind(call: ast.AST) -> str | None:
    """``"loguniform"`` for ``nbtrack.suggest.loguniform(...)`` or ``suggest.loguniform(...)``."""
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
        return None
    owner = call.func.value
    named = (isinstance(owner, ast.Name) and owner.id == "suggest") or (
        isinstance(owner, ast.Attribute)
        and owner.attr == "suggest"
        and isinstance(owner.value, ast.Name)
        and owner.value.id == "nbtrack"
    )
    return call.func.attr if named and call.func.attr in KINDS else None


def _suggest_assignments(tree: ast.Module) -> dict[str, ast.Call]:
    """The last module-level ``NAME = <suggest call>`` of each name (as for literal bindings)."""
    found: dict[str, ast.Call] = {}
    for stmt in tree.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        if isinstance(target, ast.Name) and value is not None and _suggest_kind(value):
            assert isinstance(value, ast.Call)
            found[target.id] = value
    return found


def cell_suggestions(source: str) -> list[Dimension]:
    """The dimensions a cell declares with top-level ``name = nbtrack.suggest.KIND(...)``."""
    tree = parse_module(source)
    if tree is None:
        return []
    dims = []
    for name, call in _suggest_assignments(tree).items():
        kind = _suggest_kind(call)
        assert kind is not None
        where = f"line {call.lineno}: {name} = suggest.{kind}(...)"
        args = _literal_args(call, where)
        for keyword in call.keywords:
            if keyword.arg != "default":
                raise SweepError(f"{where}: unknown argument {keyword.arg!r}")
        dims.append(make_dimension(name, kind, args, where, source="cell"))
    return dims


def stray_suggestions(source: str) -> list[int]:
    """Lines with an ``nbtrack.suggest`` call a sweep does not search (not a top-level
    ``name = ...``): outside the searched form they return their plain value."""
    tree = parse_module(source)
    if tree is None:
        return []
    searched = {id(c) for c in _suggest_assignments(tree).values()}
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _suggest_kind(node) and id(node) not in searched
    )


def check_bindings(source: str, dims: Sequence[Dimension]) -> None:
    """Every ``--space`` parameter must have a literal binding in the cell to replace."""
    tree = parse_module(source)
    if tree is None:
        raise SweepError("a sweep cell must be valid Python (after IPython's own syntax)")
    bound = parameter_bindings(tree)
    suggested = _suggest_assignments(tree)
    for dim in dims:
        if dim.source == "option" and dim.name not in bound and dim.name not in suggested:
            have = ", ".join(sorted(bound)) or "none"
            raise SweepError(
                f"--space {dim.name}: the cell has no top-level assignment of a literal to "
                f"{dim.name!r} to replace (add `{dim.name} = <value outside the sweep>`); "
                f"its parameters are: {have}"
            )


def trial_code(source: str, values: Mapping[str, Any]) -> str:
    """``source`` with each searched parameter bound to its sampled value: suggest calls
    replaced by the literal, ``--space`` parameters' literal bindings rewritten."""
    tree = parse_module(source)
    if tree is None:
        return source
    calls = _suggest_assignments(tree)
    starts = line_starts(source)
    edits: list[Edit] = []
    for name, call in calls.items():
        if name in values:
            start, end = node_span(source, starts, call)
            edits.append((start, end, value_source(values[name])))
    source = apply_edits(source, edits) if edits else source
    rest = {n: value_source(v) for n, v in values.items() if n not in calls}
    return rewrite_bindings(source, rest)[0] if rest else source


# --- narrowing: a second, tighter search around the best trials --------------------------


def narrow(
    dims: Sequence[Dimension], best: Sequence[Mapping[str, Any]], *, margin: float = 0.1
) -> list[Dimension]:
    """``dims`` narrowed to the range the ``best`` trials' values span (plus ``margin`` of
    that range on each side, on the log scale for log kinds), kept inside the old bounds.
    A choice keeps the values the best trials used. Dimensions no best trial set stay."""
    out = []
    for dim in dims:
        values = [p[dim.name] for p in best if dim.name in p]
        if not values:
            out.append(dim)
            continue
        if dim.kind == "choice":
            kept = tuple(c for c in dim.choices if any(_same(c, v) for v in values))
            out.append(
                Dimension(dim.name, "choice", choices=kept or dim.choices, source=dim.source)
            )
            continue
        scale = math.log if dim.log else (lambda x: x)
        unscale = math.exp if dim.log else (lambda x: x)
        lo, hi = scale(float(min(values))), scale(float(max(values)))
        pad = (hi - lo) * margin or (scale(dim.high) - scale(dim.low)) * margin
        low = max(dim.low, unscale(lo - pad))
        high = min(dim.high, unscale(hi + pad))
        if dim.is_int:
            low, high = math.floor(low), math.ceil(high)
            if dim.step and dim.kind == "int":
                low = dim.low + (low - dim.low) // dim.step * dim.step
            if low >= high:
                high = min(dim.high, low + (dim.step or 1))
                low = max(dim.low, high - (dim.step or 1))
        elif dim.step is not None:
            low = dim.low + math.floor((low - dim.low) / dim.step) * dim.step
            high = min(dim.high, dim.low + math.ceil((high - dim.low) / dim.step) * dim.step)
        if not low < high:
            out.append(dim)
            continue
        out.append(Dimension(dim.name, dim.kind, low, high, dim.step, source=dim.source))
    return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (isinstance(a, float) and isinstance(b, int) and a == b)


def space_to_json(dims: Sequence[Dimension]) -> list[dict[str, Any]]:
    """A space as stored with its sweep."""
    return [d.to_json() for d in dims]


def space_from_json(data: Sequence[Mapping[str, Any]]) -> list[Dimension]:
    """A stored space back as dimensions."""
    return [Dimension.from_json(d) for d in data]
