"""Plotly figures of runs: metric curves, parallel coordinates, a param–metric scatter.

Each builder returns a plain ``plotly.graph_objects.Figure``; the compare widget copies
them into its ``FigureWidget``s, :func:`nbtrack.plot` returns one as is, and ``save_html``
writes them out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbtrack.errors import UsageError
from nbtrack.metrics import Direction, display_direction
from nbtrack.widgets.runset import Curve, ema, run_label

if TYPE_CHECKING:
    import pandas
    import plotly.graph_objects as go

#: Colours for runs, stable by position in the selection.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
HEIGHT = 340
#: Width of the curves and scatter figures; parallel coordinates grow with their axes.
WIDTH = 480
TEMPLATE = "plotly_white"

#: A figure as plain data: ``{"data": [trace dicts], "layout": {...}}``. Builders return
#: specs rather than ``go.Figure``s because validating a figure twice (once to build it, once
#: to copy it into a FigureWidget) costs more than everything else the widget does.
Spec = dict[str, Any]


def to_figure(spec: Spec) -> go.Figure:
    """A plain plotly figure of ``spec``."""
    import plotly.graph_objects as go

    return go.Figure(data=spec["data"], layout={**spec["layout"], "template": TEMPLATE})


def new_widget(spec: Spec) -> go.FigureWidget:
    """A FigureWidget showing ``spec``; later specs go in with :func:`apply`."""
    import plotly.graph_objects as go

    return go.FigureWidget(data=spec["data"], layout={**spec["layout"], "template": TEMPLATE})


def apply(widget: go.FigureWidget, spec: Spec) -> None:
    """Replace ``widget``'s traces and layout with ``spec``'s, as one update in the browser.

    The template is set once by :func:`new_widget`; re-validating it on every change would
    cost tens of milliseconds.
    """
    with widget.batch_update():
        widget.data = ()
        if spec["data"]:
            widget.add_traces(spec["data"])
        widget.layout.update(spec["layout"], overwrite=True)


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}},
        "height": HEIGHT,
        "width": WIDTH,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
        "annotations": [],
        "xaxis": {"title": {"text": ""}},
        "yaxis": {"title": {"text": ""}},
        "showlegend": False,
    }
    layout.update(extra)
    return layout


def _note(layout: dict[str, Any], text: str) -> dict[str, Any]:
    layout["annotations"] = [
        {
            "text": text,
            "showarrow": False,
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.5,
            "font": {"size": 12},
        }
    ]
    return layout


def curves_spec(
    curves: Sequence[Curve], metric: str, smoothing: float = 0.0, title: str | None = None
) -> Spec:
    """``metric`` over steps, one line per run; with ``smoothing`` > 0 the raw values are
    drawn faintly behind the EMA-smoothed line."""
    traces: list[dict[str, Any]] = []
    for i, curve in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        if smoothing > 0:
            traces.append(
                {
                    "type": "scatter",
                    "x": curve.steps,
                    "y": curve.values,
                    "mode": "lines",
                    "name": f"{curve.label} (raw)",
                    "line": {"color": colour, "width": 1},
                    "opacity": 0.25,
                    "showlegend": False,
                    "hoverinfo": "skip",
                    "legendgroup": str(curve.number),
                }
            )
        traces.append(
            {
                "type": "scatter",
                "x": curve.steps,
                "y": ema(curve.values, smoothing),
                "mode": "lines",
                "name": curve.label,
                "line": {"color": colour, "width": 2},
                "legendgroup": str(curve.number),
                "hovertemplate": f"{curve.label}<br>step %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>",
            }
        )
    heading = title or f"{metric} over steps"
    if smoothing > 0:
        heading += f" (EMA {smoothing:.2f})"
    layout = _layout(
        heading,
        xaxis={"title": {"text": "step"}},
        yaxis={"title": {"text": metric}},
        legend={"font": {"size": 10}},
        showlegend=True,
    )
    if not curves:
        _note(layout, "no curves: select runs that logged this metric")
    return {"data": traces, "layout": layout}


def curves_figure(
    curves: Sequence[Curve], metric: str, smoothing: float = 0.0, title: str | None = None
) -> go.Figure:
    """:func:`curves_spec` as a plotly figure."""
    return to_figure(curves_spec(curves, metric, smoothing, title))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _dimension(label: str, column: pandas.Series) -> dict[str, Any] | None:
    """One parallel-coordinates axis; categorical when the values are not all numbers.

    Returns ``None`` for a param that does not vary across the runs shown.
    """
    import numpy as np

    if column.dtype.kind in "iuf" and column.notna().all():
        values = column.to_numpy(dtype=float)
        if len(values) > 1 and values.min() == values.max():
            return None
        return {"label": label, "values": values}
    shown = [
        "—" if _missing(v) else (f"{v:.6g}" if isinstance(v, float) else str(v))
        for v in column.tolist()
    ]
    distinct = sorted(set(shown), key=lambda s: (s == "—", _num_or_inf(s), s))
    if len(shown) > 1 and len(distinct) < 2:
        return None
    codes = {text: i for i, text in enumerate(distinct)}
    return {
        "label": label,
        "values": np.array([codes[s] for s in shown], dtype=float),
        "tickvals": list(range(len(distinct))),
        "ticktext": distinct,
    }


def _num_or_inf(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.inf


def parallel_spec(
    frame: pandas.DataFrame,
    param_columns: Sequence[str],
    metric: str,
    title: str | None = None,
    *,
    direction: Direction | None = None,
) -> Spec:
    """Parallel coordinates of the runs in ``frame``: each param that varies, then ``metric``.

    The colour scale runs towards the better end: ``direction`` is the metric's ("min" or
    "max", e.g. :meth:`RunSet.direction`; by default judged from its name).
    """
    import numpy as np

    column = f"metrics.{metric}"
    heading = title or f"params → {metric}"
    layout = _layout(heading, margin={"l": 60, "r": 60, "t": 80, "b": 30}, width=2 * WIDTH)
    if column not in frame.columns or frame.empty:
        return {"data": [], "layout": _note(layout, "no runs with this metric")}
    dims = [
        dim
        for name in param_columns
        if (dim := _dimension(name[len("params.") :], frame[name])) is not None
    ]
    # About 110 px per axis (wider than the cell scrolls), at least the two figures above it.
    layout["width"] = max(2 * WIDTH, 110 * len(dims) + 160)
    values = frame[column].to_numpy(dtype=float)
    finite = values[~np.isnan(values)]
    values = np.where(np.isnan(values), finite.min() if len(finite) else 0.0, values)
    dims.append({"label": metric, "values": values})
    trace = {
        "type": "parcoords",
        "dimensions": dims,
        "line": {
            "color": values,
            "colorscale": "Viridis",
            "reversescale": (direction or display_direction(metric)) == "min",
            "showscale": True,
            "colorbar": {"thickness": 12},
        },
        "labelfont": {"size": 11},
        "tickfont": {"size": 9},
    }
    return {"data": [trace], "layout": layout}


def parallel_figure(
    frame: pandas.DataFrame,
    param_columns: Sequence[str],
    metric: str,
    title: str | None = None,
    *,
    direction: Direction | None = None,
) -> go.Figure:
    """:func:`parallel_spec` as a plotly figure."""
    return to_figure(parallel_spec(frame, param_columns, metric, title, direction=direction))


def scatter_spec(
    frame: pandas.DataFrame,
    param: str | None,
    metric: str,
    selected: Sequence[int] = (),
    best: int | None = None,
) -> Spec:
    """``metric`` against ``param`` for every run in ``frame``; selected runs stand out."""
    import numpy as np

    column = f"metrics.{metric}"
    label = param[len("params.") :] if param and param.startswith("params.") else (param or "")
    layout = _layout(
        f"{metric} vs {label or '(no param)'}",
        xaxis={"title": {"text": label}},
        yaxis={"title": {"text": metric}},
        showlegend=True,
        legend={"font": {"size": 10}},
    )
    if not param or param not in frame.columns or column not in frame.columns or frame.empty:
        return {"data": [], "layout": _note(layout, "no data for this param and metric")}
    raw = frame[param]
    xs = (
        raw.to_numpy(dtype=float)
        if raw.dtype.kind in "iuf"
        else np.array([_scatter_x(v) for v in raw.tolist()], dtype=object)
    )
    ys = frame[column].to_numpy(dtype=float)
    numbers = frame["number"].to_numpy(dtype=int)
    names = frame["name"].tolist() if "name" in frame.columns else [None] * len(numbers)
    labels = np.array(
        [run_label(n, name) for n, name in zip(numbers.tolist(), names)], dtype=object
    )
    chosen = np.isin(numbers, np.asarray(list(selected), dtype=int))
    traces = []
    for name, keep, marker in (
        ("runs", ~chosen, {"color": "#8da0cb", "size": 7}),
        (
            "selected",
            chosen,
            {"color": "#ff7f0e", "size": 11, "line": {"width": 1, "color": "#333"}},
        ),
    ):
        if not keep.any():
            continue
        traces.append(
            {
                "type": "scatter",
                "x": xs[keep],
                "y": ys[keep],
                "mode": "markers",
                "name": name,
                "marker": marker,
                "text": labels[keep],
                "customdata": numbers[keep],
                "hovertemplate": f"%{{text}}<br>{label} %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>",
            }
        )
    if best is not None and best in set(numbers.tolist()):
        i = int(np.flatnonzero(numbers == best)[0])
        traces.append(
            {
                "type": "scatter",
                "x": [xs[i]],
                "y": [ys[i]],
                "mode": "markers",
                "name": f"best {labels[i]}",
                "hoverinfo": "skip",
                "marker": {
                    "symbol": "star",
                    "size": 16,
                    "color": "#2ca02c",
                    "line": {"width": 1, "color": "#1a1a1a"},
                },
            }
        )
    return {"data": traces, "layout": layout}


def scatter_figure(
    frame: pandas.DataFrame,
    param: str | None,
    metric: str,
    selected: Sequence[int] = (),
    best: int | None = None,
) -> go.Figure:
    """:func:`scatter_spec` as a plotly figure."""
    return to_figure(scatter_spec(frame, param, metric, selected, best))


def _scatter_x(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return str(value)
    return value


def plot(metric: str, runs: Any = None, *, smoothing: float = 0.0, store: Any = None) -> go.Figure:
    """A plotly figure of ``metric`` over steps for ``runs`` (see :func:`nbtrack.plot`)."""
    from nbtrack.errors import NbtrackError
    from nbtrack.widgets.runset import RunSet, check_metric

    runset = RunSet(runs, store=store)
    if runset.problems:
        raise PlotError("; ".join(runset.problems))
    if runset.empty:
        raise PlotError(
            f"no runs to plot in the store at {runset.store.shown}; track a cell "
            "with %%track or nbtrack.run() first"
        )
    try:
        name = check_metric(runset, metric)
    except NbtrackError as exc:
        raise PlotError(str(exc)) from None
    if not 0 <= smoothing < 1:
        raise PlotError(f"smoothing must be in [0, 1), got {smoothing}")
    return curves_figure(runset.curves(runset.numbers(), name), name, smoothing)


class PlotError(UsageError):
    """Bad input to :func:`nbtrack.plot` (unknown runs or metric, an empty store)."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback: the message says it all.
        return [f"PlotError: {self}"]
