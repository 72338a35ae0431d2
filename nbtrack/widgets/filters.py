"""The run filters of the compare widget: a small, safe query language over run columns.

A query such as ``metrics.val_acc > 0.9 and params.lr < 0.01`` is parsed with :mod:`ast`
and checked against a short list of allowed node types: comparisons (``== != < <= > >=``,
``in``, ``not in``, chained ``0.1 < params.lr < 1``), ``and`` / ``or`` / ``not``, numbers,
strings, ``True`` / ``False`` / ``None``, list or tuple literals, and column names written
with dots (``metrics.val_acc``, ``params.lr``, ``name``, ``status``, ``tags``). Nothing is
ever handed to ``eval``: the checked tree is walked here and turned into pandas operations,
so calls, subscripts, attribute access on anything but a column name, lambdas and dunder
names are refused with a message that says what is allowed.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbtrack.errors import UsageError
from nbtrack.pyast.names import dotted_name

if TYPE_CHECKING:
    import pandas

#: Longest query text accepted; keeps the parser far from its recursion limit.
MAX_QUERY_LENGTH = 2000

ALLOWED = (
    "comparisons (== != < <= > >= in, not in), and/or/not, numbers, strings, "
    "lists, and column names such as metrics.val_acc or params.lr"
)


class QueryError(UsageError):
    """A filter query that cannot be parsed or names an unknown column."""


@dataclass(frozen=True)
class Column:
    """A column reference in a query, already resolved to a frame column name."""

    name: str


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_SYMBOLS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


_dotted = dotted_name


class _Checker:
    """Turns a parsed query into a tree of plain tuples, refusing anything not allowed."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.known = set(self.columns)

    def resolve(self, dotted: str) -> Column:
        if any(part.startswith("_") for part in dotted.split(".")):
            raise QueryError(f"{dotted!r} is not allowed in a query; use {ALLOWED}")
        if dotted in self.known:
            return Column(dotted)
        # A bare key is accepted when it names exactly one param or metric.
        matches = [c for c in self.columns if c in (f"params.{dotted}", f"metrics.{dotted}")]
        if len(matches) == 1:
            return Column(matches[0])
        if len(matches) > 1:
            raise QueryError(
                f"{dotted!r} is both a param and a metric; write {' or '.join(matches)}"
            )
        close = [c for c in self.columns if c.split(".")[-1] == dotted.split(".")[-1]]
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else (
                "; columns are "
                + ", ".join(self.columns[:12])
                + (", …" if len(self.columns) > 12 else "")
            )
        )
        raise QueryError(f"unknown column {dotted!r} in the query{hint}")

    def check(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return self.check(node.body)
        if isinstance(node, ast.BoolOp):
            kind = "and" if isinstance(node.op, ast.And) else "or"
            return (kind, [self.check(v) for v in node.values])
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return ("not", self.check(node.operand))
            if isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(node.operand, ast.Constant):
                value = node.operand.value
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return ("const", -value if isinstance(node.op, ast.USub) else value)
            raise QueryError(f"only a number may follow a sign; use {ALLOWED}")
        if isinstance(node, ast.Compare):
            left = self.check(node.left)
            parts = []
            for op, right_node in zip(node.ops, node.comparators):
                right = self.check(right_node)
                _check_comparison(type(op), left, right)
                parts.append(("cmp", type(op), left, right))
                left = right
            return parts[0] if len(parts) == 1 else ("and", parts)
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, (bool, int, float, str)):
                return ("const", node.value)
            raise QueryError(f"{type(node.value).__name__} literals are not allowed; use {ALLOWED}")
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.check(e) for e in node.elts]
            if any(item[0] != "const" for item in items):
                raise QueryError("a list in a query may hold only numbers and strings")
            return ("list", [item[1] for item in items])
        if isinstance(node, (ast.Name, ast.Attribute)):
            dotted = _dotted(node)
            if dotted is None:
                raise QueryError(
                    f"attribute access is only for column names such as "
                    f"metrics.val_acc; use {ALLOWED}"
                )
            return ("col", self.resolve(dotted))
        if isinstance(node, ast.Call):
            raise QueryError(f"function calls are not allowed in a query; use {ALLOWED}")
        if isinstance(node, ast.Subscript):
            raise QueryError(f"indexing is not allowed in a query; use {ALLOWED}")
        raise QueryError(f"{type(node).__name__} is not allowed in a query; use {ALLOWED}")


def _check_comparison(op: type[ast.cmpop], left: Any, right: Any) -> None:
    """Refuse, while the query is typed, a comparison that could only fail once evaluated.

    The widget reports a bad query when it is entered; a query it accepted must then filter
    every set of runs without an error.
    """
    if op not in _SYMBOLS:
        raise QueryError(f"'is' and 'is not' are not allowed in a query; use == or !=: {ALLOWED}")
    if op in (ast.In, ast.NotIn):
        if right[0] == "const" and not isinstance(right[1], str):
            raise QueryError(
                f"'{_SYMBOLS[op]}' needs a list, a string or a list column such as tags "
                f"on its right, not {right[1]!r}"
            )
        return
    if left[0] == "list" or right[0] == "list":
        raise QueryError(f"a list can only be compared with 'in', not {_SYMBOLS[op]!r}")


@dataclass(frozen=True)
class RunQuery:
    """A checked query, ready to filter run frames with :meth:`mask`."""

    text: str
    tree: Any

    @property
    def columns(self) -> list[str]:
        """The frame columns the query reads."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, Column):
                found.append(node.name)
            elif isinstance(node, (tuple, list)):
                for item in node:
                    walk(item)

        walk(self.tree)
        return list(dict.fromkeys(found))

    def mask(self, frame: pandas.DataFrame) -> pandas.Series:
        """A boolean Series over ``frame``'s rows: True where the query holds."""
        result = _evaluate(self.tree, frame)
        return _truth(result, frame)


def parse_query(text: str, columns: Sequence[str]) -> RunQuery | None:
    """Parse and check ``text`` against the available ``columns``; ``None`` for a blank query.

    Raises :class:`QueryError` (one line, says what is allowed) for a syntax error, a
    construct that is not allowed, or an unknown column.
    """
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"the query is {len(text)} characters long; the limit is {MAX_QUERY_LENGTH}"
        )
    try:
        with warnings.catch_warnings():
            # "invalid decimal literal" and the like: the query is refused or fine, and a
            # warning printed under the widget would only repeat (or contradict) that.
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise QueryError(
            f"the query is not valid{where}: {exc.msg}; example: "
            "metrics.val_acc > 0.9 and params.lr < 0.01"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise QueryError("the query is too deeply nested") from None
    try:
        checked = _Checker(columns).check(tree)
    except RecursionError:
        raise QueryError("the query is too deeply nested") from None
    return RunQuery(text=text, tree=checked)


# -- evaluation over a DataFrame --------------------------------------------------------------


def _evaluate(node: Any, frame: pandas.DataFrame) -> Any:
    kind = node[0]
    if kind == "const" or kind == "list":
        return node[1]
    if kind == "col":
        return frame[node[1].name]
    if kind == "not":
        return ~_truth(_evaluate(node[1], frame), frame)
    if kind in ("and", "or"):
        masks = [_truth(_evaluate(item, frame), frame) for item in node[1]]
        out = masks[0]
        for mask in masks[1:]:
            out = (out & mask) if kind == "and" else (out | mask)
        return out
    if kind == "cmp":
        _, op, left_node, right_node = node
        left, right = _evaluate(left_node, frame), _evaluate(right_node, frame)
        if op in (ast.In, ast.NotIn):
            result = _contains(left, right, frame)
            return ~result if op is ast.NotIn else result
        return _compare(op, left, right, frame)
    raise QueryError(f"cannot evaluate {kind!r}")  # unreachable for checked trees


def _truth(value: Any, frame: pandas.DataFrame) -> pandas.Series:
    import pandas as pd

    if isinstance(value, pd.Series):
        if value.dtype == bool:
            return value
        return value.map(_truthy).astype(bool)
    return pd.Series(_truthy(value), index=frame.index, dtype=bool)


def _truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    try:
        return bool(value)
    except (TypeError, ValueError):
        return False


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _safe_op(fn: Callable[[Any, Any], Any], a: Any, b: Any) -> bool:
    """``fn(a, b)`` for two cells; a missing value or mismatched types compare False."""
    if _missing(a) or _missing(b):
        return fn is operator.ne and not (_missing(a) and _missing(b))
    if isinstance(a, bool) != isinstance(b, bool) and fn not in (operator.eq, operator.ne):
        return False
    try:
        return bool(fn(a, b))
    except TypeError:
        return fn is operator.ne
    except ValueError:
        return False


def _compare(op: type[ast.cmpop], left: Any, right: Any, frame: pandas.DataFrame) -> pandas.Series:
    import pandas as pd

    fn = _COMPARE[op]
    left_series, right_series = isinstance(left, pd.Series), isinstance(right, pd.Series)
    if isinstance(left, list) or isinstance(right, list):
        raise QueryError(f"a list can only be compared with 'in', not {_SYMBOLS[op]!r}")
    if not left_series and not right_series:
        return pd.Series(_safe_op(fn, left, right), index=frame.index, dtype=bool)
    if left_series and not right_series and numeric(right) and _numeric_dtype(left):
        return fn(left, right).fillna(False).astype(bool) & left.notna()
    if right_series and not left_series and numeric(left) and _numeric_dtype(right):
        return fn(left, right).fillna(False).astype(bool) & right.notna()
    if left_series and right_series and _numeric_dtype(left) and _numeric_dtype(right):
        return fn(left, right).fillna(False).astype(bool) & left.notna() & right.notna()
    lvals = left.tolist() if left_series else [left] * len(frame)
    rvals = right.tolist() if right_series else [right] * len(frame)
    return pd.Series(
        [_safe_op(fn, a, b) for a, b in zip(lvals, rvals)], index=frame.index, dtype=bool
    )


def numeric(value: Any) -> bool:
    """A number, and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_dtype(series: pandas.Series) -> bool:
    return series.dtype.kind in "iuf"


def _contains(left: Any, right: Any, frame: pandas.DataFrame) -> pandas.Series:
    import pandas as pd

    if isinstance(right, list):
        if isinstance(left, pd.Series):
            wanted = list(right)
            return left.map(
                lambda v: (
                    not _missing(v)
                    and any(v == w and isinstance(v, bool) == isinstance(w, bool) for w in wanted)
                )
            ).astype(bool)
        return pd.Series(left in right, index=frame.index, dtype=bool)
    if isinstance(right, pd.Series):
        lvals = left.tolist() if isinstance(left, pd.Series) else [left] * len(frame)

        def member(item: Any, container: Any) -> bool:
            if _missing(container) or _missing(item):
                return False
            if isinstance(container, str):
                return isinstance(item, str) and item in container
            if isinstance(container, (list, tuple, set)):
                return item in container
            return False

        return pd.Series(
            [member(a, b) for a, b in zip(lvals, right.tolist())], index=frame.index, dtype=bool
        )
    if isinstance(right, str) and not isinstance(left, pd.Series):
        return pd.Series(isinstance(left, str) and left in right, index=frame.index, dtype=bool)
    if isinstance(right, str):
        return left.map(lambda v: isinstance(v, str) and v in right).astype(bool)
    raise QueryError("'in' needs a list, a string or a list column such as tags on its right")


# -- the simple filters ---------------------------------------------------------------------


def name_mask(frame: pandas.DataFrame, pattern: str) -> pandas.Series:
    """Runs whose name matches ``pattern``: a glob (``digits/*``) or else a substring."""
    import fnmatch

    import pandas as pd

    pattern = (pattern or "").strip()
    names = (
        frame["name"].fillna("").astype(str)
        if "name" in frame
        else pd.Series("", index=frame.index)
    )
    if not pattern:
        return pd.Series(True, index=frame.index, dtype=bool)
    if any(ch in pattern for ch in "*?["):
        return names.map(lambda n: fnmatch.fnmatchcase(n, pattern)).astype(bool)
    return names.str.contains(pattern, regex=False)


def tag_mask(frame: pandas.DataFrame, tag: str | None) -> pandas.Series:
    """Runs carrying ``tag`` (every run for ``None`` or an empty tag)."""
    import pandas as pd

    if not tag:
        return pd.Series(True, index=frame.index, dtype=bool)
    return frame["tags"].map(lambda tags: isinstance(tags, list) and tag in tags).astype(bool)


def status_mask(frame: pandas.DataFrame, status: str | None) -> pandas.Series:
    """Runs with ``status`` (every run for ``None`` or an empty status)."""
    import pandas as pd

    if not status:
        return pd.Series(True, index=frame.index, dtype=bool)
    return frame["status"] == status
