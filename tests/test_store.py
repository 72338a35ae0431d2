"""The SQLite store on its own: numbering, blobs, artifacts, concurrency and bad stores."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from nbtrack.errors import (
    AmbiguousRunError,
    StoreCorruptError,
    StoreLockedError,
    StoreReadOnlyError,
    StoreSchemaError,
    UnknownRunError,
)
from nbtrack.store.schema import SCHEMA_VERSION
from nbtrack.store.sqlite import Store


def _new_run(store: Store, run_id: str, **fields) -> int:
    return store.create_run(
        run_id, {"name": "t", "status": "running", "start_time": time.time(), **fields}
    )


def test_numbers_are_sequential_and_refs_resolve(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    assert _new_run(store, "aaaa1111") == 1
    assert _new_run(store, "aaaa2222") == 2
    assert store.resolve(2) == "aaaa2222"
    assert store.resolve("#1") == "aaaa1111"
    assert store.resolve("last") == "aaaa2222"
    assert store.resolve("aaaa1") == "aaaa1111"
    with pytest.raises(AmbiguousRunError):
        store.resolve("aaaa")
    with pytest.raises(UnknownRunError, match="no run matches"):
        store.resolve(99)


def test_blobs_are_deduplicated(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    first = store.put_blob("code", b"x = 1\n")
    second = store.put_blob("code", b"x = 1\n")
    assert first == second
    fresh = Store(tmp_path / "s")  # a second connection, no in-process cache
    assert fresh.put_blobs("code", [b"x = 1\n", b"y = 2\n"])[0] == first
    count = (
        sqlite3.connect(tmp_path / "s" / "nbtrack.db")
        .execute("SELECT COUNT(*) FROM blobs")
        .fetchone()[0]
    )
    assert count == 2
    assert fresh.get_blob(first) == b"x = 1\n"


def test_artifacts_are_content_addressed_and_gc_frees_unused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    _new_run(store, "r1")
    _new_run(store, "r2")
    digest, size = store.put_artifact_bytes(b"weights")
    store.add_artifact("r1", "model", "bytes", digest, size, {})
    store.add_artifact("r2", "model", "bytes", digest, size, {})
    files = [p for p in (tmp_path / "s" / "artifacts").rglob("*") if p.is_file()]
    assert len(files) == 1
    store.delete_runs(["r1"])
    assert store.gc(grace=0)["files"] == 0  # still used by r2
    store.delete_runs(["r2"])
    result = store.gc(grace=0)
    assert result["files"] == 1 and result["bytes"] == len(b"weights")
    assert not store.artifact_file(digest).exists()


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    Store(folder).close()
    db = folder / "nbtrack.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreSchemaError, match="upgrade nbtrack"):
        Store(folder)
    assert db.read_bytes() == before


def test_corrupt_store_is_refused_without_changing_it(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    db = folder / "nbtrack.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreCorruptError, match="not a readable nbtrack store"):
        Store(folder)
    assert db.read_bytes() == b"this is not sqlite" * 100


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    # Works as root too: a file stands where the store folder should be created.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreReadOnlyError, match="writable folder"):
        Store(blocker / "s")


def test_lock_held_beyond_timeout_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBTRACK_BUSY_TIMEOUT", "0.2")
    store = Store(tmp_path / "s")
    holder = sqlite3.connect(tmp_path / "s" / "nbtrack.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLockedError, match="locked by another process"):
            _new_run(store, "r1")
    finally:
        holder.execute("ROLLBACK")
    assert _new_run(store, "r1") == 1  # nothing lost: works once the lock is gone


def test_dead_process_runs_are_marked_crashed(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    _new_run(store, "r1")
    proc = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    proc.start()
    proc.join()
    store.update_run("r1", {"pid": proc.pid})
    assert store.mark_crashed() == 1
    row = store.run_row("r1")
    assert row["status"] == "crashed"
    assert "died" in row["error"]["message"]


def _write_runs(folder: str, worker: int, count: int) -> None:
    import nbtrack

    for i in range(count):
        with nbtrack.run(
            name=f"w{worker}", params={"i": i}, store=folder, capture_env=False
        ) as track:
            track.log(loss=float(i))


def test_four_processes_writing_200_runs_each_lose_none(tmp_path: Path) -> None:
    folder = str(tmp_path / "shared")
    Store(folder).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_runs, args=(folder, w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    conn = sqlite3.connect(Path(folder) / "nbtrack.db")
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 800
    numbers = [n for (n,) in conn.execute("SELECT number FROM runs ORDER BY number")]
    assert numbers == list(range(1, 801))
    assert conn.execute("SELECT COUNT(*) FROM runs WHERE status='finished'").fetchone()[0] == 800
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 800
    per_worker = dict(conn.execute("SELECT name, COUNT(*) FROM runs GROUP BY name").fetchall())
    assert per_worker == {"w0": 200, "w1": 200, "w2": 200, "w3": 200}


def test_run_numbers_are_never_reused_after_rm(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    _new_run(store, "r1")
    _new_run(store, "r2")
    store.delete_runs(["r2"])
    assert _new_run(store, "r3") == 3  # `nbtrack show 2` must never name a different run


def test_gc_in_another_process_does_not_orphan_later_runs(tmp_path: Path) -> None:
    live = Store(tmp_path / "s")
    _new_run(live, "r1")
    digest = live.put_blob("env", b"{}")  # the live process now believes the blob exists
    live.update_run("r1", {"env_hash": digest})
    other = Store(tmp_path / "s")
    other.delete_runs(["r1"])
    assert other.gc(grace=0)["blobs"] == 1
    live.check_blob_cache()  # what start_run does before each run
    assert live.put_blob("env", b"{}") == digest
    assert live.get_blob(digest) == b"{}"


def test_a_version_1_store_opens_and_gains_the_goals_column(tmp_path: Path) -> None:
    from nbtrack.query import load_record
    from nbtrack.store.schema import MIGRATIONS

    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / "nbtrack.db")
    for statement in MIGRATIONS[1]:  # exactly what nbtrack with schema v1 created
        conn.execute(statement)
    conn.execute("PRAGMA user_version=1")
    conn.execute(
        "INSERT INTO runs (id, number, name, status, start_time, metrics) "
        "VALUES ('old1', 1, 't/old', 'finished', 1.0, '{\"val_loss\": 0.5}')"
    )
    conn.commit()
    conn.close()
    store = Store(folder)
    assert store.schema_version == SCHEMA_VERSION
    record = load_record(store, "old1")
    assert record.goals == {} and record.metrics == {"val_loss": 0.5}
    assert record.direction("val_loss") == "min"  # nothing stored: the rule decides
    store.update_run("old1", {"goals": {"val_loss": {"direction": "max", "source": "declared"}}})
    assert load_record(store, "old1").direction("val_loss") == "max"
    store.close()
    assert Store(folder).schema_version == SCHEMA_VERSION  # a second open does not migrate again
