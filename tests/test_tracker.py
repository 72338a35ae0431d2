"""The script-mode tracker: lifecycle, buffered metrics, artifacts and crash safety."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import nbtrack
from nbtrack.errors import UnknownRunError, UsageError
from nbtrack.tracker import RunStopped, TrackingWarning


def test_script_run_records_params_metrics_and_code(store_dir: Path) -> None:
    with nbtrack.run(name="s/one", seed=3, params={"lr": 0.1}, tags=["x"]) as track:
        for step in range(5):
            track.log(loss=1.0 / (step + 1))
        track.log(acc=np.float64(0.75), t=torch.tensor(2.5))
        track.log_params(extra=7)
        number = track.number
    record = nbtrack.get_run(number)
    assert record.status == "finished"
    assert record.kind == "script"
    assert record.params == {"lr": 0.1, "extra": 7}
    assert record.seed == 3
    assert [p.step for p in record.metric_history["loss"]] == [0, 1, 2, 3, 4]
    assert record.metrics == {"loss": 0.2, "acc": 0.75, "t": 2.5}
    assert record.tags == ["x"]
    assert record.duration is not None and record.duration >= 0


def test_exception_in_script_run_marks_failed_and_propagates(store_dir: Path) -> None:
    with pytest.raises(ValueError, match="boom"):
        with nbtrack.run(name="s/fail"):
            raise ValueError("boom")
    record = nbtrack.get_run("last")
    assert record.status == "failed"
    assert record.error["type"] == "ValueError"
    assert "boom" in record.error["traceback"]


def test_non_scalar_metric_is_a_warning_not_an_error(store_dir: Path) -> None:
    with pytest.warns(TrackingWarning, match="not a scalar|not a number"):
        with nbtrack.run() as track:
            track.log(vec=torch.ones(3), ok=1)
    record = nbtrack.get_run("last")
    assert record.status == "finished"
    assert record.metrics == {"ok": 1.0}
    assert any("vec" in w for w in record.warnings)


def test_artifacts_round_trip(store_dir: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\x00\x01\x02")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("A")
    model = torch.nn.Linear(3, 2)
    with nbtrack.run() as track:
        track.artifact(str(weights))
        track.artifact(folder, "folder")
        track.artifact(model, "model")
        track.artifact(np.arange(4), "array")
        track.artifact("some text", "notes")
    record = nbtrack.get_run("last")
    assert Path(record.load_artifact("w.bin")).read_bytes() == b"\x00\x01\x02"
    assert (Path(record.load_artifact("folder")) / "sub" / "a.txt").read_text() == "A"
    state = record.load_artifact("model")
    assert torch.equal(state["weight"], model.weight.detach())
    assert record.load_artifact("array").tolist() == [0, 1, 2, 3]
    assert record.load_artifact("notes") == "some text"
    with pytest.raises(nbtrack.errors.ArtifactError, match="has no artifact"):
        record.load_artifact("nope")


def test_same_artifact_content_is_stored_once(store_dir: Path) -> None:
    for _ in range(3):
        with nbtrack.run() as track:
            track.artifact(b"identical bytes", "blob")
    files = [p for p in (store_dir / "artifacts").rglob("*") if p.is_file()]
    assert len(files) == 1


def test_bad_seed_and_unknown_ref_are_clear_errors(store_dir: Path) -> None:
    with pytest.raises(UsageError, match="out of range"):
        nbtrack.run(seed=-1)
    with pytest.raises(UnknownRunError, match="no run matches"):
        nbtrack.get_run(12345)


def test_diff_reports_what_changed(store_dir: Path) -> None:
    with nbtrack.run(name="d", params={"lr": 0.1, "epochs": 3}, seed=1) as track:
        track.log(acc=0.5)
    with nbtrack.run(name="d", params={"lr": 0.2, "epochs": 3}, seed=2) as track:
        track.log(acc=0.6)
    result = nbtrack.diff(1, 2)
    assert result.sections["params"] == [("lr", 0.1, 0.2)]
    assert ("seed", 1, 2) in result.sections["seeds"]
    assert result.sections["metrics"] == [("acc", 0.5, 0.6)]
    assert "lr" in str(result) and "0.1" in str(result)
    assert "<table>" in result._repr_html_()
    assert not result.empty


def test_runs_dataframe_has_param_and_metric_columns(store_dir: Path) -> None:
    for lr in (0.1, 0.2):
        with nbtrack.run(name="grid/a", params={"lr": lr}, tags=["t1"]) as track:
            track.log(loss=lr * 10)
    with nbtrack.run(name="other") as track:
        track.log(acc=1.0)
    frame = nbtrack.runs()
    assert list(frame["number"]) == [1, 2, 3]
    assert frame.loc[0, "params.lr"] == 0.1
    assert frame.loc[1, "metrics.loss"] == pytest.approx(2.0)
    assert np.isnan(frame.loc[2, "metrics.loss"])
    assert len(nbtrack.runs(name="grid/*")) == 2
    assert len(nbtrack.runs(tag="t1")) == 2
    assert len(nbtrack.runs(status="failed")) == 0
    assert (frame["duration"] >= 0).all()


def test_metrics_survive_a_hard_kill_within_a_second(tmp_path: Path) -> None:
    """A process that dies without cleanup loses at most ~1 s of logged metrics."""
    store = tmp_path / "store"
    script = textwrap.dedent(f"""
        import os, time, nbtrack
        run = nbtrack.run(name="killed", store={str(store)!r})
        for i in range(100):
            run.log(loss=float(i))
        time.sleep(1.5)   # more than two flush intervals
        os._exit(9)       # no atexit, no finally: like a killed kernel
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == 9
    record = nbtrack.get_run("last", store=store)
    assert len(record.metric_history["loss"]) == 100
    assert record.status == "crashed"  # its process is gone


def test_start_facts_are_captured_by_one_function_and_the_run_builds_itself(
    store_dir: Path,
) -> None:
    from nbtrack.store.routing import open_store
    from nbtrack.tracker import ActiveRun, Captures, RunSpec, capture_start, current_run

    store = open_store(store_dir)
    spec = RunSpec(name="s/facts", seed=5, kind="cell", source="lr = 0.5\n", code="lr = 0.5\n")
    cap = Captures()
    facts = capture_start(spec, store, cap)
    assert facts.params == {"lr": 0.5}
    assert facts.extra["seeded"] and facts.rng_hash and facts.code_hash
    assert facts.env_hash  # capture_env defaults to on
    assert cap.warnings == []
    # A failing capture step is a warning, and the default stands in for its result.
    assert cap("thing", lambda: 1 / 0, "fallback") == "fallback"
    assert cap.warnings == ["thing not captured: ZeroDivisionError: division by zero"]

    outer = ActiveRun.start(RunSpec(name="s/outer", capture_env=False), store)
    inner = ActiveRun.start(RunSpec(name="s/inner", capture_env=False), store)
    assert current_run() is inner and inner.number == outer.number + 1
    inner.finish()
    assert current_run() is outer
    outer.finish()
    assert current_run() is None
    assert nbtrack.get_run(inner.number).status == "finished"


def test_stop_at_ends_the_block_as_pruned_and_the_script_goes_on(store_dir: Path) -> None:
    reached = []
    with nbtrack.run(name="s/stop", stop_at={"metric": "val_acc", "step": 3}) as track:
        for epoch in range(8):
            track.log(loss=1.0 / (epoch + 1), step=epoch)
            try:
                track.log(val_acc=epoch / 10, step=epoch)
            except Exception:
                pass  # a loop's own handler must not swallow the stop
            reached.append(epoch)
    reached.append(-1)  # the code after the block runs
    assert reached == [0, 1, 2, -1]  # the stop ended the block inside epoch 3
    record = nbtrack.get_run(track.number)
    assert record.status == "pruned"
    assert record.extra["stopped_at"] == {"metric": "val_acc", "step": 3}
    assert [p.step for p in record.metric_history["val_acc"]] == [0, 1, 2, 3]
    assert [p.step for p in record.metric_history["loss"]] == [0, 1, 2, 3]
    assert record.metrics == {"loss": 0.25, "val_acc": 0.3}
    assert record.error["type"] == "RunStopped"


def test_stop_at_counts_steps_without_step_and_warns_when_never_reached(store_dir: Path) -> None:
    with nbtrack.run(stop_at={"metric": "acc", "step": 1}) as track:
        track.log(acc=0.1)
        track.log(loss=0.5)  # another metric does not stop it
        track.log(acc=0.2)  # acc's step 1
        track.log(acc=0.3)
    assert nbtrack.get_run(track.number).metrics == {"acc": 0.2, "loss": 0.5}
    with pytest.warns(TrackingWarning, match="never logged at step 9"):
        with nbtrack.run(stop_at={"metric": "acc", "step": 9}) as track:
            track.log(acc=0.1)
    record = nbtrack.get_run(track.number)
    assert record.status == "finished" and "stopped_at" not in record.extra
    assert any("never logged at step 9" in w for w in record.warnings)


def test_a_bad_stop_at_is_one_clear_usage_error_before_any_run(store_dir: Path) -> None:
    for bad in ({"metric": "acc"}, {"metric": "", "step": 1}, {"metric": "acc", "step": 1.5}):
        with pytest.raises(UsageError, match=r"stop_at must be \{'metric': NAME, 'step': N\}"):
            nbtrack.run(stop_at=bad)  # type: ignore[arg-type]
    with pytest.raises(UnknownRunError):
        nbtrack.get_run("last")


def test_an_inner_run_does_not_swallow_an_outer_runs_stop(store_dir: Path) -> None:
    with nbtrack.run(name="outer", stop_at={"metric": "acc", "step": 0}) as outer:
        with nbtrack.run(name="inner") as inner:
            outer.log(acc=1.0)
            raise AssertionError("not reached: the stop ends the block")
        raise AssertionError("not reached: the inner block passes the outer run's stop on")
    assert nbtrack.get_run(outer.number).status == "pruned"
    inner_record = nbtrack.get_run(inner.number)
    assert inner_record.status == "failed" and "stopped_at" not in inner_record.extra
    assert inner_record.error["type"] == RunStopped.__name__


def test_a_run_stop_survives_pickling_with_where_it_stopped() -> None:
    import pickle

    from nbtrack.sweeps.trial import TrialPruned

    for exc in (RunStopped("stopped", "acc", 3, "abc"), TrialPruned("pruned", "loss", 2)):
        copy = pickle.loads(pickle.dumps(exc))
        assert type(copy) is type(exc) and str(copy) == str(exc)
        assert (copy.stopped_at, copy.run_id) == (exc.stopped_at, exc.run_id)
