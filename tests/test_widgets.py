"""The compare widget, its query language and ``nbtrack.plot``, driven from Python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ipywidgets  # noqa: F401 -- a test dependency; missing is a failure
import plotly  # noqa: F401 -- a test dependency; missing is a failure
import pytest

import nbtrack
from nbtrack.widgets.filters import QueryError, parse_query

# Run k (1-based) of RUNS: lr, optimiser, layers, tags, val_acc at the last step, loss.
RUNS = [
    ("mnist/mlp", 0.1, "sgd", 2, ["baseline"], 0.80),
    ("mnist/mlp", 0.01, "adam", 2, ["sweep"], 0.91),
    ("mnist/mlp", 0.001, "adam", 3, ["sweep"], 0.95),
    ("mnist/cnn", 0.005, "adam", 4, ["sweep", "cnn"], 0.97),
    ("cifar/cnn", 0.05, "sgd", 4, [], 0.62),
]


def _make_runs(store: Path, specs=RUNS, steps: int = 10) -> None:
    for name, lr, opt, layers, tags, acc in specs:
        params = {"lr": lr, "optimizer": opt, "layers": layers}
        with nbtrack.run(
            name=name, params=params, tags=tags, store=store, capture_env=False
        ) as track:
            for step in range(steps):
                frac = (step + 1) / steps
                track.log(val_acc=acc * frac, loss=(1 - acc) / frac, step=step)


@pytest.fixture
def runs_store(store_dir: Path) -> Path:
    _make_runs(store_dir)
    return store_dir


@pytest.fixture
def widget(runs_store: Path):
    return nbtrack.compare(store=runs_store)


def _trace_names(fig) -> list[str]:
    return [trace.name for trace in fig.data]


# -- the query language ------------------------------------------------------------------------

COLUMNS = [
    "number",
    "name",
    "status",
    "tags",
    "params.lr",
    "params.optimizer",
    "params.layers",
    "metrics.val_acc",
    "metrics.loss",
]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("metrics.val_acc > 0.9 and params.lr < 0.01", [3, 4]),
        ("metrics.val_acc > 0.9", [2, 3, 4]),
        ("0.001 < params.lr <= 0.05", [2, 4, 5]),
        ("params.optimizer == 'sgd' or params.layers >= 4", [1, 4, 5]),
        ("not params.optimizer == 'adam'", [1, 5]),
        ("params.optimizer in ['sgd']", [1, 5]),
        ("params.layers not in (2, 3)", [4, 5]),
        ("'cnn' in tags", [4]),
        ("'cnn' in name", [4, 5]),
        ("name == 'mnist/mlp' and val_acc >= 0.91", [2, 3]),  # a bare key names its column
        ("metrics.loss < params.lr or params.layers > 3", [4, 5]),  # column against column
        ("metrics.loss > params.lr", [1, 2, 3, 4, 5]),
        ("params.lr == 1e-3", [3]),
        ("params.lr > -1", [1, 2, 3, 4, 5]),
        ("number != 3 and status == 'finished'", [1, 2, 4, 5]),
    ],
)
def test_query_keeps_exactly_the_expected_runs(widget, query, expected) -> None:
    widget.query = query
    assert widget.error == ""
    assert sorted(widget.view["number"].tolist()) == expected


@pytest.mark.parametrize(
    "query, message",
    [
        ("__import__('os').system('x')", "function calls are not allowed"),
        ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
        ("name.__class__", "not allowed"),
        ("params.lr.__class__ == 1", "not allowed"),
        ("__builtins__", "not allowed"),
        ("(lambda: 1)()", "not allowed"),
        ("params['lr'] > 1", "not allowed"),
        ("[x for x in tags]", "not allowed"),
        ("f'{name}' == 'a'", "not allowed"),
        ("(x := 1)", "not allowed"),
        ("params.lr + 1 > 2", "not allowed"),
        ("metrics.val_acc >", "not valid"),
        ("metrics.nope > 1", "unknown column 'metrics.nope'"),
        ("lr_typo < 1", "unknown column 'lr_typo'"),
        ("(" * 300 + "1" + ")" * 300, "not valid"),
        ("not " * 5000 + "True", "limit"),
        ("x" * 3000, "limit"),
    ],
)
def test_unsafe_or_bad_queries_are_refused_with_a_message(query, message) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_query(query, COLUMNS)


def test_a_refused_query_never_runs_and_keeps_the_last_good_rows(
    widget, tmp_path, monkeypatch
) -> None:
    import os

    called = []
    monkeypatch.setattr(os, "system", lambda cmd: called.append(cmd) or 0)
    widget.query = "params.lr < 0.01"
    kept = widget.view["number"].tolist()
    widget.query = "__import__('os').system('touch pwned')"
    assert called == []
    assert "function calls are not allowed" in widget.error
    assert "function calls are not allowed" in widget._error.value  # the visible error line
    assert widget.view["number"].tolist() == kept
    widget.query = "metrics.val_acc >"
    assert "not valid" in widget.error
    widget.query = ""
    assert widget.error == ""
    assert len(widget.view) == len(RUNS)


def test_query_with_a_typo_in_a_column_suggests_the_real_one() -> None:
    with pytest.raises(QueryError, match="did you mean metrics.val_acc"):
        parse_query("val.val_acc > 1", COLUMNS)


# -- the widget --------------------------------------------------------------------------------


def test_selection_drives_curves_parallel_coordinates_scatter_and_diff(widget) -> None:
    widget.metric = "val_acc"
    # Nothing selected: the best runs' curves, every shown run in parallel coordinates.
    assert _trace_names(widget.figures["curves"])[:3] == [
        "#4 mnist/cnn",
        "#3 mnist/mlp",
        "#2 mnist/mlp",
    ]
    assert widget.diff is None
    assert "select two runs" in widget.diff_html

    widget.select([1, 3])
    assert widget.selected == [1, 3]
    assert _trace_names(widget.figures["curves"]) == ["#1 mnist/mlp", "#3 mnist/mlp"]
    curve = widget.figures["curves"].data[1]
    assert list(curve.x) == list(range(10))
    assert curve.y[-1] == pytest.approx(0.95)
    parallel = widget.figures["parallel"].data[0]
    labels = [d.label for d in parallel.dimensions]
    assert labels == ["layers", "lr", "optimizer", "val_acc"]  # every param varies here
    assert sorted(parallel.dimensions[-1].values) == pytest.approx([0.80, 0.95])
    selected = [t for t in widget.figures["scatter"].data if t.name == "selected"][0]
    assert sorted(selected.customdata) == [1, 3]

    diff = widget.diff
    assert (diff.a.number, diff.b.number) == (1, 3)
    assert dict((k, (a, b)) for k, a, b in diff.sections["params"]) == {
        "layers": (2, 3),
        "lr": (0.1, 0.001),
        "optimizer": ("sgd", "adam"),
    }
    html = widget.diff_html
    assert "optimizer" in html and "#ffebe9" in html and "#dafbe1" in html  # highlighted

    widget.select(["#2", 3])
    assert _trace_names(widget.figures["curves"]) == ["#2 mnist/mlp", "#3 mnist/mlp"]
    assert [k for k, _, _ in widget.diff.sections["params"]] == ["layers", "lr"]
    assert "optimizer" not in widget.diff_html  # only differences by default
    widget.show_unchanged = True
    assert "optimizer" in widget.diff_html and "class='same'" in widget.diff_html


def test_table_rows_sorting_paging_and_best_values(runs_store) -> None:
    w = nbtrack.compare(store=runs_store, page_size=2, metric="val_acc")
    table = w._table
    assert [r["number"] for r in table.rows] == [1, 2]
    assert table.page_count == 3
    assert table.best_run == 4  # highest val_acc
    keys = [c["key"] for c in table.columns]
    assert keys[:3] == ["number", "name", "status"]
    assert "params.lr" in keys and "metrics.val_acc" in keys
    w.sort("val_acc", ascending=False)
    assert [r["number"] for r in table.rows] == [4, 3]
    best_cells = table.rows[0]["best"]
    assert keys.index("metrics.val_acc") in best_cells
    assert keys.index("metrics.loss") in best_cells  # loss: lower is better, also run 4
    w.page = 2
    assert [r["number"] for r in table.rows] == [5]
    # The browser sorts by setting the traits; a header click on a string column:
    table.ascending = True
    table.sort_by = "params.optimizer"
    assert [r["number"] for r in table.rows][:2] == [2, 3]
    assert table.page == 0
    w.sort("no_such_column")
    assert "cannot sort" in w.error


def test_diff_of_tracked_cells_shows_their_code_diff(shell) -> None:
    for lr in ("0.1", "0.2"):
        result = shell.run_cell(
            f"%%track --name cell --quiet --no-env\nlr = {lr}\ntrack.log(acc=lr * 4)",
            store_history=True,
        )
        assert result.success
    w = nbtrack.compare(metric="acc")
    w.select([1, 2])
    html = w.diff_html
    assert "-lr = 0.1" in html and "+lr = 0.2" in html
    assert "background:#dafbe1'>+lr = 0.2" in html  # added lines green
    assert w.diff.sections["params"] == [("lr", 0.1, 0.2)]


def test_browser_side_selection_updates_everything(widget) -> None:
    widget._table.selected = [5, 4]  # what a click on two rows sends
    assert widget.selected == [5, 4]
    assert _trace_names(widget.figures["curves"]) == ["#5 cifar/cnn", "#4 mnist/cnn"]
    assert (widget.diff.a.number, widget.diff.b.number) == (5, 4)


def test_name_tag_and_status_filters(widget) -> None:
    widget.name_filter = "mnist/*"
    assert widget.view["number"].tolist() == [1, 2, 3, 4]
    widget.name_filter = "cnn"
    assert widget.view["number"].tolist() == [4, 5]
    widget.name_filter = ""
    widget.tag = "sweep"
    assert widget.view["number"].tolist() == [2, 3, 4]
    widget.status = "finished"
    assert widget.view["number"].tolist() == [2, 3, 4]
    widget.tag = "no-such-tag"
    assert "no run has tag" in widget.error
    widget.tag = None
    assert widget.error == ""
    assert len(widget.view) == 5


def test_metric_switch_and_unknown_metric(widget) -> None:
    widget.select([1, 2])
    widget.metric = "loss"
    assert widget.metric == "loss"
    assert widget.figures["curves"].layout.yaxis.title.text == "loss"
    assert widget._table.best_run == 4  # lowest loss
    widget.metric = "accuracy"
    assert "no run here logged the metric 'accuracy'" in widget.error
    assert widget.metric == "loss"  # unchanged
    widget.metric = "metrics.val_acc"
    assert widget.metric == "val_acc" and widget.error == ""


def test_unknown_metric_given_up_front_is_reported_and_a_real_one_used(runs_store) -> None:
    w = nbtrack.compare(metric="bleu")
    assert "no run here logged the metric 'bleu'; logged metrics: loss, val_acc" in w.error
    assert w.metric == "loss"
    assert len(w.figures["curves"].data) == 5


def test_smoothing_adds_smoothed_lines_over_faint_raw_ones(widget) -> None:
    widget.select([3])
    widget.metric = "loss"
    raw = list(widget.figures["curves"].data[0].y)
    widget.smoothing = 0.8
    traces = widget.figures["curves"].data
    assert [t.name for t in traces] == ["#3 mnist/mlp (raw)", "#3 mnist/mlp"]
    assert list(traces[0].y) == pytest.approx(raw)
    smoothed = list(traces[1].y)
    assert smoothed[0] == pytest.approx(raw[0])  # debiased: starts where the data starts
    assert smoothed[-1] > raw[-1]  # lags behind the falling loss


def test_scatter_param_choice(widget) -> None:
    widget.scatter_param = "lr"
    assert widget.figures["scatter"].layout.xaxis.title.text == "lr"
    widget.scatter_param = "params.optimizer"
    assert set(widget.figures["scatter"].data[0].x) == {"sgd", "adam"}
    widget.scatter_param = "momentum"
    assert "no param 'momentum'" in widget.error


def test_accepts_a_filtered_dataframe_or_refs_and_reports_unknown_refs(runs_store) -> None:
    frame = nbtrack.runs(name="mnist/*")
    w = nbtrack.compare(frame)
    assert w.view["number"].tolist() == [1, 2, 3, 4]
    w = nbtrack.compare([5, "2", 99, "zzzz"])
    assert w.view["number"].tolist() == [2, 5]
    assert "no run matches 99, zzzz" in w.error
    w.select([2, 7])
    assert w.selected == [2]
    assert "not among the compared runs: 7" in w.error


def test_refresh_picks_up_new_runs_and_new_metrics(widget, runs_store) -> None:
    assert len(widget.view) == 5
    _make_runs(runs_store, [("new/run", 0.2, "sgd", 1, ["late"], 0.5)])
    assert len(widget.view) == 5
    widget.refresh()
    assert widget.view["number"].tolist()[-1] == 6
    assert "late" in widget._tag.options


def test_empty_store_and_metricless_runs_say_so(store_dir) -> None:
    w = nbtrack.compare()
    assert "no runs to compare" in w.error
    assert w._error.layout.display == "block"
    assert w.view.empty
    w.select([1])
    w.metric = "loss"
    assert "no run" in w.error
    with nbtrack.run(name="quiet", store=store_dir, capture_env=False):
        pass
    w.refresh()
    assert "no runs to compare" not in w.error
    assert w.metric is None
    assert w.view["number"].tolist() == [1]


def test_unreadable_store_is_reported_in_the_widget(tmp_path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "nbtrack.db").write_bytes(b"this is not a database" * 100)
    w = nbtrack.compare(store=folder)
    assert "not a readable nbtrack store" in w.error
    assert "not a readable nbtrack store" in w._error.value
    assert w.view.empty
    w.select([1])
    w.refresh()  # still broken: still says so, still no traceback
    assert "not a readable nbtrack store" in w.error


def test_save_html_writes_table_figures_and_diff(widget, tmp_path) -> None:
    widget.select([1, 2])
    widget.query = "params.lr >= 0.01"
    out = widget.save_html(tmp_path / "compare.html", plotlyjs="cdn")
    text = out.read_text()
    assert text.count("<tr") >= 4  # header rows + the 3 matching runs
    assert "mnist/mlp" in text and "cifar/cnn" in text and "mnist/cnn" not in text
    assert text.count('class="plotly-graph-div"') == 3
    assert "parcoords" in text
    assert "nbtrack-diff" in text and "optimizer" in text
    assert "cdn.plot.ly" in text


def test_plot_returns_a_plain_figure_and_one_line_errors(runs_store) -> None:
    import plotly.graph_objects as go

    fig = nbtrack.plot("val_acc", runs=[2, 4])
    assert type(fig) is go.Figure
    assert [t.name for t in fig.data] == ["#2 mnist/mlp", "#4 mnist/cnn"]
    assert len(nbtrack.plot("loss").data) == 5
    with pytest.raises(nbtrack.errors.NbtrackError, match="no run here logged the metric 'f1'"):
        nbtrack.plot("f1")
    with pytest.raises(nbtrack.errors.NbtrackError, match="no run matches 42"):
        nbtrack.plot("loss", runs=[42])
    try:
        nbtrack.plot("f1")
    except nbtrack.errors.NbtrackError as exc:
        assert exc._render_traceback_() == [f"PlotError: {exc}"]  # IPython shows one line


def test_plot_on_an_empty_store(store_dir) -> None:
    with pytest.raises(nbtrack.errors.NbtrackError, match="no runs to plot"):
        nbtrack.plot("loss")


def test_widget_displays_as_an_ipywidget(widget) -> None:
    bundle = widget._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data


def test_import_nbtrack_stays_cheap() -> None:
    code = (
        "import sys, nbtrack; nbtrack.compare; nbtrack.plot; "
        "print(sorted(m for m in ('pandas', 'plotly', 'ipywidgets', 'anywidget', 'IPython')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert {"compare", "plot"} <= set(nbtrack.__all__)


def test_best_values_sort_and_colour_follow_the_runs_stored_directions(store_dir) -> None:
    # "power" would be judged "max" by its name; these runs declared it "min".
    for power, gain in ((3.0, 0.2), (1.0, 0.9), (2.0, 0.5)):
        with nbtrack.run(
            name="t/power", params={"gain": gain}, goals={"power": "min"}, capture_env=False
        ) as track:
            track.log(power=power)
    w = nbtrack.compare(store=store_dir, metric="power")
    assert w._runs.directions["power"] == "min"
    assert w._table.best_run == 2  # the lowest power
    assert _trace_names(w.figures["curves"])[0] == "#2 t/power"  # best first
    assert w.figures["parallel"].data[0].line.reversescale is True  # low values are good
    # Without a declaration the name decides: the highest power is best.
    with nbtrack.run(name="t/watts", capture_env=False) as track:
        track.log(watts_power=5.0)
    with nbtrack.run(name="t/watts", capture_env=False) as track:
        track.log(watts_power=7.0)
    w = nbtrack.compare(store=store_dir, metric="watts_power")
    assert w._table.best_run == 5 and w._runs.directions["watts_power"] == "max"
