"""The runs a compare view shows: loading, filtering, sorting, paging, best values, curves.

Pure pandas and NumPy on top of :mod:`nbtrack.query`; nothing here knows about widgets, so
the compare widget, :func:`nbtrack.plot` and the benchmark share it and tests drive it
directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbtrack.errors import AmbiguousRunError, NbtrackError, UnknownRunError
from nbtrack.metrics import Direction, display_direction
from nbtrack.query import runs as query_runs
from nbtrack.query import runs_directions
from nbtrack.store.routing import open_store
from nbtrack.store.sqlite import Store

if TYPE_CHECKING:
    import numpy
    import pandas

    from nbtrack.widgets.filters import RunQuery

#: Columns every run table shows first, in this order, when the frame has them.
FIXED_COLUMNS = ("number", "name", "status", "tags", "start_time", "duration")


@dataclass(frozen=True)
class Curve:
    """One run's values of one metric over its steps."""

    number: int
    label: str
    steps: numpy.ndarray
    values: numpy.ndarray


def metric_column(metric: str) -> str:
    """``metrics.val_acc`` for ``val_acc`` or ``metrics.val_acc``."""
    return metric if metric.startswith("metrics.") else f"metrics.{metric}"


def run_label(number: Any, name: Any) -> str:
    """How a run is named in legends and tables: ``#3 digits/mlp``."""
    return f"#{number} {name}" if isinstance(name, str) and name else f"#{number}"


class RunSet:
    """A set of runs from one store, reloadable with :meth:`load`.

    ``runs`` is ``None`` (every run in the store, new ones included on reload), a DataFrame
    from :func:`nbtrack.runs` (its ``id`` column decides which runs), or refs as for
    :func:`nbtrack.get_run`. Refs that match no run are listed in :attr:`problems`.
    """

    def __init__(self, runs: Any = None, *, store: Store | str | None = None) -> None:
        self.store = store if isinstance(store, Store) else open_store(store)
        self.problems: list[str] = []
        self._ids: list[str] | None = None
        self._history: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
        #: One direction per metric for these runs (stored with the runs, else the rule).
        self.directions: dict[str, Direction] = {}
        if runs is not None:
            self._ids = self._resolve(runs)
        self.frame = self._empty()
        self.load()

    # -- loading ---------------------------------------------------------------------------
    def _resolve(self, runs: Any) -> list[str]:
        import pandas as pd

        if isinstance(runs, pd.DataFrame):
            if "id" in runs.columns:
                refs: Iterable[Any] = runs["id"].tolist()
            elif "number" in runs.columns:
                refs = runs["number"].tolist()
            else:
                self.problems.append(
                    "the DataFrame has neither an 'id' nor a 'number' "
                    "column; pass nbtrack.runs() or a list of run refs"
                )
                return []
        elif isinstance(runs, (str, int)):
            refs = [runs]
        else:
            try:
                refs = list(runs)
            except TypeError:
                self.problems.append(
                    f"cannot compare a {type(runs).__name__}; pass "
                    "nbtrack.runs(...) or a list of run numbers or ids"
                )
                return []
        ids: list[str] = []
        unknown: list[str] = []
        for ref in refs:
            try:
                ids.append(self.store.resolve(ref))
            except (UnknownRunError, AmbiguousRunError):
                unknown.append(str(ref))
        if unknown:
            self.problems.append(
                f"no run matches {', '.join(unknown[:10])}{' …' if len(unknown) > 10 else ''}"
                f" in the store at {self.store.shown}"
            )
        return list(dict.fromkeys(ids))

    def _empty(self) -> pandas.DataFrame:
        import pandas as pd

        return pd.DataFrame({c: [] for c in ("number", "id", "name", "status", "tags")})

    def load(self) -> None:
        """(Re)read the runs from the store; finished runs keep their cached curves."""
        frame = query_runs(store=self.store)
        if self._ids is not None:
            frame = frame[frame["id"].isin(set(self._ids))]
        frame = frame.reset_index(drop=True)
        running = set(frame.loc[frame["status"] == "running", "id"]) if len(frame) else set()
        for run_id in running:
            self._history.pop(run_id, None)
        self.frame = frame if len(frame.columns) else self._empty()
        self._by_number = {int(n): i for i, n in enumerate(self.frame["number"].tolist())}
        ids = None if self._ids is None else [str(i) for i in self.frame["id"].tolist()]
        self.directions = runs_directions(self.store, ids)

    def direction(self, metric: str) -> Direction:
        """``"min"`` or ``"max"`` for ``metric`` (or ``metrics.<name>``) among these runs."""
        name = metric_column(metric)[len("metrics.") :]
        return self.directions.get(name) or display_direction(name)

    @property
    def empty(self) -> bool:
        return len(self.frame) == 0

    @property
    def param_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c.startswith("params.")]

    @property
    def metric_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c.startswith("metrics.")]

    @property
    def metrics(self) -> list[str]:
        """Metric names (without the ``metrics.`` prefix) that at least one run has."""
        return [c[len("metrics.") :] for c in self.metric_columns if self.frame[c].notna().any()]

    @property
    def columns(self) -> list[str]:
        """The table's columns: fixed ones, then params, then metrics."""
        fixed = [c for c in FIXED_COLUMNS if c in self.frame.columns]
        # A project column (and `project == "vision"` in the query) once some run has one:
        # nothing changes for a store nobody scopes (docs/team.md#projects).
        if "project" in self.frame.columns and self.frame["project"].notna().any():
            fixed.insert(2, "project")
        return fixed + self.param_columns + self.metric_columns

    def numbers(self) -> list[int]:
        return [int(n) for n in self.frame["number"].tolist()]

    def row(self, number: int) -> pandas.Series:
        return self.frame.iloc[self._by_number[number]]

    def resolve_numbers(self, refs: Iterable[Any]) -> tuple[list[int], list[str]]:
        """Run numbers among these runs for ``refs`` (numbers, ``#n``, ids, id prefixes).

        Returns ``(numbers, refs that matched none of these runs)``.
        """
        found: list[int] = []
        unknown: list[str] = []
        ids = dict(zip(self.frame["id"].tolist(), self.numbers())) if len(self.frame) else {}
        for ref in refs:
            text = str(ref).strip().lstrip("#")
            number: int | None = None
            if text.isdigit() and int(text) in self._by_number:
                number = int(text)
            elif len(text) >= 4:
                matches = [n for run_id, n in ids.items() if run_id.startswith(text.lower())]
                number = matches[0] if len(matches) == 1 else None
            if number is None:
                unknown.append(str(ref))
            elif number not in found:
                found.append(number)
        return found, unknown

    # -- the view: filter, sort, page --------------------------------------------------------
    def view(
        self,
        *,
        name: str = "",
        tag: str | None = None,
        status: str | None = None,
        query: RunQuery | None = None,
        sort_by: str | None = None,
        ascending: bool = True,
    ) -> pandas.DataFrame:
        """The runs passing the filters, sorted; the index stays the frame's row index."""
        from nbtrack.widgets.filters import name_mask, status_mask, tag_mask

        frame = self.frame
        if frame.empty:
            return frame
        mask = name_mask(frame, name) & tag_mask(frame, tag) & status_mask(frame, status)
        if query is not None:
            mask &= query.mask(frame)
        view = frame[mask]
        if sort_by and sort_by in view.columns:
            view = sort_frame(view, sort_by, ascending)
        return view

    def tags(self) -> list[str]:
        found: dict[str, None] = {}
        for tags in self.frame["tags"].tolist() if len(self.frame) else []:
            for tag in tags or []:
                found[str(tag)] = None
        return sorted(found)

    def statuses(self) -> list[str]:
        return sorted(set(self.frame["status"].tolist())) if len(self.frame) else []

    # -- curves -----------------------------------------------------------------------------
    def history(self, number: int, key: str) -> tuple[list[int], list[float]]:
        """Steps and values of metric ``key`` of run ``number`` (cached for finished runs)."""
        run_id = str(self.row(number)["id"])
        per_run = self._history.setdefault(run_id, {})
        cached = per_run.get(key)
        if cached is None:
            cached = per_run[key] = _metric_points(self.store, run_id, key)
        return cached

    def curves(self, numbers: Sequence[int], metric: str) -> list[Curve]:
        """The ``metric`` curve of each run in ``numbers`` that logged it."""
        import numpy as np

        key = metric_column(metric)[len("metrics.") :]
        out = []
        for number in numbers:
            if number not in self._by_number:
                continue
            steps, values = self.history(number, key)
            if not steps:
                continue
            row = self.row(number)
            out.append(
                Curve(
                    number,
                    run_label(number, row.get("name")),
                    np.asarray(steps, dtype=float),
                    np.asarray(values, dtype=float),
                )
            )
        return out


def _metric_points(store: Store, run_id: str, key: str) -> tuple[list[int], list[float]]:
    """One metric of one run. ``Store.metric_history`` reads every metric of the run, ten
    times more rows than a chart of one metric needs; this reads only ``key``'s (using the
    metrics table's (run_id, key, step) index)."""
    points = store.metric_points(run_id, key)
    return [step for step, _ in points], [value for _, value in points]


def sort_frame(frame: pandas.DataFrame, column: str, ascending: bool = True) -> pandas.DataFrame:
    """``frame`` sorted by ``column``; numbers before strings before missing values."""
    series = frame[column]
    if series.dtype.kind in "iufmM" or str(series.dtype).startswith("datetime"):
        return frame.sort_values(column, ascending=ascending, na_position="last", kind="stable")
    keys = [_sort_key(v) for v in series.tolist()]
    present = [i for i, k in enumerate(keys) if k[0] < 3]
    missing = [i for i, k in enumerate(keys) if k[0] == 3]
    present.sort(key=lambda i: keys[i], reverse=not ascending)
    return frame.iloc[present + missing]


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (3, 0)
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, (int, float)):
        return (0, float(value))
    if isinstance(value, (list, tuple)):
        return (2, ",".join(map(str, value)))
    return (1, str(value))


def best_numbers(
    frame: pandas.DataFrame,
    columns: Iterable[str],
    directions: Mapping[str, Direction] | None = None,
) -> dict[str, int]:
    """For each metric column: the number of the best run in ``frame`` (NaN never wins).

    ``directions`` maps metric names to "min"/"max" (:attr:`RunSet.directions`); a metric
    missing from it is judged by its name.
    """
    best: dict[str, int] = {}
    if frame.empty:
        return best
    for column in columns:
        values = frame[column]
        if values.dtype.kind not in "iuf" or not values.notna().any():
            continue
        name = metric_column(column)[len("metrics.") :]
        way = (directions or {}).get(name) or display_direction(name)
        index = values.idxmin() if way == "min" else values.idxmax()
        best[column] = int(frame.at[index, "number"])
    return best


def ema(values: numpy.ndarray, smoothing: float) -> numpy.ndarray:
    """Exponential moving average with weight ``smoothing`` in [0, 1), debiased like
    TensorBoard so the curve starts at the first value; NaNs are skipped, not spread."""
    import numpy as np

    if smoothing <= 0 or len(values) == 0:
        return values
    smoothing = min(float(smoothing), 0.999)
    out = np.empty_like(values, dtype=float)
    last = 0.0
    weight = 0.0
    for i, value in enumerate(values.tolist()):
        if value != value:  # NaN
            out[i] = math.nan
            continue
        last = last * smoothing + (1 - smoothing) * value
        weight = weight * smoothing + (1 - smoothing)
        out[i] = last / weight
    return out


def check_metric(runset: RunSet, metric: str) -> str:
    """The metric name (no prefix) if some run has it, else a one-line :class:`NbtrackError`."""
    name = metric_column(str(metric))[len("metrics.") :]
    known = runset.metrics
    if name not in known:
        listed = ", ".join(known[:15]) + (" …" if len(known) > 15 else "")
        raise NbtrackError(
            f"no run here logged the metric {name!r}; "
            + (
                f"logged metrics: {listed}"
                if known
                else "these runs logged no metrics (log some with track.log(...))"
            )
        )
    return name
