"""The live view of a running run: the core model, the feed, and ``%%track`` in a shell."""

from __future__ import annotations

import math
import time

import pytest

import nbtrack
from nbtrack.live import MAX_POINTS, LiveFeed, LiveMetrics, LiveView, sparkline_svg


def test_sparkline_draws_finite_points_scaled_into_the_box() -> None:
    svg = sparkline_svg([1.0, math.nan, 3.0, 2.0, math.inf], width=100, height=20)
    points = svg.split("points='")[1].split("'")[0].split()
    assert len(points) == 3  # NaN and inf skipped
    xs = [float(p.split(",")[0]) for p in points]
    ys = [float(p.split(",")[1]) for p in points]
    assert xs[0] == pytest.approx(2) and xs[-1] == pytest.approx(98)
    assert max(ys) == pytest.approx(18) and min(ys) == pytest.approx(2)  # 1.0 low, 3.0 high
    assert "<polyline" not in sparkline_svg([1.0])
    assert "<polyline" in sparkline_svg([5.0, 5.0])  # flat line, no division by zero


def test_live_metrics_keeps_latest_value_and_a_bounded_history() -> None:
    live = LiveMetrics("run #1", start_time=100.0)
    assert live.observe({"loss": (1.0, 0)})
    assert not live.observe({"loss": (1.0, 0)})  # same step, same value: nothing new
    for step in range(1, 5000):
        live.observe({"loss": (1.0 / step, step), "acc": (step / 5000, step)})
    view = live.view(now=112.5)
    assert isinstance(view, LiveView)
    rows = {key: (value, step, values) for key, value, step, values in view.rows}
    assert rows["loss"][0] == pytest.approx(1 / 4999) and rows["loss"][1] == 4999
    assert len(rows["loss"][2]) <= MAX_POINTS + 1
    assert rows["loss"][2][-1] == pytest.approx(1 / 4999)  # the newest point is always drawn
    assert rows["acc"][2][0] < rows["acc"][2][-1]
    assert view.step == 4999
    assert "12.5s" in repr(view) and "loss=0.00020004" in repr(view)
    html = view._repr_html_()
    assert html.count("<svg") == 2 and "nbtrack-live" in html and "step 4999" in html


def test_feed_starts_only_once_the_run_logs_then_throttles_and_stops(store_dir) -> None:
    published: list[tuple[LiveView, bool]] = []
    now = [1000.0]
    with nbtrack.run(name="feed", store=store_dir, capture_env=False) as run:
        feed = LiveFeed(
            run,
            lambda view, first: published.append((view, first)),
            min_interval=0.3,
            clock=lambda: now[0],
        )
        run.flush()
        feed.on_flush(run)
        assert published == [] and not feed.started  # nothing logged: no display at all
        run.log(loss=0.5)
        run.flush()
        feed.on_flush(run)
        assert [first for _, first in published] == [True]
        run.log(loss=0.4)
        run.flush()
        now[0] += 0.1
        feed.on_flush(run)
        assert len(published) == 1  # too soon after the last update
        now[0] += 0.3
        feed.on_flush(run)
        assert [first for _, first in published] == [True, False]
        assert published[-1][0].rows[0][1] == pytest.approx(0.4)
        now[0] += 0.5
        feed.on_flush(run)
        assert len(published) == 2  # nothing new, and the clock moved less than a second
        assert feed.close() is True
        run.log(loss=0.3)
        run.flush()
        now[0] += 5
        feed.on_flush(run)
        assert len(published) == 2  # closed


def test_feed_runs_on_the_background_flush_thread(store_dir) -> None:
    import threading

    threads: list[str] = []
    with nbtrack.run(name="bg", store=store_dir, capture_env=False) as run:
        feed = LiveFeed(run, lambda view, first: threads.append(threading.current_thread().name))
        run.log(loss=1.0)
        deadline = time.time() + 5
        while not threads and time.time() < deadline:
            time.sleep(0.05)
        feed.close()
    assert threads and threads[0] == "nbtrack-flush"


def test_rendering_is_cheap_enough_for_the_flush_thread() -> None:
    live = LiveMetrics("run #1")
    for step in range(2000):
        live.observe({f"m{k}": (math.sin(step / 50 + k), step) for k in range(10)})
    started = time.perf_counter()
    for _ in range(20):
        live.view()._repr_html_()
    per_update = (time.perf_counter() - started) / 20
    assert per_update < 0.02  # 10 metrics with sparklines; measured ~1 ms


# -- %%track in a real shell ----------------------------------------------------------------

TRAIN = """%%track --name live/train --no-env
import time
for step in range(12):
    track.log(loss=1.0 / (step + 1), acc=step / 12, step=step)
    time.sleep(0.15)
"""


def test_tracked_cell_updates_one_display_in_place_then_shows_the_summary(shell) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        assert shell.run_cell(TRAIN, store_history=True).success
    outputs = captured.outputs
    assert len(outputs) >= 3  # a first display, at least one update, the summary
    display_id = outputs[0].transient["display_id"]
    assert outputs[0].update is False
    assert "nbtrack: run #1 live/train running" in outputs[0].data["text/plain"]
    # Every later output updates that same display: no new outputs pile up in the cell.
    assert all(o.update and o.transient["display_id"] == display_id for o in outputs[1:])
    steps = [o.data["text/plain"].split("step ")[1].split()[0] for o in outputs[:-1]]
    assert len(set(steps)) >= 2  # the values moved while the cell ran
    assert "finished" in outputs[-1].data["text/plain"]  # the summary replaced it


def test_cell_that_logs_nothing_shows_no_live_view(shell) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        assert shell.run_cell(
            "%%track --name silent --no-env\nimport time\ntime.sleep(1.2)\nx = 1",
            store_history=True,
        ).success
    assert len(captured.outputs) == 1
    assert captured.outputs[0].update is False
    assert "finished" in captured.outputs[0].data["text/plain"]


def test_quiet_cell_shows_nothing_live(shell) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        assert shell.run_cell(
            TRAIN.replace("--no-env", "--no-env --quiet"), store_history=True
        ).success
    assert captured.outputs == []


def test_terminal_shell_prints_no_live_lines(shell, capsys) -> None:
    assert shell.run_cell(TRAIN, store_history=True).success
    out = capsys.readouterr().out
    assert "running" not in out  # no live lines in a terminal
    assert out.count("nbtrack: run #") == 1 and "finished" in out


def test_failed_cell_replaces_the_live_view_with_the_failure(shell) -> None:
    from IPython.utils.capture import capture_output

    cell = TRAIN + "raise ValueError('diverged')\n"
    with capture_output() as captured:
        assert not shell.run_cell(cell, store_history=True).success
    outputs = captured.outputs
    assert outputs[-1].update is True
    assert "failed" in outputs[-1].data["text/plain"]
    assert "diverged" in outputs[-1].data["text/plain"]
    assert nbtrack.get_run("last").status == "failed"
