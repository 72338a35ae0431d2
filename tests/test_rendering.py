"""Summaries are pure renderings of records; deltas are computed by query and passed in."""

from __future__ import annotations

import ast
from pathlib import Path

import nbtrack
from nbtrack.query import metric_deltas
from nbtrack.records import MetricDelta, RunDiff, RunRecord
from nbtrack.store.sqlite import Store
from nbtrack.summary import run_html, run_text

PACKAGE = Path(nbtrack.__file__).parent


def _runs(store: Path, name: str, values: list[dict[str, float]], **kwargs) -> None:
    for metrics in values:
        with nbtrack.run(name=name, store=store, capture_env=False, **kwargs) as track:
            track.log(**metrics)


def test_power_that_went_up_is_better_not_worse(store_dir: Path) -> None:
    _runs(store_dir, "t/power", [{"power": 2.0, "wer": 0.3}, {"power": 3.0, "wer": 0.4}])
    record = nbtrack.get_run(2)
    deltas = metric_deltas(record)
    assert deltas["power"] == MetricDelta(1.0, 1, "max") and deltas["power"].improved
    assert deltas["wer"].worse and not deltas["wer"].improved
    text = run_text(record, deltas)
    assert "power=3 (+1 vs best #1, better)" in text
    assert "wer=0.4 (+0.1 vs best #1, worse)" in text
    html = run_html(record, deltas)
    assert "vs best #1, better" in html and "vs best #1, worse" in html


def test_declared_val_loss_max_judges_a_higher_loss_better(store_dir: Path) -> None:
    _runs(store_dir, "t/odd", [{"val_loss": 0.5}, {"val_loss": 0.7}], goals={"val_loss": "max"})
    _runs(store_dir, "t/plain", [{"val_loss": 0.5}, {"val_loss": 0.7}])
    odd = nbtrack.get_run(2)
    assert run_text(odd, metric_deltas(odd)).endswith("val_loss=0.7 (+0.2 vs best #1, better)")
    plain = nbtrack.get_run(4)
    assert "val_loss=0.7 (+0.2 vs best #3, worse)" in run_text(plain, metric_deltas(plain))


def test_best_previous_uses_the_records_direction(store_dir: Path) -> None:
    _runs(store_dir, "t/best", [{"loss": 0.2}, {"loss": 0.1}, {"loss": 0.3}])
    _runs(store_dir, "t/best", [{"loss": 0.25}], goals={"loss": "max"})
    assert metric_deltas(nbtrack.get_run(3))["loss"].best_number == 2  # min: 0.1
    assert metric_deltas(nbtrack.get_run(4))["loss"].best_number == 3  # declared max: 0.3


def test_record_prints_without_deltas_after_its_store_is_closed(tmp_path: Path) -> None:
    folder = tmp_path / "own"
    _runs(folder, "t/closed", [{"acc": 0.5}, {"acc": 0.8}])
    store = Store(folder)
    from nbtrack.query import load_record

    record = load_record(store, store.resolve(2))
    store.close()
    text = repr(record)
    assert text == str(record)
    assert "run #2 t/closed" in text and "acc=0.8" in text and "vs best" not in text
    assert "acc" in record._repr_html_() and "vs best" not in record._repr_html_()


def test_the_tracked_cell_summary_still_shows_deltas(shell, capsys) -> None:
    for power in (2.0, 3.0):
        shell.run_cell(f"%%track --name t/cell\ntrack.log(power={power})", store_history=True)
    assert "power=3 (+1 vs best #1, better)" in capsys.readouterr().out


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_summary_depends_on_records_not_query_and_records_on_the_model() -> None:
    assert not {m for m in _imports(PACKAGE / "summary.py") if m.startswith("nbtrack.")} - {
        "nbtrack.records"
    }
    records = {m for m in _imports(PACKAGE / "records.py") if m.startswith("nbtrack.")}
    # The model at import time; the rest only inside methods or for type checking.
    assert "nbtrack.query" not in records and "nbtrack.model" in records
    import nbtrack.query as query

    assert query.RunRecord is RunRecord and query.RunDiff is RunDiff  # re-exported


def test_a_runs_tags_and_note_are_in_its_summaries(store_dir: Path) -> None:
    with nbtrack.run(name="t/noted", store=store_dir, capture_env=False, tags=["a", "b"]) as track:
        track.note("tried a smaller lr\n  <because> the loss diverged")
    record = nbtrack.get_run("last")
    text = run_text(record)
    assert "  tags:    a, b" in text
    assert "  note:    tried a smaller lr <because> the loss diverged" in text
    html = run_html(record)
    assert "tags a, b" in html and "&lt;because&gt; the loss diverged" in html
