"""Where a sweep stands, and its renderings: text for terminals, HTML (with SVG plots) for
notebooks. Renderings are pure functions of a :class:`SweepProgress`; building one reads
the study (:func:`progress_of`), never the other way round."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from nbtrack.sweeps.runner import Sweep

__all__ = [
    "TrialPoint",
    "SweepProgress",
    "progress_of",
    "progress_text",
    "progress_html",
    "history_svg",
    "parallel_svg",
]


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the displays show it."""

    number: int
    state: str  # running, complete, pruned, failed, interrupted, crashed
    value: float | None
    params: Mapping[str, Any]
    run_id: str | None = None


@dataclass(frozen=True)
class SweepProgress:
    """A sweep's trials so far and what it is after."""

    number: int
    name: str | None
    objective: str
    direction: str  # "min" or "max"
    n_trials: int
    sampler: str
    pruner: str
    params: tuple[str, ...]
    trials: tuple[TrialPoint, ...]
    best_run: int | None = None  # the run number of the best trial
    status: str = "running"
    importances: Mapping[str, float] = field(default_factory=dict)

    def count(self, *states: str) -> int:
        """How many trials are in one of ``states``."""
        return sum(1 for t in self.trials if t.state in states)

    @property
    def best(self) -> TrialPoint | None:
        """The best complete trial so far."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        if not done:
            return None
        pick = min if self.direction == "min" else max
        return pick(done, key=lambda t: float(t.value or 0.0))


def _state(trial: optuna.trial.FrozenTrial, link: Mapping[str, Any] | None) -> str:
    from optuna.trial import TrialState

    if trial.state == TrialState.FAIL:
        # Optuna's FAIL: the store says whether the cell raised or the trial was stopped.
        state = (link or {}).get("state")
        return str(state) if state in ("failed", "interrupted", "crashed") else "failed"
    return {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }[trial.state]


def progress_of(sweep: Sweep, study: optuna.Study, *, status: str = "running") -> SweepProgress:
    """The sweep's progress, read from its study and the store's trial links."""
    from nbtrack.sweeps.study import links_of

    links = links_of(sweep.store, sweep.id)
    trials = tuple(
        TrialPoint(
            t.number,
            _state(t, links.get(t.number)),
            t.value if t.values else None,
            dict(t.params),
            (links.get(t.number) or {}).get("run_id"),
        )
        for t in study.get_trials(deepcopy=False)
    )
    progress = SweepProgress(
        number=sweep.number,
        name=sweep.name,
        objective=sweep.objective,
        direction=sweep.direction,
        n_trials=sweep.n_trials,
        sampler=sweep.sampler,
        pruner=sweep.pruner,
        params=tuple(d.name for d in sweep.dims),
        trials=trials,
        status=status,
    )
    best = progress.best
    if best is not None and best.run_id:
        try:
            number = int(sweep.store.run_row(best.run_id)["number"])
        except Exception:
            number = None
        from dataclasses import replace

        progress = replace(progress, best_run=number)
    return progress


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _counts(p: SweepProgress) -> str:
    parts = [f"{p.count('complete')} complete"]
    for state in ("pruned", "failed", "interrupted", "crashed", "running"):
        n = p.count(state)
        if n:
            parts.append(f"{n} {state}")
    counted = len(p.trials) - p.count("interrupted", "crashed")
    return f"{counted}/{p.n_trials} trials: " + ", ".join(parts)


def _best_line(p: SweepProgress) -> str:
    best = p.best
    if best is None:
        return "best: none yet"
    run = f", run #{p.best_run}" if p.best_run is not None else ""
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
    return f"best: {p.objective}={_fmt(best.value)} (trial {best.number}{run}): {params}"


def progress_text(p: SweepProgress) -> str:
    """A few lines for a terminal: counts, best trial, importances when known."""
    goal = "minimise" if p.direction == "min" else "maximise"
    lines = [
        f"nbtrack sweep #{p.number} {p.name or ''} ({p.status}): {goal} {p.objective}, "
        f"{p.sampler} sampler, pruner {p.pruner}",
        "  " + _counts(p),
        "  " + _best_line(p),
    ]
    if p.importances:
        lines.append(
            "  importance: "
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(p.importances.items(), key=_neg))
        )
    return "\n".join(lines)


def _neg(item: tuple[str, float]) -> float:
    return -item[1]


def progress_html(p: SweepProgress) -> str:
    """The notebook view: counts and best trial, the optimisation history, parallel
    coordinates of the complete trials, and importances when known."""
    goal = "minimise" if p.direction == "min" else "maximise"
    esc = html.escape
    head = (
        f"<b>nbtrack sweep #{p.number}</b> {esc(p.name or '')} "
        f"<span style='color:#666'>({esc(p.status)}: {goal} <code>{esc(p.objective)}</code>, "
        f"{esc(p.sampler)} sampler, pruner {esc(p.pruner)})</span>"
    )
    body = [
        f"<div>{head}</div>",
        f"<div>{esc(_counts(p))}</div>",
        f"<div>{esc(_best_line(p))}</div>",
        "<div style='display:flex;gap:16px;flex-wrap:wrap'>",
        history_svg(p),
        parallel_svg(p),
        "</div>",
    ]
    if p.importances:
        rows = "".join(
            f"<tr><td><code>{esc(k)}</code></td><td>"
            f"<div style='background:#4c78a8;height:10px;width:{max(1, int(v * 200))}px'>"
            f"</div></td><td>{v:.2f}</td></tr>"
            for k, v in sorted(p.importances.items(), key=_neg)
        )
        body.append(
            "<div><b>parameter importance</b> (Optuna's optuna.importance)"
            f"<table>{rows}</table></div>"
        )
    return "<div class='nbtrack-sweep'>" + "".join(body) + "</div>"


_W, _H, _PAD = 360, 200, 32
_COLOURS = {"complete": "#4c78a8", "pruned": "#bbbbbb", "failed": "#e45756"}


def _scale(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def history_svg(p: SweepProgress) -> str:
    """The optimisation history: each trial's value, and the best so far as a line."""
    points = [t for t in p.trials if t.value is not None and math.isfinite(t.value)]
    frame = (
        f"<svg width='{_W}' height='{_H}' xmlns='http://www.w3.org/2000/svg' "
        f"font-size='10' font-family='sans-serif'>"
        f"<text x='{_PAD}' y='12'>optimisation history</text>"
    )
    if not points:
        return frame + f"<text x='{_PAD}' y='{_H // 2}'>no values yet</text></svg>"
    lo, hi = _scale([float(t.value or 0.0) for t in points])
    last = max(p.n_trials - 1, max(t.number for t in points), 1)

    def xy(number: int, value: float) -> tuple[float, float]:
        x = _PAD + (_W - 2 * _PAD) * number / last
        y = _H - _PAD - (_H - 2 * _PAD) * (value - lo) / (hi - lo)
        return round(x, 1), round(y, 1)

    parts = [frame]
    best: float | None = None
    line = []
    for t in sorted(points, key=lambda t: t.number):
        value = float(t.value or 0.0)
        if t.state == "complete" and (
            best is None or (value < best if p.direction == "min" else value > best)
        ):
            best = value
        if best is not None:
            line.append(xy(t.number, best))
        x, y = xy(t.number, value)
        colour = _COLOURS.get(t.state, "#999")
        parts.append(f"<circle cx='{x}' cy='{y}' r='3' fill='{colour}'/>")
    if line:
        path = " ".join(f"{x},{y}" for x, y in line)
        parts.append(f"<polyline points='{path}' fill='none' stroke='#f58518' stroke-width='2'/>")
    parts.append(
        f"<text x='2' y='{_PAD}'>{_fmt(hi)}</text><text x='2' y='{_H - _PAD}'>{_fmt(lo)}</text>"
        f"<text x='{_W - 4}' y='{_H - 8}' text-anchor='end'>trial {last}</text>"
    )
    return "".join(parts) + "</svg>"


def parallel_svg(p: SweepProgress) -> str:
    """Parallel coordinates: one line per complete trial across the searched parameters
    (then the objective), darker for better values."""
    done = [t for t in p.trials if t.state == "complete" and t.value is not None]
    axes = [*p.params, p.objective]
    frame = (
        f"<svg width='{_W}' height='{_H}' xmlns='http://www.w3.org/2000/svg' "
        f"font-size='10' font-family='sans-serif'>"
        f"<text x='{_PAD}' y='12'>parallel coordinates</text>"
    )
    if not done or not p.params:
        return frame + f"<text x='{_PAD}' y='{_H // 2}'>no complete trials yet</text></svg>"

    def column(name: str) -> list[Any]:
        return [t.value if name == p.objective else t.params.get(name) for t in done]

    positions: dict[str, dict[Any, float]] = {}
    for name in axes:
        values = column(name)
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == len(values):
            lo, hi = _scale([float(v) for v in numbers])
            positions[name] = {v: (float(v) - lo) / (hi - lo) for v in values}
        else:
            distinct = sorted({repr(v) for v in values})
            spread = max(len(distinct) - 1, 1)
            index = {d: i / spread for i, d in enumerate(distinct)}
            positions[name] = {v: index[repr(v)] for v in values}
    step = (_W - 2 * _PAD) / max(len(axes) - 1, 1)
    parts = [frame]
    values = [float(t.value or 0.0) for t in done]
    lo, hi = _scale(values)
    for t in done:
        goodness = (float(t.value or 0.0) - lo) / (hi - lo)
        if p.direction == "min":
            goodness = 1 - goodness
        pts = []
        for i, name in enumerate(axes):
            v = t.value if name == p.objective else t.params.get(name)
            y = _H - _PAD - (_H - 2 * _PAD) * positions[name].get(v, 0.5)
            pts.append(f"{round(_PAD + i * step, 1)},{round(y, 1)}")
        opacity = round(0.15 + 0.85 * goodness, 2)
        parts.append(
            f"<polyline points='{' '.join(pts)}' fill='none' stroke='#4c78a8' "
            f"stroke-opacity='{opacity}'/>"
        )
    for i, name in enumerate(axes):
        x = round(_PAD + i * step, 1)
        parts.append(
            f"<line x1='{x}' y1='{_PAD}' x2='{x}' y2='{_H - _PAD}' stroke='#333'/>"
            f"<text x='{x}' y='{_H - 10}' text-anchor='middle'>{html.escape(name)}</text>"
        )
    return "".join(parts) + "</svg>"
