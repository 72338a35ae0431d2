"""``nbtrack.compare()`` and the live ``%%track`` view in JupyterLab, in headless Chromium.

What a user sees: the run table's rows, the parallel-coordinates plot, the metric curves,
a click on a row adding that run's curve and the diff; and a training cell whose live metrics
change while it runs and turn into the run summary when it ends. Screenshots land in
``test-artifacts/``.
"""

from __future__ import annotations

MAKE_RUNS = """\
import nbtrack
for i, (lr, opt) in enumerate([(0.1, "sgd"), (0.03, "adam"), (0.01, "adam"),
                               (0.003, "sgd"), (0.001, "adam"), (0.0003, "adamw")]):
    with nbtrack.run(name=f"demo/{opt}", params={"lr": lr, "optimizer": opt, "depth": 2 + i % 3},
                     tags=["browser"], capture_env=False) as track:
        for step in range(40):
            quality = 0.6 + 0.06 * i
            track.log(val_acc=quality * (1 - 0.9 ** (step + 1)),
                      loss=(1.2 - quality) * 0.95 ** step, step=step)
nbtrack.runs()[["number", "name", "params.lr"]]
"""

COMPARE = """\
w = nbtrack.compare(metric="val_acc")
w.select([2, 4])
w
"""

LIVE = """\
%%track --name live/train --no-env
import time
for step in range(16):
    track.log(loss=1.0 / (step + 1), acc=step / 16, step=step)
    time.sleep(0.2)
"""

TRACES = "(el) => el.querySelectorAll('.scatterlayer .trace').length"


def test_compare_renders_table_parallel_coordinates_curves_and_reacts_to_clicks(lab_page) -> None:
    lab = lab_page.lab
    lab.write_notebook("compare.ipynb", ["%load_ext nbtrack", MAKE_RUNS, COMPARE])
    lab_page.open_notebook("compare.ipynb")
    lab_page.run_all_cells()
    lab_page.wait_until_cells_ran(3)
    page = lab_page.page
    out = lab_page.cell_output(2)

    rows = out.locator(".nbtrack-table tr.run")
    rows.first.wait_for()
    assert rows.count() == 6
    numbers = [rows.nth(i).get_attribute("data-number") for i in range(6)]
    assert numbers == ["1", "2", "3", "4", "5", "6"]
    assert out.locator(".nbtrack-table tr.run.selected").count() == 2
    assert out.locator("tr.best-run").get_attribute("data-number") == "6"  # highest val_acc
    assert out.locator("td.best").count() >= 2  # best val_acc and best loss cells

    page.wait_for_function(
        "(el) => el.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
        arg=out.element_handle(),
    )
    assert out.locator(".js-plotly-plot").count() == 3
    curves = out.locator(".js-plotly-plot.nbtrack-curves")
    parallel = out.locator(".js-plotly-plot.nbtrack-parallel")
    scatter = out.locator(".js-plotly-plot.nbtrack-scatter")
    scatter.locator("path.point").first.wait_for()
    assert scatter.locator("path.point").count() == 6 + 1  # every run, and a star on the best
    # Parallel coordinates: one axis per varying param and one for the metric.
    parallel.locator(".parcoords .y-axis").first.wait_for()
    assert parallel.locator(".parcoords .y-axis").count() == 4  # depth, lr, optimizer, val_acc
    assert curves.evaluate(TRACES) == 2  # the two selected runs
    assert curves.locator(".scatterlayer .trace path.js-line").count() == 2
    diff = out.locator(".nbtrack-diff").inner_text()
    assert "#2 demo/adam" in diff and "#4 demo/sgd" in diff and "optimizer" in diff
    error_line = out.locator(".nbtrack-error")
    assert error_line.count() == 0 or not error_line.first.is_visible()

    lab_page.screenshot("compare.png", out)

    # A click on run #5's row selects it: a third curve appears.
    rows.nth(4).click()
    page.wait_for_function(f"(el) => ({TRACES})(el) === 3", arg=curves.element_handle())
    assert out.locator(".nbtrack-table tr.run.selected").count() == 3
    # A header click sorts: by name, ascending.
    out.locator(".nbtrack-table th.sortable[data-key='name']").click()
    page.wait_for_function(
        "(el) => el.querySelector('tr.run').getAttribute('data-number') === '2'",
        arg=out.element_handle(),
    )
    lab_page.screenshot("compare-after-clicks.png", out)


def test_tracked_cell_shows_live_metrics_that_change_then_the_summary(lab_page) -> None:
    lab = lab_page.lab
    lab.write_notebook("live.ipynb", ["%load_ext nbtrack", LIVE])
    lab_page.open_notebook("live.ipynb")
    lab_page.run_all_cells()
    page = lab_page.page
    out = lab_page.cell_output(1)
    out.locator(".nbtrack-live").wait_for(timeout=20_000)
    seen: list[str] = []
    shots = 0
    while out.locator(".nbtrack-live").count():
        try:
            seen.append(out.locator(".nbtrack-live-step").first.inner_text(timeout=1000))
        except Exception:  # replaced by the summary between count() and inner_text()
            break
        if shots == 0 and len(set(seen)) >= 3:
            lab_page.screenshot("live-running.png", out)
            shots += 1
        page.wait_for_timeout(150)
    distinct = list(dict.fromkeys(seen))
    assert len(distinct) >= 3, f"live step values seen: {seen}"
    assert [int(s) for s in distinct] == sorted(int(s) for s in distinct)  # only forwards
    out.locator(".nbtrack-summary").wait_for(timeout=20_000)
    assert out.locator(".nbtrack-live").count() == 0  # replaced, not appended
    assert out.locator(".jp-OutputArea-child").count() == 1
    assert "finished" in out.inner_text()
    lab_page.screenshot("live-finished.png", out)
