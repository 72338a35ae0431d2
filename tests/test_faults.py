"""Process deaths and damaged files: what survives SIGKILL, and damage is never served.

The SIGKILL workloads are ``benchmarks/stress.py``'s scenarios at CI sizes (real processes,
real signals); the script runs them at the issue's sizes. The other tests damage store files
the way a power loss or a failing disk would, and race ``gc`` against a run that is saving.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_stress import stress  # benchmarks/stress.py, loaded once for both suites

import nbtrack
from nbtrack.errors import ArtifactError
from nbtrack.records import RunRecord
from nbtrack.store.sqlite import Store

#: The tracker flushes every 0.5 s (the default NBTRACK_FLUSH_INTERVAL); a kill during a
#: flush loses that flush too, so up to one interval plus a flush's own time (0.64 s at most
#: in benchmarks/stress.py's 20 kills). The bound leaves room for a busy CI machine, whose
#: flush thread may wait for a CPU.
MAX_LOST_SECONDS = 2.0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder for the store."""
    return tmp_path / "store"


# -- SIGKILL --------------------------------------------------------------------------------------
def test_sigkilled_loggers_lose_at_most_a_flush_and_read_crashed_on_next_open(
    folder: Path,
) -> None:
    outcome = stress.sigkill_loggers(folder, kills=5)
    details = outcome.details
    assert details["marked_by_next"] == [True] * 5  # marked by the next process's open alone
    assert details["gaps"] == 0  # what is stored of each run is its steps 0..n, no holes
    assert details["integrity"] == "ok"
    assert details["after_ok"], details["after_errors"]
    assert max(details["lost_seconds"]) < MAX_LOST_SECONDS, details["lost_seconds"]
    assert outcome.errors == 0
    for i in range(5):
        record = nbtrack.get_run(_number(folder, f"killed/{i}"), store=folder)
        assert record.status == "crashed"
        assert record.error is not None and "died" in record.error["message"]
        assert record.end_time is not None and record.end_time >= record.start_time
        steps = [p.step for p in record.metric_history.get("loss", [])]
        assert steps == list(range(len(steps)))  # a prefix of what was logged, in order
    after = nbtrack.get_run("last", store=folder)
    assert after.name == "after-kills" and after.status == "finished"
    assert len(after.metric_history["loss"]) == 1000


def _number(folder: Path, name: str) -> int:
    conn = sqlite3.connect(folder / "nbtrack.db")
    try:
        return int(conn.execute("SELECT number FROM runs WHERE name=?", (name,)).fetchone()[0])
    finally:
        conn.close()


def test_sigkill_while_saving_artifacts_leaves_no_dangling_row_and_no_bad_file(
    folder: Path,
) -> None:
    outcome = stress.sigkill_artifact_saves(folder, kills=4, size=4_000_000)
    details = outcome.details
    assert details["cut_short"] >= 1  # the even-numbered kills aim at a write in flight
    assert details["before"]["temp"] >= 1  # ...and leave only temp files behind
    assert details["before"]["bad"] == 0  # never a partial file under a content name
    assert details["before"]["failed"] == 0  # every row's content loads, hash checked
    assert details["lost"] == 0  # everything track.artifact returned for was recorded
    assert details["after"]["temp"] == 0 and details["gc"]["files"] >= details["before"]["temp"]
    assert outcome.errors == 0
    for i in range(4):
        record = nbtrack.get_run(_number(folder, f"saving/{i}"), store=folder)
        assert record.status == "crashed"
        for art in record.artifacts:
            loaded = record.load_artifact(art.name)
            data = loaded.read_bytes() if art.kind == "file" else loaded
            assert len(data) == 4_000_016


def test_sigkill_during_gc_leaves_every_recorded_artifact_loadable(folder: Path) -> None:
    outcome = stress.sigkill_gc(folder, kills=5, garbage=500)
    details = outcome.details
    assert details["mid_gc"] >= 1  # at least one kill struck inside a sweep
    assert details["before"]["failed"] == 0 and details["before"]["rows"] == 51
    assert details["integrity"] == "ok"
    assert details["exact"]  # a later gc finished the job: only referenced content is left
    assert outcome.errors == 0
    record = nbtrack.get_run(1, store=folder)  # the run "kept"
    folder_copy = record.load_artifact("kept-dir")
    assert len(list(folder_copy.iterdir())) == 20


# -- damaged content is an error, never data ------------------------------------------------------
def _saved_run(folder: Path, tmp_path: Path) -> RunRecord:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(3000))
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha")
    (tree / "sub" / "b.txt").write_text("beta")
    with nbtrack.run(name="saved", store=folder, capture_env=False) as track:
        track.artifact(b"\x00\x01payload", name="raw")
        track.artifact("some text", name="text")
        track.artifact(np.arange(12.0), name="array")
        track.artifact(weights, name="weights")
        track.artifact(tree, name="tree")
    return nbtrack.get_run("last", store=folder)


def _content_path(folder: Path, digest: str) -> Path:
    return folder / "artifacts" / digest[:2] / digest[2:]


@pytest.mark.parametrize("name", ["raw", "text", "array", "weights", "tree"])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_content_is_one_clear_error_never_data(
    folder: Path, tmp_path: Path, name: str, damage: str
) -> None:
    record = _saved_run(folder, tmp_path)
    art = next(a for a in record.artifacts if a.name == name)
    digest = next(iter(art.meta["files"].values())) if art.kind == "dir" else art.hash
    path = _content_path(folder, digest)
    data = path.read_bytes()
    if damage == "truncate":  # what a power loss does to a file the OS had not written out
        path.write_bytes(data[: len(data) // 2])
    else:  # a failing disk: same size, one bit wrong
        path.write_bytes(bytes([data[0] ^ 0x01]) + data[1:])
    with pytest.raises(ArtifactError) as caught:
        record.load_artifact(name)
    message = str(caught.value)
    assert "\n" not in message
    assert digest[:12] in message and "damaged" in message and "gc --verify" in message
    for other in record.artifacts:  # the damage is confined to what was damaged
        if other.name != name and not (name == "tree" or other.name == "tree"):
            record.load_artifact(other.name)


def test_gc_verify_removes_a_damaged_copy_and_saving_again_repairs_it(
    folder: Path, tmp_path: Path
) -> None:
    record = _saved_run(folder, tmp_path)
    art = next(a for a in record.artifacts if a.name == "raw")
    path = _content_path(folder, art.hash)
    path.write_bytes(b"\xff" + path.read_bytes()[1:])  # same size: only a hash can tell
    store = Store(folder)
    assert store.gc(grace=0)["damaged"] == 0  # a plain gc reads no content
    assert store.gc(grace=0, verify=True)["damaged"] == 1
    assert not path.exists()
    with pytest.raises(ArtifactError, match="missing .* save the artifact again"):
        record.load_artifact("raw")
    assert record.load_artifact("text") == "some text"  # intact content is left alone
    with nbtrack.run(name="again", store=folder, capture_env=False) as track:
        track.artifact(b"\x00\x01payload", name="raw")
    assert record.load_artifact("raw") == b"\x00\x01payload"  # the old run's row heals too


def test_nbtrack_gc_verify_reports_damaged_files(folder: Path, tmp_path: Path) -> None:
    record = _saved_run(folder, tmp_path)
    art = next(a for a in record.artifacts if a.name == "array")
    path = _content_path(folder, art.hash)
    path.write_bytes(path.read_bytes()[:-8])
    result = subprocess.run(
        [sys.executable, "-m", "nbtrack", "gc", "--verify", "--store", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("removed 1 damaged file(s)")
    assert not path.exists()
    assert record.load_artifact("text") == "some text"


def test_a_truncated_copy_is_written_again_when_the_same_content_is_saved(
    folder: Path, tmp_path: Path
) -> None:
    record = _saved_run(folder, tmp_path)
    art = next(a for a in record.artifacts if a.name == "weights")
    path = _content_path(folder, art.hash)
    path.write_bytes(path.read_bytes()[:100])
    with nbtrack.run(name="again", store=folder, capture_env=False) as track:
        track.artifact(tmp_path / "weights.bin", name="weights")
    assert record.load_artifact("weights").read_bytes() == (tmp_path / "weights.bin").read_bytes()


def test_gc_removes_leftovers_of_cut_short_writes_but_not_writes_in_flight(
    folder: Path,
) -> None:
    store = Store(folder)
    (folder / "artifacts" / "ab").mkdir(parents=True)
    old = folder / "artifacts" / "ab" / ".tmp-old"
    fresh = folder / "artifacts" / "ab" / ".tmp-fresh"
    old.write_bytes(b"half a checkpoint")
    fresh.write_bytes(b"being written now")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    result = store.gc(grace=60)
    assert result["files"] == 1 and result["bytes"] == len(b"half a checkpoint")
    assert not old.exists() and fresh.exists()


# -- gc racing a run that saves -------------------------------------------------------------------
def test_content_gc_would_free_is_kept_when_a_run_saves_it_again_meanwhile(
    folder: Path,
) -> None:
    saver = Store(folder)
    sweeper = Store(folder)
    saver.create_run("old", {"name": "old", "status": "finished", "start_time": time.time()})
    digest, size = saver.put_artifact_bytes(b"model weights")
    saver.add_artifact("old", "model", "bytes", digest, size, {})
    saver.delete_runs(["old"])  # the content is now garbage, and an hour old
    hour_ago = time.time() - 3600
    os.utime(saver.artifact_file(digest), (hour_ago, hour_ago))
    saver.create_run("new", {"name": "new", "status": "running", "start_time": time.time()})
    # A run saves the same content (found on disk, not written again) and, before its row
    # is written, a gc sweeps in another process.
    assert saver.put_artifact_bytes(b"model weights") == (digest, size)
    assert sweeper.gc(grace=60)["files"] == 0
    saver.add_artifact("new", "model", "bytes", digest, size, {})
    assert saver.read_artifact(digest) == b"model weights"


def test_no_row_is_recorded_for_content_that_vanished_before_it(folder: Path) -> None:
    store = Store(folder)
    store.create_run("r", {"name": "r", "status": "running", "start_time": time.time()})
    digest, size = store.put_artifact_bytes(b"checkpoint")
    store.artifact_file(digest).unlink()  # what a gc between the write and the row does
    with pytest.raises(ArtifactError, match="vanished .* save it again") as caught:
        store.add_artifact("r", "ckpt", "bytes", digest, size, {})
    assert "\n" not in str(caught.value)
    assert store.artifacts("r") == []  # no dangling row


# -- crash marking ---------------------------------------------------------------------------------
def test_a_dead_runs_reused_pid_does_not_keep_it_running(folder: Path) -> None:
    store = Store(folder)
    start = time.time() - 120  # the run started two minutes ago...
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # ...in a process since gone, whose pid now belongs to a process started just now.
        store.create_run("ghost", {"name": "ghost", "status": "running", "start_time": start})
        store.update_run("ghost", {"pid": stranger.pid})
        store.create_run(  # this process, which started before this run did
            "alive", {"name": "alive", "status": "running", "start_time": time.time()}
        )
        Store(folder).close()  # any nbtrack process opening the store
        conn = sqlite3.connect(folder / "nbtrack.db")
        statuses = dict(conn.execute("SELECT id, status FROM runs"))
        conn.close()
    finally:
        stranger.kill()
        stranger.wait()
    assert statuses == {"ghost": "crashed", "alive": "running"}
