"""nbtrack push / pull between two real stores: idempotence, a push killed halfway with
SIGKILL and rerun, byte-identical round trips (metrics, blobs, artifact hashes), the
command line, the magic and a PostgreSQL team store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nbtrack
from nbtrack import cli
from nbtrack.errors import SyncError
from nbtrack.store.sqlite import Store
from nbtrack.sync import pull, push
from nbtrack.sync.stores import INCOMPLETE
from tests.conftest import run_cell


def _make_runs(folder: Path) -> list[str]:
    """Three real runs through the tracker: params, stepped metrics (a NaN too), tags,
    artifacts (bytes, text, an array), one with its environment captured."""
    ids = []
    for i in range(3):
        with nbtrack.run(
            f"train/{i}",
            seed=i,
            params={"lr": 0.1 * (i + 1), "layers": [8, i]},
            tags=["sync", f"t{i}"],
            note=f"run {i}",
            store=folder,
            capture_env=i == 0,
        ) as track:
            for step in range(5):
                track.log(step=step, loss=1.0 / (step + 1 + i), acc=step * 0.1)
            track.log(step=5, loss=float("nan"))
            track.artifact(b"\x00\x01binary" * (i + 1), name="weights.bin")
            track.artifact(f"report {i}\n", name="report.txt")
            track.artifact(np.arange(10) * i, name="preds")
            ids.append(track.id)
    return ids


def _snapshot(store: Store) -> dict[str, Any]:
    """Everything a run is, by global id, without the per-store number; with the bytes of
    every blob and artifact file it refers to."""
    out: dict[str, Any] = {}
    for (run_id,) in store.list_runs(columns=("id",)):
        row = store.run_row(run_id)
        row.pop("number")
        digests = [row[c] for c in ("code_hash", "env_hash", "rng_hash") if row[c]]
        digests += [h for _, h in row["history"]]
        artifacts = store.artifacts(run_id)
        out[run_id] = {
            "row": json.dumps(row, sort_keys=True, default=str),
            "metrics": json.dumps(store.metric_history(run_id)),  # NaN stays NaN
            "blobs": store.get_blobs(digests),
            "artifacts": sorted(artifacts),
            "files": {d: store.artifact_file(d).read_bytes() for _, _, d, _, _ in artifacts},
        }
    return out


def test_push_copies_runs_byte_identical_and_pull_brings_them_back(tmp_path: Path) -> None:
    local, team, laptop = tmp_path / "local", tmp_path / "team", tmp_path / "laptop"
    ids = _make_runs(local)
    src = Store(local)
    report = push(team, store=src)
    assert sorted(report.copied) == sorted(ids) and not report.problems
    dst = Store(team)
    assert _snapshot(dst) == _snapshot(src)
    assert any(snap["blobs"] for snap in _snapshot(dst).values())  # env/code blobs went too
    back = pull(team, store=laptop)
    assert sorted(back.copied) == sorted(ids)
    assert _snapshot(Store(laptop)) == _snapshot(src)
    # runs() and compare read the copies like any other run
    frame = nbtrack.runs(store=team)
    assert sorted(frame["id"]) == sorted(ids)


def test_push_is_idempotent_and_numbers_are_per_store(tmp_path: Path) -> None:
    local, team = tmp_path / "local", tmp_path / "team"
    ids = _make_runs(local)
    with nbtrack.run("team-only", store=team, capture_env=False) as track:
        track.log(x=1.0)
    push(team, store=local)
    again = push(team, store=local)
    assert again.copied == [] and again.updated == [] and sorted(again.skipped) == sorted(ids)
    dst = Store(team)
    assert dst.count_runs() == 4
    # the team store numbered them after its own run; the global ids are the same
    assert [dst.run_row(i)["number"] for i in ids] == [2, 3, 4]
    metric_rows = sqlite3.connect(team / "nbtrack.db").execute(
        "SELECT COUNT(*) FROM metrics WHERE run_id IN (?,?,?)", ids
    )
    assert metric_rows.fetchone()[0] == 3 * 11  # 5 loss + 5 acc + the NaN, once each


def test_a_run_pushed_while_running_is_updated_once_finished(tmp_path: Path) -> None:
    src = Store(tmp_path / "local")
    src.create_run("ab" * 16, {"name": "long", "status": "running", "start_time": time.time()})
    src.append_metrics("ab" * 16, [("loss", 0, 1.0, 1.0)], {"loss": 1.0})
    assert push(tmp_path / "team", store=src).copied == ["ab" * 16]
    src.append_metrics("ab" * 16, [("loss", 1, 0.5, 2.0)], {"loss": 0.5})
    src.update_run("ab" * 16, {"status": "finished", "end_time": time.time()})
    report = push(tmp_path / "team", store=src)
    assert report.updated == ["ab" * 16]
    dst = Store(tmp_path / "team")
    assert dst.run_row("ab" * 16)["status"] == "finished"
    assert dst.metric_points("ab" * 16, "loss") == [(0, 1.0), (1, 0.5)]
    assert push(tmp_path / "team", store=src).skipped == ["ab" * 16]


def test_push_of_named_runs_and_sweeps(tmp_path: Path) -> None:
    local = tmp_path / "local"
    ids = _make_runs(local)
    src = Store(local)
    src.create_sweep("cd" * 16, _sweep_fields())
    src.set_sweep_trial("cd" * 16, 0, ids[0], "complete", 0.5)
    one = push(tmp_path / "team", ["2"], store=src)  # run #2 only, by its number
    assert one.copied == [ids[1]] and one.sweeps == []
    everything = push(tmp_path / "team", store=src)
    assert sorted(everything.copied) == sorted([ids[0], ids[2]])
    assert everything.sweeps == ["cd" * 16]
    dst = Store(tmp_path / "team")
    assert dst.sweep_trials("cd" * 16)[0]["run_id"] == ids[0]
    assert dst.sweep_row("cd" * 16)["objective"] == "loss"


def _sweep_fields() -> dict[str, Any]:
    return {
        "name": "s",
        "status": "finished",
        "start_time": 1.0,
        "objective": "loss",
        "direction": "minimize",
        "sampler": "tpe",
        "pruner": "none",
        "n_trials": 1,
        "study_name": "s",
        "storage": "journal",
    }


def _big_store(folder: Path, runs: int, points: int) -> list[str]:
    """Runs with many metric points, written straight through the store for speed."""
    store = Store(folder)
    ids = []
    for r in range(runs):
        run_id = f"{r:02d}" * 16
        store.create_run(run_id, {"name": f"big/{r}", "status": "finished", "start_time": 1.0 + r})
        store.append_metrics(
            run_id, [("loss", s, s * 0.5 + r, 1000.0 + s) for s in range(points)], {"loss": 1.0}
        )
        store.add_artifact(run_id, "w.bin", "bytes", *store.put_artifact_bytes(b"w%d" % r), {})
        ids.append(run_id)
    store.close()
    return ids


def test_a_push_killed_halfway_and_rerun_leaves_exactly_one_copy(tmp_path: Path) -> None:
    local, team = tmp_path / "local", tmp_path / "team"
    ids = _big_store(local, runs=5, points=80_000)
    Store(team).close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbtrack", "push", "--store", str(local), "--to", str(team)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Kill it while a run is half-written in the team store (its marker is there).
    seen_partial = False
    db = sqlite3.connect(team / "nbtrack.db", timeout=30)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        rows = db.execute(
            "SELECT COUNT(*) FROM runs WHERE extra LIKE ?", (f"%{INCOMPLETE}%",)
        ).fetchone()
        done = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        if rows[0] and done >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            seen_partial = True
            break
        time.sleep(0.002)
    proc.wait()
    if proc.stderr is not None:  # the PIPE, closed so no file is left for the collector
        proc.stderr.close()
    assert seen_partial, "the push finished before it could be killed halfway"
    assert proc.returncode == -signal.SIGKILL
    partial = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert 0 < partial < len(ids)
    half = db.execute("SELECT id FROM runs WHERE extra LIKE ?", (f"%{INCOMPLETE}%",)).fetchall()
    db.close()
    report = push(team, store=local)
    assert sorted(report.updated) == sorted(r[0] for r in half)  # the half-written one, redone
    src, dst = Store(local), Store(team)
    assert dst.count_runs() == len(ids)
    count = sqlite3.connect(team / "nbtrack.db").execute(
        "SELECT run_id, COUNT(*) FROM metrics GROUP BY run_id"
    )
    assert dict(count.fetchall()) == {i: 80_000 for i in ids}
    assert _snapshot(dst) == _snapshot(src)


def test_cli_push_pull_json_and_missing_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, team = tmp_path / "local", tmp_path / "team"
    ids = _make_runs(local)
    assert cli.main(["push", "--store", str(local), "--to", str(team), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["copied"]) == sorted(ids)
    assert cli.main(["push", "--store", str(local), "--to", str(team)]) == 0
    assert "0 run(s) copied, 0 updated, 3 already there" in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    assert cli.main(["pull", "--store", str(fresh), "--from", str(team), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["copied"]) == 3
    monkeypatch.chdir(tmp_path)  # no nbtrack.toml here or above: no default remote
    assert cli.main(["push", "--store", str(local)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--to" in err[0] and "[sync] remote" in err[0]
    # the project's nbtrack.toml names the team store
    (tmp_path / "nbtrack.toml").write_text(f'[sync]\nremote = "{team.as_posix()}"\n')
    assert cli.main(["push", "--store", str(local)]) == 0
    assert "3 already there" in capsys.readouterr().out


def test_bad_targets_are_one_line_with_the_password_redacted(tmp_path: Path) -> None:
    _make_runs(tmp_path / "local")
    with pytest.raises(SyncError) as info:
        push("s3://user:hunter2@bucket/x", store=tmp_path / "local")
    assert "hunter2" not in str(info.value) and "unknown store URL scheme" in str(info.value)
    with pytest.raises(SyncError) as info:
        pull(tmp_path / "nowhere", store=tmp_path / "local")
    assert "no nbtrack store" in str(info.value)


def test_magic_push_and_pull(
    shell: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cell(shell, "%%track --name magic\nx = 3\ntrack.log(acc=0.5)")
    team = tmp_path / "team"
    result = run_cell(shell, f"%nbtrack push --to {team}")
    assert result.success
    assert "1 run(s) copied" in capsys.readouterr().out
    assert Store(team).count_runs() == 1
    assert Store(team).list_runs(columns=("name",)) == [("magic",)]
    result = run_cell(shell, f"%nbtrack pull --from {team} --json")
    assert result.success and json.loads(capsys.readouterr().out)["skipped"]
    result = run_cell(shell, "%nbtrack push --bogus")
    assert not result.success and "unrecognized arguments" in str(result.error_in_exec)


def test_push_to_and_pull_from_postgresql(pg_url: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    ids = _make_runs(local)
    src = Store(local)
    assert sorted(push(pg_url, store=src).copied) == sorted(ids)
    assert push(pg_url, store=src).skipped  # idempotent on PostgreSQL too
    back = pull(pg_url, store=tmp_path / "laptop")
    assert sorted(back.copied) == sorted(ids)
    assert _snapshot(Store(tmp_path / "laptop")) == _snapshot(src)


def test_a_run_whose_artifact_is_unreadable_is_not_copied_and_the_rest_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local, team = tmp_path / "local", tmp_path / "team"
    ids = _make_runs(local)
    src = Store(local)
    # run #2's weights (its own content, no other run shares it) vanish from the source
    [digest] = [d for n, _, d, _, _ in src.artifacts(ids[1]) if n == "weights.bin"]
    src.artifact_file(digest).unlink()
    assert cli.main(["push", "--store", str(local), "--to", str(team), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] == [ids[1]] and sorted(out["copied"]) == sorted([ids[0], ids[2]])
    assert len(out["problems"]) == 1 and out["problems"][0].startswith("run #2 not copied: ")
    dst = Store(team)
    assert dst.count_runs() == 2  # nothing of run #2 was written
    # put back (saving the same content again repairs it): the next push copies it
    src.put_artifact_bytes(b"\x00\x01binary" * 2)
    assert push(team, store=local).copied == [ids[1]]
    assert _snapshot(Store(team)) == _snapshot(Store(local))


def test_push_and_pull_carry_each_runs_project(pg_url: str, tmp_path: Path) -> None:
    """A run keeps its project through a team store (PostgreSQL) and back to a laptop."""
    from nbtrack.store.routing import connect_store

    local = tmp_path / "local"
    for project in ("vision", None):
        with nbtrack.run("p", store=local, project=project, capture_env=False) as track:
            track.log(x=1.0)
    push(pg_url, store=local)
    team = connect_store(pg_url)
    try:
        assert team.list_runs(project="vision", columns=("number", "project")) == [(1, "vision")]
    finally:
        team.close()
    pull(pg_url, store=tmp_path / "laptop")
    frame = nbtrack.runs(store=tmp_path / "laptop")
    assert list(frame["project"].fillna("-")) == ["vision", "-"]
    assert list(nbtrack.runs(store=tmp_path / "laptop", project="vision")["number"]) == [1]


def test_a_sweep_whose_study_is_missing_is_copied_with_one_problem_line(tmp_path: Path) -> None:
    src = Store(tmp_path / "local")
    src.create_sweep("ef" * 16, {**_sweep_fields(), "storage": "sweeps/gone.journal"})
    report = push(tmp_path / "team", store=src)
    assert report.sweeps == ["ef" * 16]  # the record and its trial links still go
    (line,) = report.problems
    assert line.startswith("sweep #1 (efefefef): its Optuna study was not copied: its Optuna")
    assert "gone.journal is missing" in line
    assert not (tmp_path / "local" / "sweeps" / "gone.journal").exists()  # not created
    assert push(tmp_path / "team", store=src).problems == report.problems  # tried again


def test_a_run_pushed_while_its_process_runs_is_replaced_after_the_process_ended(
    tmp_path: Path,
) -> None:
    """The copy of a running run names the source's process; once that process has ended,
    the target marks the copy crashed (its process is gone) before the next push compares
    them. The push replaces it with the finished run, all points, not skip it as done."""
    local = tmp_path / "local"
    script = tmp_path / "long.py"
    script.write_text(
        "import sys\n"
        "import nbtrack\n"
        "with nbtrack.run(name='long', store=sys.argv[1], capture_env=False) as track:\n"
        "    for i in range(5):\n"
        "        track.log(step=i, loss=float(i))\n"
        "    track.flush()\n"
        "    print(track.id, flush=True)\n"
        "    sys.stdin.readline()\n"
        "    for i in range(5, 10):\n"
        "        track.log(step=i, loss=float(i))\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(local)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert push(tmp_path / "team", store=local).copied == [run_id]
    proc.communicate("go\n", timeout=120)
    assert proc.returncode == 0
    team = Store(tmp_path / "team")
    team.mark_crashed()  # what any process opening the team store does first
    assert team.run_row(run_id)["status"] == "crashed"
    team.close()
    report = push(tmp_path / "team", store=local)
    assert report.updated == [run_id], report
    team = Store(tmp_path / "team")
    assert team.run_row(run_id)["status"] == "finished"
    assert team.metric_points(run_id, "loss") == [(i, float(i)) for i in range(10)]
    team.close()
    assert push(tmp_path / "team", store=local).skipped == [run_id]


def test_a_password_in_sync_remote_in_nbtrack_toml_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """nbtrack.toml is shared with the project: as for [store] location, a password in
    [sync] remote is one line saying where it goes instead, and nothing is pushed."""
    _make_runs(tmp_path / ".nbtrack")
    (tmp_path / "nbtrack.toml").write_text(
        '[sync]\nremote = "postgresql://ana:s3cret-pw@127.0.0.1:1/team"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBTRACK_STORE", raising=False)
    assert cli.main(["push"]) != 0
    err = capsys.readouterr().err
    assert "[sync] remote postgresql://ana:<redacted>@127.0.0.1:1/team carries a password" in err
    assert "~/.pgpass" in err and "s3cret" not in err


def test_a_wrong_from_folder_and_an_experiment_for_a_store_are_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "local"
    _make_runs(local)
    assert cli.main(["pull", "--from", str(tmp_path / "typo"), "--store", str(local)]) != 0
    err = capsys.readouterr().err.strip()
    assert err == (
        f"nbtrack: error: no nbtrack store at {tmp_path / 'typo'}; check --from (a store "
        "folder, a postgresql:// URL or mlflow+http://host:port)"
    )
    assert not (tmp_path / "typo").exists()
    team = str(tmp_path / "team")
    for argv in (
        ["push", "--to", team, "--experiment", "digits"],
        ["pull", "--from", team, "--experiment", "digits"],
    ):
        assert cli.main([*argv, "--store", str(local)]) != 0
        err = capsys.readouterr().err
        assert "--experiment names an MLflow experiment (mlflow+http://…)" in err
    assert not (tmp_path / "team").exists()  # nothing was pushed
