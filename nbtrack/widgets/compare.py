"""``nbtrack.compare()``: an ipywidgets application to filter, select and compare runs.

Layout, top to bottom: an error line (hidden when all is well); filters (name, tag,
status, a query over params and metrics, refresh); the metric picker; the run table (sort
by clicking a header, select by clicking rows, best value per metric in green); metric
curves of the selected runs with an EMA slider next to parallel coordinates of their
params; a param–metric scatter next to the diff of the first two selected runs.

Everything the mouse does can be done from code, which is how the tests drive it::

    w = nbtrack.compare()
    w.query = "metrics.val_acc > 0.9 and params.lr < 0.01"
    w.metric = "val_acc"
    w.select([1, 3])
    w.save_html("comparison.html")
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError
from nbtrack.widgets import figures, render
from nbtrack.widgets.filters import QueryError, RunQuery, parse_query
from nbtrack.widgets.runset import RunSet, best_numbers, check_metric, metric_column

if TYPE_CHECKING:
    import pandas
    import plotly.graph_objects as go

    from nbtrack.query import RunDiff

ANY = "(any)"
#: Curves of this many best runs are shown while nothing is selected.
DEFAULT_CURVES = 5


class CompareWidget:
    """The compare application; display it as the last expression of a cell.

    Drive it from code with :meth:`select`, :attr:`metric`, :attr:`query`,
    :attr:`name_filter`, :attr:`tag`, :attr:`status`, :meth:`sort`, :attr:`smoothing`,
    :attr:`scatter_param`, :meth:`refresh` and :meth:`save_html`; read what it shows from
    :attr:`view`, :attr:`figures`, :attr:`diff` and :attr:`error`.
    """

    def __init__(
        self, runs: Any = None, metric: str | None = None, *, store: Any = None, page_size: int = 25
    ) -> None:
        import ipywidgets as W

        self._problems: dict[str, str] = {}
        self._query: RunQuery | None = None
        self._view: pandas.DataFrame | None = None
        self._diff: RunDiff | None = None
        self._diff_key: tuple[int, int] | None = None
        self._busy = False
        self.page_size = max(1, int(page_size))
        self._runs: RunSet | None = None
        try:
            self._runs = RunSet(runs, store=store)
        except NbtrackError as exc:  # an unreadable store: an empty widget that says why
            self._problems["store"] = str(exc)
        if self._runs is not None and self._runs.problems:
            self._problems["runs"] = "; ".join(self._runs.problems)

        self._error = W.HTML("", layout=W.Layout(display="none"))
        self._name = W.Text(
            placeholder="name or glob",
            description="name",
            continuous_update=False,
            layout=W.Layout(width="210px"),
        )
        self._tag = W.Dropdown(
            options=[ANY], value=ANY, description="tag", layout=W.Layout(width="170px")
        )
        self._status = W.Dropdown(
            options=[ANY], value=ANY, description="status", layout=W.Layout(width="180px")
        )
        self._query_box = W.Text(
            placeholder="metrics.val_acc > 0.9 and params.lr < 0.01",
            description="query",
            continuous_update=False,
            layout=W.Layout(flex="1 1 auto", min_width="260px"),
        )
        self._refresh = W.Button(
            description="refresh",
            icon="refresh",
            tooltip="read new runs from the store",
            layout=W.Layout(width="100px"),
        )
        self._metric = W.Dropdown(options=[], description="metric", layout=W.Layout(width="260px"))
        self._table = _run_table()
        self._smoothing = W.FloatSlider(
            value=0.0,
            min=0.0,
            max=0.99,
            step=0.01,
            description="smoothing",
            readout_format=".2f",
            continuous_update=False,
        )
        self._scatter_x = W.Dropdown(
            options=[], description="x param", layout=W.Layout(width="260px")
        )
        self._unchanged = W.Checkbox(value=False, description="show unchanged", indent=False)
        self._diff_html = W.HTML("", layout=W.Layout(max_height="460px", overflow="auto"))
        self._curves = figures.new_widget(figures.curves_spec([], ""))
        self._parallel = figures.new_widget(figures.parallel_spec(_no_frame(), [], ""))
        self._scatter = figures.new_widget(figures.scatter_spec(_no_frame(), None, ""))
        for name, fig in (
            ("curves", self._curves),
            ("parallel", self._parallel),
            ("scatter", self._scatter),
        ):
            fig.add_class(f"nbtrack-{name}")
        self._table.add_class("nbtrack-runtable")
        self._diff_html.add_class("nbtrack-diffpanel")

        # Figures have fixed widths (see figures.WIDTH): a plotly widget sized by its
        # container can render at its default size before the container is laid out.
        row = {"layout": W.Layout(flex_flow="row wrap", align_items="flex-start")}
        self.widget = W.VBox(
            [
                W.HTML(f"<style>{render.CSS}</style>"),
                self._error,
                W.HBox(
                    [self._name, self._tag, self._status, self._query_box, self._refresh],
                    layout=W.Layout(flex_flow="row wrap"),
                ),
                self._metric,
                self._table,
                W.HBox(
                    [
                        W.VBox([self._smoothing, self._curves]),
                        W.VBox([self._scatter_x, self._scatter]),
                    ],
                    **row,
                ),
                W.Box([self._parallel], layout=W.Layout(overflow="auto", width="100%")),
                W.VBox([W.HTML("<b>diff</b>"), self._unchanged, self._diff_html]),
            ],
            layout=W.Layout(width="auto"),
        )
        self.widget.add_class("nbtrack-compare")

        self._show_problems()
        self._fill_options(metric)
        self._update_all()

        self._name.observe(self._on_filter, "value")
        self._tag.observe(self._on_filter, "value")
        self._status.observe(self._on_filter, "value")
        self._query_box.observe(self._on_query, "value")
        self._refresh.on_click(lambda _: self.refresh())
        self._metric.observe(self._on_metric, "value")
        self._table.observe(self._on_sort, ["sort_by", "ascending"])
        self._table.observe(self._on_page, "page")
        self._table.observe(self._on_select, "selected")
        self._smoothing.observe(lambda _: self._draw_curves(), "value")
        self._scatter_x.observe(lambda _: self._draw_scatter(), "value")
        self._unchanged.observe(lambda _: self._draw_diff(), "value")

    # -- display ------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        count = 0 if self._view is None else len(self._view)
        return (
            f"<nbtrack compare: {count} runs shown, selected {self.selected}, "
            f"metric {self.metric!r}{', error: ' + self.error if self.error else ''}>"
        )

    # -- the public, scriptable state -----------------------------------------------------------
    @property
    def error(self) -> str:
        """The message the widget's error line shows, or ``""``."""
        return " · ".join(self._problems.values())

    @property
    def view(self) -> pandas.DataFrame:
        """The runs passing the filters, in table order (a slice of :func:`nbtrack.runs`)."""
        assert self._view is not None
        return self._view

    @property
    def selected(self) -> list[int]:
        """Numbers of the selected runs, in the order they were selected."""
        return list(self._table.selected)

    def select(self, refs: Iterable[Any]) -> None:
        """Select runs by number (``[1, 3]``), ``"#3"``, id or id prefix; replaces the selection."""
        if self._runs is None:
            return
        if isinstance(refs, (int, str)):
            refs = [refs]
        numbers, unknown = self._runs.resolve_numbers(refs)
        self._set_problem(
            "select", f"not among the compared runs: {', '.join(unknown)}" if unknown else None
        )
        self._table.selected = numbers

    @property
    def metric(self) -> str | None:
        """The metric that curves, parallel coordinates, scatter and best values use."""
        return self._metric.value or None

    @metric.setter
    def metric(self, value: str) -> None:
        if self._runs is None:
            return
        try:
            name = check_metric(self._runs, value)
        except NbtrackError as exc:
            self._set_problem("metric", str(exc))
            return
        self._set_problem("metric", None)
        self._metric.value = name

    @property
    def query(self) -> str:
        """The filter query, e.g. ``"metrics.val_acc > 0.9 and params.lr < 0.01"``."""
        return str(self._query_box.value)

    @query.setter
    def query(self, text: str) -> None:
        self._query_box.value = text or ""

    @property
    def name_filter(self) -> str:
        """Show runs whose name contains this text, or matches it as a glob (``digits/*``)."""
        return str(self._name.value)

    @name_filter.setter
    def name_filter(self, value: str) -> None:
        self._name.value = value or ""

    @property
    def tag(self) -> str | None:
        """Show only runs with this tag (``None``: any)."""
        return None if self._tag.value == ANY else self._tag.value

    @tag.setter
    def tag(self, value: str | None) -> None:
        self._set_choice(self._tag, value, "tag")

    @property
    def status(self) -> str | None:
        """Show only runs with this status (``None``: any)."""
        return None if self._status.value == ANY else self._status.value

    @status.setter
    def status(self, value: str | None) -> None:
        self._set_choice(self._status, value, "status")

    def sort(self, column: str, ascending: bool = True) -> None:
        """Sort the table by ``column`` (``"metrics.val_acc"``, ``"val_acc"``, ``"name"``…)."""
        if self._runs is None:
            return
        columns = self._runs.columns
        if column not in columns:
            matches = [c for c in columns if c.split(".", 1)[-1] == column]
            if len(matches) != 1:
                self._set_problem("sort", f"cannot sort by {column!r}: no such column")
                return
            column = matches[0]
        self._set_problem("sort", None)
        with self._table.hold_trait_notifications():
            self._table.sort_by = column
            self._table.ascending = ascending
            self._table.page = 0

    @property
    def page(self) -> int:
        """The table page shown (from 0)."""
        return int(self._table.page)

    @page.setter
    def page(self, value: int) -> None:
        self._table.page = max(0, min(int(value), max(self._table.page_count - 1, 0)))

    @property
    def smoothing(self) -> float:
        """EMA weight of the curves, 0 (raw) to 0.99."""
        return float(self._smoothing.value)

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self._smoothing.value = float(value)

    @property
    def scatter_param(self) -> str | None:
        """The parameter on the scatter's x axis (``"lr"`` or ``"params.lr"``)."""
        return self._scatter_x.value or None

    @scatter_param.setter
    def scatter_param(self, value: str) -> None:
        column = value if value.startswith("params.") else f"params.{value}"
        options = [v for _, v in self._scatter_x.options]
        if column not in options:
            self._set_problem(
                "scatter",
                f"no param {value!r}; params: "
                + ", ".join(o[len("params.") :] for o in options[:15]),
            )
            return
        self._set_problem("scatter", None)
        self._scatter_x.value = column

    @property
    def show_unchanged(self) -> bool:
        """Whether the diff also lists params, metrics and seeds the two runs share."""
        return bool(self._unchanged.value)

    @show_unchanged.setter
    def show_unchanged(self, value: bool) -> None:
        self._unchanged.value = bool(value)

    @property
    def figures(self) -> dict[str, go.FigureWidget]:
        """The live plotly figures: ``curves``, ``parallel`` and ``scatter``."""
        return {"curves": self._curves, "parallel": self._parallel, "scatter": self._scatter}

    @property
    def diff(self) -> RunDiff | None:
        """The diff of the first two selected runs, or ``None`` with fewer than two."""
        return self._diff

    @property
    def diff_html(self) -> str:
        """The HTML the diff panel shows."""
        return str(self._diff_html.value)

    def refresh(self) -> None:
        """Read the store again: new runs (when comparing the whole store), new metrics."""
        if self._runs is None:
            return
        try:
            self._runs.load()
        except NbtrackError as exc:
            self._set_problem("store", str(exc))
            return
        self._set_problem("store", None)
        self._diff_key = None
        self._fill_options(self.metric)
        self._update_all()

    def save_html(self, path: str | os.PathLike[str], *, plotlyjs: str = "inline") -> Path:
        """Write a static snapshot: filters, the filtered table, the figures and the diff.

        ``plotlyjs="inline"`` makes the file self-contained (about 4 MB); ``"cdn"`` loads
        plotly.js from the internet instead.
        """
        if plotlyjs not in ("inline", "cdn"):
            raise NbtrackError(f"plotlyjs must be 'inline' or 'cdn', not {plotlyjs!r}")
        target = Path(path)
        include: Any = True if plotlyjs == "inline" else "cdn"
        parts = []
        for key, fig in self.figures.items():
            parts.append(
                f"<div class='figure {key}'>"
                + fig.to_html(full_html=False, include_plotlyjs=include)
                + "</div>"
            )
            include = False
        view = self._view if self._view is not None else _no_frame()
        columns = self._runs.columns if self._runs is not None else []
        directions = self._runs.directions if self._runs is not None else {}
        best = best_numbers(view, [c for c in columns if c.startswith("metrics.")], directions)
        filters = (
            ", ".join(
                f"{k}={v!r}"
                for k, v in (
                    ("name", self.name_filter),
                    ("tag", self.tag),
                    ("status", self.status),
                    ("query", self.query),
                )
                if v
            )
            or "none"
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>nbtrack compare</title>"
            f"<style>{render.CSS} body{{font-family:sans-serif;font-size:12px}} "
            ".figure{display:inline-block;width:49%;vertical-align:top}</style></head>"
            "<body class='nbtrack-compare'><h2>nbtrack compare</h2>"
            f"<p>metric: <b>{html.escape(self.metric or '—')}</b> · filters: "
            f"{html.escape(filters)} · {len(view)} runs · selected: "
            f"{html.escape(', '.join(f'#{n}' for n in self.selected) or 'none')}</p>"
            + (f"<p class='nbtrack-error'>{html.escape(self.error)}</p>" if self.error else "")
            + render.static_table(view, columns, best, self.selected)
            + "".join(parts)
            + "<h3>diff</h3>"
            + (self.diff_html or "<p>select two runs to diff them</p>")
            + "</body></html>"
        )
        target.write_text(page, encoding="utf-8")
        return target

    # -- internals ------------------------------------------------------------------------
    def _set_problem(self, key: str, message: str | None) -> None:
        if message:
            self._problems[key] = message
        else:
            self._problems.pop(key, None)
        self._show_problems()

    def _show_problems(self) -> None:
        text = self.error
        self._error.value = (
            f"<div class='nbtrack-error'>nbtrack: {html.escape(text)}</div>" if text else ""
        )
        self._error.layout.display = "block" if text else "none"

    def _set_choice(self, dropdown: Any, value: str | None, what: str) -> None:
        wanted = value or ANY
        if wanted not in dropdown.options:
            self._set_problem(what, f"no run has {what} {value!r}")
            return
        self._set_problem(what, None)
        dropdown.value = wanted

    def _fill_options(self, metric: str | None) -> None:
        runs = self._runs
        if runs is None:
            return
        if runs.empty and "runs" not in self._problems:
            self._set_problem(
                "empty",
                f"no runs to compare in the store at {runs.store.shown}; "
                "track a cell with %%track or nbtrack.run(), then refresh()",
            )
        else:
            self._set_problem("empty", None)
        self._busy = True
        try:
            self._tag.options = [ANY, *runs.tags()]
            if self._tag.value not in self._tag.options:
                self._tag.value = ANY
            self._status.options = [ANY, *runs.statuses()]
            if self._status.value not in self._status.options:
                self._status.value = ANY
            metrics = runs.metrics
            current = self._metric.value
            self._metric.options = metrics
            choice = None
            if metric is not None and not runs.empty:
                try:
                    choice = check_metric(runs, metric)
                    self._set_problem("metric", None)
                except NbtrackError as exc:
                    self._set_problem("metric", str(exc))
            if choice is None:
                choice = current if current in metrics else (metrics[0] if metrics else None)
            self._metric.value = choice
            params = runs.param_columns
            previous = self._scatter_x.value
            self._scatter_x.options = [(p[len("params.") :], p) for p in params]
            self._scatter_x.value = (
                previous if previous in params else (params[0] if params else None)
            )
            self._table.columns = [
                {"key": c, "label": render.column_label(c)[1], "group": render.column_label(c)[0]}
                for c in runs.columns
            ]
            still = [n for n in self._table.selected if n in set(runs.numbers())]
            if still != list(self._table.selected):
                self._table.selected = still
        finally:
            self._busy = False

    def _compute_view(self) -> None:
        runs = self._runs
        if runs is None:
            self._view = _no_frame()
            return
        self._view = runs.view(
            name=self.name_filter,
            tag=self.tag,
            status=self.status,
            query=self._query,
            sort_by=self._table.sort_by,
            ascending=self._table.ascending,
        )

    def _update_all(self) -> None:
        self._compute_view()
        self._draw_table()
        self._draw_curves()
        self._draw_parallel()
        self._draw_scatter()
        self._draw_diff()

    def _best(self) -> dict[str, int]:
        runs = self._runs
        if runs is None or self._view is None:
            return {}
        return best_numbers(self._view, runs.metric_columns, runs.directions)

    def _draw_table(self) -> None:
        table, view = self._table, self.view
        runs = self._runs
        columns = runs.columns if runs is not None else []
        count = max(1, -(-len(view) // self.page_size))
        page = min(table.page, count - 1)
        start = page * self.page_size
        best = self._best()
        rows = render.table_rows(view.iloc[start : start + self.page_size], columns, best)
        total = len(runs.frame) if runs is not None else 0
        chosen = len(table.selected)
        hidden = len(set(table.selected) - set(view["number"].tolist())) if len(view) else chosen
        summary = f"{len(view)} of {total} runs"
        if chosen:
            summary += f" · {chosen} selected" + (
                f" ({hidden} hidden by the filters)" if hidden else ""
            )
        metric = self.metric
        best_run = best.get(metric_column(metric), -1) if metric else -1
        with table.hold_trait_notifications():
            table.page_count = count if len(view) else 0
            table.page = page
            table.rows = rows
            table.best_run = best_run
            table.summary = summary
            table.empty_message = "no runs match the filters" if total else "no runs yet"

    def _curve_runs(self) -> tuple[list[int], str]:
        """The runs whose curves are drawn: the selection, else the best few shown."""
        if self.selected:
            return self.selected, ""
        metric, view = self.metric, self.view
        column = metric_column(metric) if metric else ""
        if not metric or column not in view.columns or view.empty:
            return [], ""
        runs = self._runs
        ascending = runs is not None and runs.direction(metric) == "min"
        ranked = view.dropna(subset=[column]).sort_values(
            column, ascending=ascending, kind="stable"
        )
        numbers = [int(n) for n in ranked["number"].head(DEFAULT_CURVES).tolist()]
        return numbers, f"best {len(numbers)} shown (select runs to compare)"

    def _draw_curves(self) -> None:
        metric = self.metric
        runs = self._runs
        if runs is None or not metric:
            figures.apply(self._curves, figures.curves_spec([], metric or ""))
            return
        numbers, note = self._curve_runs()
        try:
            curves = runs.curves(numbers, metric)
        except NbtrackError as exc:
            self._set_problem("curves", str(exc))
            curves = []
        title = f"{metric} over steps" + (f" — {note}" if note else "")
        figures.apply(self._curves, figures.curves_spec(curves, metric, self.smoothing, title))

    def _draw_parallel(self) -> None:
        runs, metric = self._runs, self.metric
        if runs is None or not metric:
            figures.apply(self._parallel, figures.parallel_spec(_no_frame(), [], ""))
            return
        if self.selected:
            frame = runs.frame[runs.frame["number"].isin(self.selected)]
            title = f"params → {metric} ({len(frame)} selected runs)"
        else:
            frame = self.view
            title = f"params → {metric} (all {len(frame)} shown runs; select to narrow)"
        figures.apply(
            self._parallel,
            figures.parallel_spec(
                frame, runs.param_columns, metric, title, direction=runs.direction(metric)
            ),
        )

    def _draw_scatter(self) -> None:
        runs, metric = self._runs, self.metric
        if runs is None or not metric:
            figures.apply(self._scatter, figures.scatter_spec(_no_frame(), None, ""))
            return
        best = self._best().get(metric_column(metric))
        figures.apply(
            self._scatter,
            figures.scatter_spec(self.view, self.scatter_param, metric, self.selected, best),
        )

    def _draw_diff(self) -> None:
        selected = self.selected
        runs = self._runs
        if runs is None or len(selected) < 2:
            self._diff, self._diff_key = None, None
            self._diff_html.value = (
                "<div style='color:#57606a'>select two runs to see what "
                "differs: params, seeds, environment, inputs, code</div>"
            )
            return
        key = (selected[0], selected[1])
        if key != self._diff_key:
            from nbtrack.query import diff_records, load_record

            try:
                self._diff = diff_records(
                    load_record(runs.store, str(runs.row(key[0])["id"])),
                    load_record(runs.store, str(runs.row(key[1])["id"])),
                )
                self._diff_key = key
                self._set_problem("diff", None)
            except NbtrackError as exc:
                self._set_problem("diff", f"cannot diff #{key[0]} and #{key[1]}: {exc}")
                return
        assert self._diff is not None
        note = (
            ""
            if len(selected) == 2
            else f"<div style='color:#57606a'>diffing the first two of {len(selected)} "
            "selected runs</div>"
        )
        self._diff_html.value = note + render.diff_html(
            self._diff, show_unchanged=self.show_unchanged
        )

    # -- observers ------------------------------------------------------------------------
    def _on_filter(self, _: Any) -> None:
        if self._busy:
            return
        self._after_view_change()

    def _on_query(self, change: Any) -> None:
        runs = self._runs
        if runs is None:
            return
        try:
            self._query = parse_query(change["new"], runs.columns)
            self._set_problem("query", None)
        except QueryError as exc:
            # Keep the last good query's rows on screen; say what is wrong with this one.
            self._set_problem("query", str(exc))
            return
        self._after_view_change()

    def _after_view_change(self) -> None:
        self._table.page = 0
        self._compute_view()
        self._draw_table()
        if not self.selected:
            self._draw_curves()
            self._draw_parallel()
        self._draw_scatter()

    def _on_metric(self, _: Any) -> None:
        if self._busy:
            return
        self._set_problem("metric", None)
        self._draw_table()
        self._draw_curves()
        self._draw_parallel()
        self._draw_scatter()

    def _on_sort(self, _: Any) -> None:
        self._table.page = 0  # a new order starts at its first page
        self._compute_view()
        self._draw_table()

    def _on_page(self, _: Any) -> None:
        if not self._busy:
            self._busy = True
            try:
                self._draw_table()
            finally:
                self._busy = False

    def _on_select(self, _: Any) -> None:
        if self._busy:
            return
        self._draw_table()
        self._draw_curves()
        self._draw_parallel()
        self._draw_scatter()
        self._draw_diff()


def _run_table() -> Any:
    from nbtrack.widgets.run_table import RunTable

    return RunTable()


def _no_frame() -> pandas.DataFrame:
    import pandas as pd

    return pd.DataFrame({"number": [], "name": [], "status": []})


def compare(
    runs: Any = None, metric: str | None = None, *, store: Any = None, page_size: int = 25
) -> CompareWidget:
    """The compare widget (see :func:`nbtrack.compare`)."""
    return CompareWidget(runs, metric, store=store, page_size=page_size)
