"""``%%track`` and ``%nbtrack`` through a real IPython InteractiveShell."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

import nbtrack


def _last():
    return nbtrack.get_run("last")


def test_tracked_cell_behaves_like_untracked(shell, capsys) -> None:
    result = shell.run_cell(
        "%%track --name t/basic --quiet\nx = 21\nprint('hello')\nx * 2", store_history=True
    )
    assert result.success
    assert result.result == 42  # last expression displayed as Out[n]
    assert shell.user_ns["x"] == 21
    assert "track" not in shell.user_ns  # the run object does not leak into the namespace
    assert "hello" in capsys.readouterr().out
    record = _last()
    assert record.status == "finished"
    assert record.name == "t/basic"
    assert record.params == {"x": 21}
    assert "print('hello')" in record.code


def test_params_metrics_artifacts_and_tags(shell) -> None:
    cell = """%%track --name t/full --tag a --tag b --note "first try" --quiet
lr = 1e-3
epochs = 3
layers = [64, 32]
neg = -2.5
name = "mlp"
for epoch in range(epochs):
    track.log(loss=1.0 / (epoch + 1), step=epoch)
track.log(acc=np.float32(0.5))
track.artifact({"weights": [1, 2]}, "obj")
track.tag("c")
"""
    shell.user_ns["np"] = np
    assert shell.run_cell(cell, store_history=True).success
    record = _last()
    assert record.params == {
        "lr": 1e-3,
        "epochs": 3,
        "layers": [64, 32],
        "neg": -2.5,
        "name": "mlp",
    }
    assert record.tags == ["a", "b", "c"]
    assert record.note == "first try"
    assert record.metrics["loss"] == pytest.approx(1 / 3)
    assert [p.step for p in record.metric_history["loss"]] == [0, 1, 2]
    assert record.metrics["acc"] == 0.5
    assert record.load_artifact("obj") == {"weights": [1, 2]}
    assert any("pickle" in w for w in record.warnings)


def test_set_overrides_literal_before_the_cell_runs(shell) -> None:
    cell = "%%track --name t/set --set lr=0.5 --set opt=sgd --quiet\nlr = 0.1  # keep me\nopt = 'adam'\nout = lr * 2"
    assert shell.run_cell(cell, store_history=True).success
    assert shell.user_ns["out"] == 1.0
    assert shell.user_ns["opt"] == "sgd"
    record = _last()
    assert record.params["lr"] == 0.5 and record.params["opt"] == "sgd"
    assert "lr = 0.5  # keep me" in record.code


def test_bad_options_are_one_line_usage_errors_and_cell_does_not_run(shell, capsys) -> None:
    for line in (
        "--bogus",
        "--set nokey",
        "--set 1x=2",
        "--seed notanint",
        "--seed 4294967296",
        "--note 'unclosed",
        "--det",
        "--set missing=1",
    ):
        result = shell.run_cell(f"%%track {line}\nran = True\nx = 1", store_history=True)
        assert not result.success
        assert "ran" not in shell.user_ns
        err = capsys.readouterr()
        shown = [ln for ln in (err.err + err.out).splitlines() if ln.strip()]
        assert len(shown) == 1 and shown[0].startswith("UsageError: "), (line, shown)
    assert nbtrack.runs().empty


def test_exception_is_reraised_and_run_recorded_failed(shell) -> None:
    result = shell.run_cell(
        "%%track --name t/fail --quiet\ntrack.log(loss=1.0)\n1 / 0", store_history=True
    )
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    record = _last()
    assert record.status == "failed"
    assert record.error["type"] == "ZeroDivisionError"
    assert "1 / 0" in record.error["traceback"] or "division" in record.error["message"]
    assert record.metrics["loss"] == 1.0  # metrics logged before the failure are kept


def test_keyboard_interrupt_records_interrupted(shell) -> None:
    result = shell.run_cell("%%track --quiet\nraise KeyboardInterrupt", store_history=True)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert _last().status == "interrupted"


def test_seed_makes_cells_repeatable_and_rng_state_replays(shell) -> None:
    cell = (
        "%%track --seed 7 --quiet\nimport random\nimport numpy as np\n"
        "draw = (random.random(), np.random.rand(3).tolist())"
    )
    shell.run_cell(cell, store_history=True)
    first = shell.user_ns["draw"]
    shell.run_cell(cell, store_history=True)
    assert shell.user_ns["draw"] == first
    record = _last()
    assert record.seed == 7
    assert {"random", "numpy"} <= set(record.extra["seeded"])


def test_unseeded_run_replays_bit_identically_from_stored_state(shell) -> None:
    shell.run_cell(
        "%%track --quiet\nimport numpy as np\nimport random\n"
        "a = np.random.standard_normal(5)\nb = random.random()",
        store_history=True,
    )
    a, b = shell.user_ns["a"], shell.user_ns["b"]
    random.random()
    np.random.rand(10)  # move the RNGs on
    _last().restore_rng()
    assert np.random.standard_normal(5).tobytes() == a.tobytes()
    assert random.random() == b


def test_seed_calls_made_by_the_cell_are_recorded(shell) -> None:
    shell.run_cell(
        "%%track --quiet\nimport numpy as np\nnp.random.seed(123)\nrng = np.random.default_rng(5)",
        store_history=True,
    )
    calls = {(c["call"], c["value"]) for c in _last().seed_calls}
    assert ("np.random.seed", 123) in calls
    assert ("np.random.default_rng", 5) in calls


def test_inputs_are_fingerprinted_before_the_cell_changes_them(shell, tmp_path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    shell.user_ns["X"] = np.arange(12, dtype=np.float64).reshape(3, 4)
    shell.run_cell(
        f"%%track --quiet\ntotal = X.sum()\ntext = open({str(data)!r}).read()", store_history=True
    )
    inputs = {i.name: i for i in _last().inputs}
    assert inputs["X"].meta["shape"] == [3, 4]
    assert inputs["X"].hash.startswith("xxh3_128:")
    assert any(i.kind == "file" for i in inputs.values())
    shell.run_cell("%%track --no-data --quiet\ntotal = X.sum()", store_history=True)
    assert _last().inputs == []


def test_history_holds_the_cells_that_ran_in_order(shell) -> None:
    shell.run_cell("a = 1", store_history=True)
    shell.run_cell("b = a + 1", store_history=True)
    shell.run_cell("%%track --quiet\nc = b * 10", store_history=True)
    record = _last()
    sources = [h.source for h in record.history]
    assert sources[-3:-1] == ["a = 1", "b = a + 1"]
    assert sources[-1].startswith("%%track")
    counts = [h.execution_count for h in record.history]
    assert counts == sorted(counts)


def test_summary_shows_delta_against_best_earlier_run(shell, capsys) -> None:
    for acc in (0.5, 0.8, 0.7):
        shell.run_cell(f"%%track --name t/delta\ntrack.log(acc={acc})", store_history=True)
    out = capsys.readouterr().out
    assert "run #3 t/delta" in out
    assert "acc=0.7 (-0.1 vs best #2" in out


def test_environment_and_git_are_captured_and_secrets_never_stored(
    shell, monkeypatch, store_dir
) -> None:
    monkeypatch.setenv("MY_API_KEY", "sekrit-value-1234")
    monkeypatch.setenv("CUDA_TOKEN", "sekrit-value-5678")
    shell.run_cell("%%track --quiet\nimport sklearn\nx = 1", store_history=True)
    env = _last().environment
    assert env["packages"].get("scikit-learn")
    assert "python" in env
    raw = b"".join(p.read_bytes() for p in store_dir.rglob("*") if p.is_file())
    import sqlite3
    import zlib

    conn = sqlite3.connect(store_dir / "nbtrack.db")
    blobs = b"".join(zlib.decompress(d) for (d,) in conn.execute("SELECT data FROM blobs"))
    for text in (raw, blobs, json.dumps(_last().to_dict()).encode()):
        assert b"sekrit-value" not in text


def test_nbtrack_line_magic_switches_store(shell, tmp_path, capsys) -> None:
    other = tmp_path / "other-store"
    shell.run_cell(f"%nbtrack store {other}", store_history=True)
    shell.run_cell("%%track --quiet\nx = 1", store_history=True)
    assert (other / "nbtrack.db").exists()
    shell.run_cell("%nbtrack", store_history=True)
    assert str(other) in capsys.readouterr().out
    result = shell.run_cell("%nbtrack frobnicate", store_history=True)
    assert not result.success


def test_track_help_lists_every_option_of_the_grammar(shell, capsys) -> None:
    from nbtrack.trackline import OPTIONS

    doc = shell.find_cell_magic("track").__doc__
    shell.run_cell("%%track?")
    shown = capsys.readouterr().out
    assert "Run the cell and record it as an nbtrack run." in shown
    for text in (doc, shown):
        for spec in OPTIONS:
            for flag in spec.flags:
                assert re.search(rf"(^|[\s\[,]){re.escape(flag)}\b", text), flag
            assert spec.help.split(";")[0].split(".")[0] in " ".join(text.split())


def test_unusable_store_still_runs_the_cell(shell, tmp_path, capsys) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    from nbtrack import config

    config.set_store_dir(blocker / "store")
    result = shell.run_cell("%%track --quiet\nstill_ran = 5", store_history=True)
    assert result.success
    assert shell.user_ns["still_ran"] == 5
    assert "not recorded" in capsys.readouterr().err
