"""Tracking never breaks the cell and never loses data: the failure paths, through a real shell."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import nbtrack
from nbtrack import config


def _last():
    return nbtrack.get_run("last")


def test_numpy_and_tensor_steps_are_stored_as_integers(shell) -> None:
    shell.user_ns["np"] = np
    cell = (
        "%%track -q\nimport torch\nfor epoch in np.arange(3):\n"
        "    track.log(step=epoch, loss=float(epoch))\ntrack.log(step=torch.tensor(7), acc=1.0)"
    )
    assert shell.run_cell(cell, store_history=True).success
    record = _last()
    assert [p.step for p in record.metric_history["loss"]] == [0, 1, 2]
    assert record.metric_history["acc"][0].step == 7


def test_out_of_range_step_is_a_warning_and_the_result_survives(shell) -> None:
    result = shell.run_cell(
        "%%track -q\ntrack.log(step=2**63, loss=1.0)\n'kept'", store_history=True
    )
    assert result.success and result.result == "kept"
    record = _last()
    assert record.status == "finished"
    assert any("out of range" in w for w in record.warnings)


def test_exception_whose_str_fails_behaves_as_untracked(shell) -> None:
    body = "class Odd(Exception):\n    def __str__(self):\n        raise RuntimeError('no str')\nraise Odd()"
    plain = shell.run_cell(body, store_history=True)
    tracked = shell.run_cell("%%track -q\n" + body, store_history=True)
    assert type(tracked.error_in_exec).__name__ == type(plain.error_in_exec).__name__
    record = _last()
    assert record.status == "failed" and record.error["type"] == "Odd"
    assert "str() failed" in record.error["message"]


def test_unwritable_store_binds_a_do_nothing_track(shell, tmp_path, capsys) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    config.set_store_dir(blocker / "store")
    result = shell.run_cell(
        "%%track -q\nx = 1\ntrack.log(loss=0.1)\ntrack.artifact(b'x')\ny = 2", store_history=True
    )
    assert result.success
    assert shell.user_ns["y"] == 2
    assert "not recorded" in capsys.readouterr().err


def test_locked_store_at_start_fails_fast_and_the_cell_runs(
    shell, store_dir, monkeypatch, capsys
) -> None:
    monkeypatch.setenv(config.ENV_BUSY_TIMEOUT, "0.3")
    shell.run_cell("%%track -q\nwarm = 1", store_history=True)  # creates the store
    holder = sqlite3.connect(store_dir / "nbtrack.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        result = shell.run_cell("%%track -q\nz = 3", store_history=True)
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
    assert result.success and shell.user_ns["z"] == 3
    assert "locked" in capsys.readouterr().err
    assert elapsed < 5  # one timeout, not one per captured blob


def test_store_locked_when_the_cell_ends_is_written_later(shell, store_dir, monkeypatch) -> None:
    monkeypatch.setenv(config.ENV_BUSY_TIMEOUT, "0.2")
    monkeypatch.setenv(config.ENV_FLUSH_INTERVAL, "0.1")
    shell.run_cell("%%track -q\nwarm = 1", store_history=True)
    db = store_dir / "nbtrack.db"
    cell = (
        f"%%track -q --name late\nimport sqlite3\nfor i in range(5):\n"
        f"    track.log(loss=float(i))\n"
        f"holder = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        f"holder.execute('BEGIN IMMEDIATE')\n'value'"
    )
    with pytest.warns(nbtrack.tracker.TrackingWarning, match="retrying"):
        result = shell.run_cell(cell, store_history=True)
    assert result.success and result.result == "value"
    shell.user_ns["holder"].execute("ROLLBACK")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        record = nbtrack.get_run("last")
        if record.status == "finished":
            break
        time.sleep(0.1)
    assert record.name == "late" and record.status == "finished"
    assert len(record.metric_history["loss"]) == 5


def test_trailing_semicolon_hides_the_output_as_usual(shell) -> None:
    result = shell.run_cell("%%track -q\n1 + 1;", store_history=True)
    assert result.success
    assert shell.user_ns.get("_") != 2  # nothing went through the display hook
    assert shell.run_cell("%%track -q\n40 + 2", store_history=True).result == 42


def test_cell_that_rebinds_track_keeps_its_value(shell) -> None:
    shell.run_cell("%%track -q\ntrack = 42", store_history=True)
    assert shell.user_ns["track"] == 42


def test_set_on_a_cell_with_ipython_syntax(shell, capsys) -> None:
    result = shell.run_cell(
        "%%track -q --set lr=0.5\nlr = 0.1\n!echo hi\nused = lr", store_history=True
    )
    assert result.success and shell.user_ns["used"] == 0.5
    result = shell.run_cell("%%track -q --set nope=1\nlr = 0.1\n!echo hi", store_history=True)
    assert not result.success
    err = capsys.readouterr()
    assert "UsageError" in err.err + err.out and "Traceback" not in err.err + err.out


def test_unnamed_artifacts_of_one_type_do_not_replace_each_other(store_dir) -> None:
    with nbtrack.run() as track:
        track.artifact(np.zeros(3))
        track.artifact(np.ones(5))
    names = [a.name for a in _last().artifacts]
    assert names == ["ndarray", "ndarray-2"]
    assert _last().load_artifact("ndarray").shape == (3,)


def test_secret_values_are_redacted_from_history_code_and_argv(
    shell, store_dir, monkeypatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_SECRETVALUE123")
    shell.run_cell("token = 'hf_SECRETVALUE123'", store_history=True)
    shell.run_cell(
        "%%track -q\nkey = 'hf_SECRETVALUE123'\nraise ValueError(key)", store_history=True
    )
    record = _last()
    assert record.error["message"] == "<redacted>"
    assert "<redacted>" in record.code and "<redacted>" in record.history[-2].source
    conn = sqlite3.connect(store_dir / "nbtrack.db")
    everything = b"".join(zlib.decompress(d) for (d,) in conn.execute("SELECT data FROM blobs"))
    for table in ("runs", "metrics", "artifacts"):
        for row in conn.execute(f"SELECT * FROM {table}"):
            everything += repr(row).encode()
    assert b"hf_SECRETVALUE123" not in everything


def test_gc_keeps_fresh_content_a_starting_run_may_need(store_dir) -> None:
    from nbtrack.store.sqlite import Store

    store = Store(store_dir)
    digest = store.put_blob("env", b"fresh")
    assert store.gc()["blobs"] == 0  # unreferenced but younger than the grace period
    assert store.get_blob(digest) == b"fresh"


def test_store_deleted_under_a_running_kernel_is_recreated(shell, store_dir) -> None:
    shell.run_cell("%%track -q\na = 1", store_history=True)
    shutil.rmtree(store_dir)
    shell.run_cell("%%track -q --name after\nb = 2", store_history=True)
    assert (store_dir / "nbtrack.db").exists()
    assert Path(store_dir / "nbtrack.db").stat().st_size > 0
    frame = nbtrack.runs()
    assert list(frame["name"]) == ["after"]


def test_missing_widget_packages_name_the_extra(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "plotly" else real(name, *a)
    )
    with pytest.raises(nbtrack.errors.NbtrackError, match=r"nbtrack\[widgets\]"):
        nbtrack.plot("loss")


def test_a_tracking_warning_points_at_the_users_line(tmp_path) -> None:
    """However deep inside nbtrack a warning is decided (a capture, a held artifact), it
    names the user's own call, not a line of nbtrack."""
    import warnings as _warnings

    import nbtrack
    from nbtrack.tracker import TrackingWarning

    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        with nbtrack.run(name="w", store=tmp_path / "s", capture_env=False) as track:
            track.input(object(), "thing")  # cannot be fingerprinted: a warning
            lines = [sys._getframe().f_lineno - 1]
            track.log(step=2**63, loss=1.0)  # decided one call deeper: out of range
            lines.append(sys._getframe().f_lineno - 1)
    found = [w for w in caught if issubclass(w.category, TrackingWarning)]
    assert "input 'thing'" in str(found[0].message) and "out of range" in str(found[1].message)
    assert [(w.filename, w.lineno) for w in found] == [(__file__, n) for n in lines]
