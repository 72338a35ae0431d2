"""The store conformance suite: the same tests against the SQLite store and the PostgreSQL
store (a real server, tests/pg_server.py), so "everything that works on SQLite works the
same" is checked, not hoped. Each test gets a fresh store of its backend."""

from __future__ import annotations

import math
import multiprocessing
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import config
from nbtrack.errors import RegistryConflictError, StoreError, UnknownRunError
from nbtrack.store.base import TrackingStore
from nbtrack.store.postgres import PostgresStore
from nbtrack.store.routing import connect_store, open_store
from nbtrack.store.schema import SCHEMA_VERSION
from nbtrack.store.sqlite import Store

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh store of each backend lives: a folder, or a new database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "store")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def st(location: str) -> Any:
    store = connect_store(location)
    yield store
    store.close()


def _run_fields(**extra: Any) -> dict[str, Any]:
    return {"name": "digits", "status": "running", "start_time": 1000.0, **extra}


def _new_id() -> str:
    return uuid.uuid4().hex


# -- the interface ------------------------------------------------------------------------------
def test_both_stores_keep_the_interface(st: Any, location: str) -> None:
    assert isinstance(st, TrackingStore)
    assert st.schema_version == SCHEMA_VERSION
    assert isinstance(st, PostgresStore) == location.startswith("postgresql://")


# -- runs -------------------------------------------------------------------------------------
def test_runs_round_trip(st: Any) -> None:
    first, second = _new_id(), _new_id()
    assert st.create_run(first, _run_fields(tags=["a", "b"], params={"lr": 0.1})) == 1
    assert st.create_run(second, _run_fields(name="digits/big", deterministic=True)) == 2
    st.update_run(first, {"status": "done", "end_time": 1001.5, "note": "ok"})
    row = st.run_row(first)
    assert (row["status"], row["end_time"], row["note"]) == ("done", 1001.5, "ok")
    assert row["tags"] == ["a", "b"] and row["params"] == {"lr": 0.1} and row["error"] is None
    assert st.run_row(second)["deterministic"] == 1
    assert st.resolve("last") == second
    assert st.resolve("#1") == first and st.resolve(2) == second
    assert st.resolve(first[:10]) == first
    with pytest.raises(UnknownRunError):
        st.resolve(99)
    assert [r[0] for r in st.list_runs(columns=("number",))] == [1, 2]
    assert st.list_runs(tag="b", columns=("id",)) == [(first,)]
    assert st.list_runs(name="digits/*", columns=("id",)) == [(second,)]
    assert st.list_runs(name="digits", status="done", columns=("id",)) == [(first,)]
    assert st.count_runs() == 2
    assert st.delete_runs([first]) == 1
    with pytest.raises(UnknownRunError):
        st.run_row(first)
    # Numbers are never reused after a delete.
    assert st.create_run(_new_id(), _run_fields()) == 3


def _create_runs(location: str, count: int, queue: Any) -> None:
    store = connect_store(location)
    queue.put([store.create_run(uuid.uuid4().hex, _run_fields()) for _ in range(count)])
    store.close()


def test_run_numbers_are_distinct_under_four_processes(st: Any, location: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_create_runs, args=(location, 25, queue)) for _ in range(4)]
    for proc in procs:
        proc.start()
    numbers = [n for _ in procs for n in queue.get(timeout=120)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert sorted(numbers) == list(range(1, 101))
    assert st.count_runs() == 100


# -- metrics ----------------------------------------------------------------------------------
def test_metrics_keep_order_nan_and_latest(st: Any) -> None:
    run = _new_id()
    st.create_run(run, _run_fields())
    st.append_metrics(run, [("loss", 1, 0.5, 1.0), ("acc", 1, 0.7, 1.0)], {"loss": 0.5})
    st.append_metrics(run, [("loss", 3, float("nan"), 2.0), ("loss", 2, 0.25, 3.0)], None)
    history = st.metric_history(run)
    assert history["acc"] == [(1, 0.7, 1.0)]
    assert [p[0] for p in history["loss"]] == [1, 3, 2]  # logging order, not step order
    assert math.isnan(history["loss"][1][1])
    assert st.metric_points(run, "loss")[2] == (2, 0.25)
    assert st.run_row(run)["metrics"] == {"loss": 0.5}


# -- blobs ------------------------------------------------------------------------------------
def test_blobs_are_stored_once_and_collected(st: Any) -> None:
    code = b"print('hello')\n" * 100
    digest = st.put_blob("code", code)
    assert st.put_blobs("code", [code, b"other"])[0] == digest
    assert st.get_blob(digest) == code
    assert st.get_blobs([digest, "0" * 32]) == {digest: code}
    assert st.put_texts("history", ["a = 1", "b = 2"]) == st.put_texts(
        "history", ["a = 1", "b = 2"]
    )
    run = _new_id()
    st.create_run(run, _run_fields(code_hash=digest))
    freed = st.gc(grace=0)
    assert freed["blobs"] == 3  # b"other" and the two history cells: no run refers to them
    st.check_blob_cache()
    assert st.get_blob(digest) == code and st.get_blobs(st.put_texts("h", ["a = 1"]))


# -- artifacts (a local folder on both backends for now) ------------------------------------
def test_artifacts_round_trip(st: Any) -> None:
    run = _new_id()
    st.create_run(run, _run_fields())
    digest, size = st.put_artifact_bytes(b"weights")
    st.add_artifact(run, "model", "bytes", digest, size, {"format": "raw"})
    assert st.artifacts(run) == [("model", "bytes", digest, 7, {"format": "raw"})]
    assert st.read_artifact(digest) == b"weights"


# -- sweeps -----------------------------------------------------------------------------------
def test_sweeps_and_trials(st: Any) -> None:
    fields = {
        "name": "tune",
        "status": "running",
        "start_time": 5.0,
        "objective": "loss",
        "direction": "minimize",
        "sampler": "tpe",
        "pruner": "none",
        "n_trials": 3,
        "study_name": "s",
        "storage": "journal",
        "space": [{"name": "lr"}],
    }
    sweep = _new_id()
    assert st.create_sweep(sweep, fields) == 1
    assert st.create_sweep(_new_id(), {**fields, "name": "other"}) == 2
    st.update_sweep(sweep, {"status": "done"})
    row = st.sweep_row(sweep)
    assert row["status"] == "done" and row["space"] == [{"name": "lr"}]
    assert st.resolve_sweep("#1") == sweep and st.resolve_sweep(sweep[:8]) == sweep
    assert [s["id"] for s in st.list_sweeps(name="tu*")] == [sweep]
    st.claim_sweep_trial(sweep, 0)
    st.set_sweep_trial(sweep, 0, "r0", "complete", 0.5)
    st.set_sweep_trial(sweep, 0, None, "complete", 0.4)  # keeps the run it had
    st.claim_sweep_trial(sweep, 1)
    trials = st.sweep_trials(sweep)
    assert [(t["trial"], t["run_id"], t["state"], t["value"]) for t in trials] == [
        (0, "r0", "complete", 0.4),
        (1, None, "claimed", None),
    ]
    assert trials[1]["pid"] == os.getpid()


# -- registry ---------------------------------------------------------------------------------
def _registry(store: Any, tmp_path: Path) -> Any:
    from nbtrack.registry.core import Registry

    return Registry(store, user="ana", cwd=tmp_path)


def _two_versions(store: Any, tmp_path: Path) -> Any:
    reg = _registry(store, tmp_path)
    for i in range(2):
        with nbtrack.run(
            name="digits", store=store, capture_env=False, capture_data=False
        ) as track:
            track.log(val_acc=0.9 + i / 100)
            track.artifact(f"weights-{i}".encode(), "model")
        reg.register(track.number, "digits")
    return reg


def test_registry_versions_stages_aliases_and_audit(st: Any, tmp_path: Path) -> None:
    reg = _two_versions(st, tmp_path)
    reg.promote("digits", 1, "production")
    reg.set_alias("digits", "champion", 2)
    reg.promote("digits", 2, "production", reason="better")
    assert reg.resolve("digits@production").version == 2
    assert reg.resolve("digits@champion").version == 2
    assert nbtrack.load_model("digits@production", store=st) == b"weights-1"
    periods = st.registry_stage_periods(st.registry_model("digits")["id"], stage="production")
    assert [(p["version"], p["until"] is None) for p in periods] == [(1, False), (2, True)]
    rows = st.registry_audit_rows(model="digits")
    assert rows and all(r["user"] == "ana" for r in rows)
    assert st.registry_audit_count() == len(st.registry_audit_rows())
    models, stages, aliases = st.registry_overview()
    assert [m["name"] for m in models] == ["digits"]
    assert (models[0]["id"], "production", [2]) in stages
    assert aliases == [(models[0]["id"], "champion", 2)]


def _race(location: str, cwd: str, version: int, barrier: Any, queue: Any) -> None:
    from nbtrack.registry.core import Registry

    reg = Registry(connect_store(location), user=f"u{version}", cwd=cwd)
    plan = reg.plan_promotion("digits", version, "production")
    barrier.wait(timeout=60)
    try:
        reg.commit(plan)
        queue.put(("won", version))
    except RegistryConflictError:
        queue.put(("lost", version))


def test_exactly_one_of_two_racing_promotions_wins(st: Any, location: str, tmp_path: Path) -> None:
    _two_versions(st, tmp_path)
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(location, str(tmp_path), v, barrier, queue)) for v in (1, 2)
    ]
    for proc in procs:
        proc.start()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    assert [r[0] for r in results] == ["lost", "won"]
    winner = next(v for outcome, v in results if outcome == "won")
    model = st.registry_model("digits")
    assert st.registry_current_stages(model["id"])[winner][0] == "production"
    assert sum(s == "production" for s, _ in st.registry_current_stages(model["id"]).values()) == 1


# -- schema and migrations ----------------------------------------------------------------------
def test_a_v1_store_migrates_to_the_current_schema(location: str, tmp_path: Path) -> None:
    """A store left at schema v1 (an old nbtrack) opens at the current version, data kept."""
    run = _new_id()
    if location.startswith("postgresql://"):
        import psycopg

        from nbtrack.store.postgres import PG_MIGRATIONS

        with psycopg.connect(location, autocommit=True) as conn:
            for statement in PG_MIGRATIONS[1]:
                conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('schema_version', 1)")
            conn.execute(
                "INSERT INTO runs (id, number, status, start_time) VALUES (%s, 1, 'done', 1.0)",
                (run,),
            )
    else:
        import sqlite3

        from nbtrack.store.schema import MIGRATIONS

        Path(location).mkdir(parents=True)
        conn = sqlite3.connect(Path(location) / config.DB_FILENAME)
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO runs (id, number, status, start_time) VALUES (?, 1, 'done', 1)", (run,)
        )
        conn.execute("PRAGMA user_version=1")
        conn.commit()
        conn.close()
    store = connect_store(location)
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert store.run_row(run)["goals"] == {}  # v2's column, with its default
        assert store.list_sweeps() == [] and store.registry_model("x") is None  # v3, v4
        assert store.create_run(_new_id(), _run_fields()) == 2
    finally:
        store.close()


def test_a_newer_schema_is_refused(location: str) -> None:
    store = connect_store(location)
    store.close()
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("UPDATE meta SET value=99 WHERE key='schema_version'")
    else:
        import sqlite3

        conn = sqlite3.connect(Path(location) / config.DB_FILENAME)
        conn.execute("PRAGMA user_version=99")
        conn.commit()
        conn.close()
    with pytest.raises(StoreError, match="newer than this nbtrack understands"):
        connect_store(location)


# -- PostgreSQL only: what a shared database adds -------------------------------------------
def test_a_password_is_never_shown_and_a_dead_server_is_one_line(pg_server: Any) -> None:
    url = pg_server.url("no_such_db", password="hunter2-secret")
    with pytest.raises(StoreError) as info:
        connect_store(url)
    message = str(info.value)
    assert "hunter2-secret" not in message and "<redacted>" in message
    # The server answered: a refusal, which says so (tests/test_pg_refusals.py has them all).
    assert "\n" not in message and 'refused the connection: database "no_such_db"' in message
    assert "check that the server runs" not in message
    with pytest.raises(StoreError, match="Connection refused|connection failed") as down:
        connect_store("postgresql://u:hunter2-secret@127.0.0.1:1/db")
    assert "hunter2-secret" not in str(down.value)
    assert str(down.value).endswith("check that the server runs and the store URL is right")


def test_the_url_reaches_the_store_from_the_environment(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.ENV_STORE, pg_url)
    config.set_store_dir(None)
    from nbtrack.store.routing import open_store

    store = open_store()
    assert isinstance(store, PostgresStore) and repr(store) == f"PostgresStore({pg_url!r})"
    assert open_store() is store  # one shared connection per URL in a process
    other = connect_store(config.command_store_dir(None, search_upwards=True))
    assert isinstance(other, Store)
    other.close()


def _ingest(location: str, runs: int, steps: int) -> None:
    for _ in range(runs):
        with nbtrack.run(name="w", store=location, capture_env=False, capture_data=False) as t:
            for step in range(steps):
                t.log(loss=1.0 / (step + 1), step=step)


def test_eight_writers_lose_nothing(pg_url: str) -> None:
    """8 processes × 100 runs × 1,000 steps into one fresh database (the team-store issue's
    full size, about 6 s): every run numbered once, finished, and with all its points in
    order. The processes start together, so they also race to create the schema."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_ingest, args=(pg_url, 100, 1000)) for _ in range(8)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
        assert proc.exitcode == 0
    store = connect_store(pg_url)
    try:
        rows = store.list_runs(columns=("id", "number", "status"))
        assert len(rows) == 8 * 100 and sorted(r[1] for r in rows) == list(range(1, 801))
        assert {r[2] for r in rows} == {"finished"}
        (points,) = store._query("SELECT COUNT(*) FROM metrics")[0]
        assert points == 8 * 100 * 1000
        for run_id, _, _ in rows:
            steps = [step for step, _ in store.metric_points(run_id, "loss")]
            assert steps == list(range(1000)), "a run lost or reordered some of its points"
    finally:
        store.close()


def test_a_store_opened_while_another_process_migrates_does_not_migrate_again(
    pg_url: str,
) -> None:
    """The race CI met with eight first writers: a process finds no schema, waits for the
    migration lock, and gets it after another process committed the migration. It must read
    the schema as migrated and run no DDL: re-run, the migration's ALTER TABLE on ``runs``
    waited behind (and deadlocked with) the runs other processes were already writing.
    Here a reader holding ``runs`` stands in for those writers."""
    import threading

    import psycopg

    from nbtrack.store.postgres import _LOCK_MIGRATE, PG_MIGRATIONS

    holder = psycopg.connect(pg_url, autocommit=True)  # holds the migration lock
    migrator = psycopg.connect(pg_url, autocommit=True)  # the process that migrates
    writer = psycopg.connect(pg_url, autocommit=True)  # a run being written meanwhile
    opened: list[Any] = []
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
        migrator.execute("BEGIN")
        for version in sorted(PG_MIGRATIONS):
            for statement in PG_MIGRATIONS[version]:
                migrator.execute(statement)
        migrator.execute("INSERT INTO meta VALUES ('schema_version', %s)", (SCHEMA_VERSION,))

        def open_it() -> None:
            try:
                opened.append(PostgresStore(pg_url))
            except Exception as exc:  # reported by the assertion below
                opened.append(exc)

        thread = threading.Thread(target=open_it, daemon=True)
        thread.start()  # finds no schema (uncommitted), then waits for the lock
        for _ in range(200):
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND NOT granted"
            ).fetchone()
            if waiting and waiting[0]:
                break
            thread.join(0.05)
        else:
            pytest.fail("the store never waited for the migration lock")
        migrator.execute("COMMIT")
        writer.execute("BEGIN")
        writer.execute("SELECT count(*) FROM runs")  # holds runs, as a writing run does
        holder.execute("COMMIT")
        thread.join(15)
        assert not thread.is_alive(), "the store re-ran the migration after it was committed"
        assert opened and isinstance(opened[0], PostgresStore), opened
        assert opened[0].schema_version == SCHEMA_VERSION
    finally:
        for conn in (writer, holder, migrator):
            conn.close()
        thread.join(15)
        for store in opened:
            if isinstance(store, PostgresStore):
                store.close()


def test_a_deadlock_reads_as_a_busy_store_to_retry_not_an_unreachable_server(
    pg_url: str,
) -> None:
    """PostgreSQL breaks a deadlock by rolling one transaction back: that is a busy store
    (StoreLockedError, "retry"), not "cannot reach … check that the server runs"."""
    import threading

    import psycopg

    from nbtrack.errors import StoreLockedError
    from nbtrack.store.postgres import translate_pg_errors

    first = psycopg.connect(pg_url, autocommit=True)
    second = psycopg.connect(pg_url, autocommit=True)
    raised: list[BaseException] = []

    def cross(conn: psycopg.Connection[Any], mine: int, theirs: int, go: threading.Barrier) -> None:
        try:
            with translate_pg_errors(pg_url), conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (mine,))
                go.wait(10)
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (theirs,))
        except Exception as exc:
            raised.append(exc)

    try:
        go = threading.Barrier(2)
        threads = [
            threading.Thread(target=cross, args=(first, 1, 2, go)),
            threading.Thread(target=cross, args=(second, 2, 1, go)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        first.close()
        second.close()
    assert len(raised) == 1, raised  # one was rolled back; the other then got its lock
    (error,) = raised
    assert isinstance(error, StoreLockedError), repr(error)
    assert "deadlock detected" in str(error) and str(error).endswith("retry")
    assert "cannot reach" not in str(error)


def test_a_tracked_cell_writes_to_postgresql(shell: Any, pg_url: str) -> None:
    result = shell.run_cell(f"%nbtrack store {pg_url}", store_history=True)
    assert result.success, result.error_in_exec
    for lr in (0.1, 0.2):
        result = shell.run_cell(
            f"%%track --name fit\nlr = {lr}\nfor step in range(3):\n"
            "    track.log(loss=lr * (3 - step), step=step)\nscore = lr * 2\n",
            store_history=True,
        )
        assert result.success, result.error_in_exec
    frame = nbtrack.runs(store=pg_url)
    assert list(frame["number"]) == [1, 2] and set(frame["status"]) == {"finished"}
    run = nbtrack.get_run(2, store=pg_url)
    assert run.params["lr"] == 0.2
    assert [v for _, v in open_store(pg_url).metric_points(run.id, "loss")] == pytest.approx(
        [0.6, 0.4, 0.2]
    )
    delta = nbtrack.diff(1, 2, store=pg_url)
    assert "lr" in str(delta)


# -- who did what -------------------------------------------------------------------------------
def test_each_run_records_its_user(st: Any, location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for user in ("ana", "bo", "ana"):
        monkeypatch.setenv(config.ENV_USER, user)
        with nbtrack.run(name="fit", store=st, capture_env=False, capture_data=False) as track:
            track.log(loss=1.0)
    frame = nbtrack.runs(store=st, user="ana")
    assert list(frame["number"]) == [1, 3] and set(frame["user"]) == {"ana"}
    assert list(nbtrack.runs(store=st)["user"]) == ["ana", "bo", "ana"]
    # Nobody named: the login name on SQLite, the database role on PostgreSQL.
    run = _new_id()
    st.create_run(run, _run_fields())
    if isinstance(st, PostgresStore):
        assert st.run_row(run)["user_name"] == "nbtrack"  # tests/pg_server.py's role
    else:
        from nbtrack.identity import current_user

        assert st.run_row(run)["user_name"] == current_user()


def test_the_command_line_reads_a_postgresql_store(pg_url: str) -> None:
    import subprocess
    import sys

    with nbtrack.run(name="cli", store=pg_url, capture_env=False, capture_data=False) as t:
        t.log(loss=0.5)
    done = subprocess.run(
        [sys.executable, "-m", "nbtrack", "show", "1", "--store", pg_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "run #1 cli" in done.stdout and "loss=0.5" in done.stdout


# -- projects -----------------------------------------------------------------------------------
def test_runs_record_their_project_and_list_runs_scopes_by_it(
    st: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no nbtrack.toml above: nothing names a project
    monkeypatch.delenv(config.ENV_PROJECT, raising=False)
    for project in ("vision", "nlp", None, "vision"):
        with nbtrack.run(
            name="fit", store=st, project=project, capture_env=False, capture_data=False
        ) as track:
            track.log(loss=1.0)
    assert st.list_runs(project="vision", columns=("number", "project")) == [
        (1, "vision"),
        (4, "vision"),
    ]
    assert st.list_runs(project="nlp", name="fit", columns=("number",)) == [(2,)]
    assert st.list_runs(project="none-such", columns=("number",)) == []
    frame = nbtrack.runs(store=st)  # default scoping: none, every run
    assert list(frame["number"]) == [1, 2, 3, 4]
    assert list(frame["project"].fillna("-")) == ["vision", "nlp", "-", "vision"]
    assert list(nbtrack.runs(store=st, project="vision")["number"]) == [1, 4]
    assert nbtrack.get_run(2, store=st).project == "nlp"
    assert nbtrack.get_run(3, store=st).project is None


def test_a_v5_store_migrates_to_projects_keeping_its_runs(location: str) -> None:
    """A store left at schema v5 (before projects) opens migrated: its runs kept, with no
    project, and new runs can name one."""
    run = _new_id()
    if location.startswith("postgresql://"):
        import psycopg

        from nbtrack.store.postgres import PG_MIGRATIONS

        with psycopg.connect(location, autocommit=True) as conn:
            for version in range(1, 6):
                for statement in PG_MIGRATIONS[version]:
                    conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('schema_version', 5)")
            conn.execute(
                "INSERT INTO runs (id, number, name, status, start_time, user_name) "
                "VALUES (%s, 1, 'old', 'finished', 1.0, 'ana')",
                (run,),
            )
    else:
        import sqlite3

        from nbtrack.store.schema import MIGRATIONS

        Path(location).mkdir(parents=True)
        conn = sqlite3.connect(Path(location) / config.DB_FILENAME)
        for version in range(1, 6):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO runs (id, number, name, status, start_time, user_name) "
            "VALUES (?, 1, 'old', 'finished', 1, 'ana')",
            (run,),
        )
        conn.execute("PRAGMA user_version=5")
        conn.commit()
        conn.close()
    store = connect_store(location)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 6
        row = store.run_row(run)
        assert (row["name"], row["user_name"], row["project"]) == ("old", "ana", None)
        new = _new_id()
        assert store.create_run(new, _run_fields(project="vision")) == 2
        assert store.list_runs(project="vision", columns=("id",)) == [(new,)]
        assert [r[0] for r in store.list_runs(columns=("id",))] == [run, new]
    finally:
        store.close()


def test_a_v6_store_migrates_to_the_run_key_index_keeping_its_points(location: str) -> None:
    """v7 indexes metric points by (run, key) instead of (run, key, step): a v6 store's
    points survive the rebuild, in the order they were written, and new ones append."""
    run = _new_id()
    points = [("loss", step, 1.0 / (step + 1), float(step)) for step in (5, 1, 3)]
    pg = location.startswith("postgresql://")
    if pg:
        import psycopg

        from nbtrack.store.postgres import PG_MIGRATIONS

        with psycopg.connect(location, autocommit=True) as conn:
            for version in range(1, 7):
                for statement in PG_MIGRATIONS[version]:
                    conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('schema_version', 6)")
            conn.execute(
                "INSERT INTO runs (id, number, name, status, start_time) "
                "VALUES (%s, 1, 'old', 'finished', 1.0)",
                (run,),
            )
            for key, step, value, ts in points:
                conn.execute(
                    "INSERT INTO metrics (run_id, key, step, value, ts) VALUES (%s,%s,%s,%s,%s)",
                    (run, key, step, value, ts),
                )
    else:
        import sqlite3

        from nbtrack.store.schema import MIGRATIONS

        Path(location).mkdir(parents=True)
        conn = sqlite3.connect(Path(location) / config.DB_FILENAME)
        for version in range(1, 7):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO runs (id, number, name, status, start_time) "
            "VALUES (?, 1, 'old', 'finished', 1)",
            (run,),
        )
        conn.executemany(
            "INSERT INTO metrics (run_id, key, step, value, ts) VALUES (?,?,?,?,?)",
            [(run, *point) for point in points],
        )
        conn.execute("PRAGMA user_version=6")
        conn.commit()
        conn.close()
    store = connect_store(location)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 7
        store.append_metrics(run, [("loss", 0, 9.0, 9.0)])
        history = store.metric_history(run)["loss"]
        assert [(step, value) for step, value, _ in history] == [
            (5, 1 / 6),
            (1, 1 / 2),
            (3, 1 / 4),
            (0, 9.0),
        ]
        if pg:
            indexes = {
                name
                for (name,) in store._query(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'metrics'", ()
                )
            }
            (cache,) = store._query(
                "SELECT cache_size FROM pg_sequences WHERE sequencename = 'metrics_rowid_seq'",
                (),
            )[0]
            assert int(cache) == 1000
        else:
            indexes = {
                name
                for (name,) in store._query(
                    "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='metrics'", ()
                )
            }
        assert "metrics_run" in indexes and "metrics_run_key" not in indexes
    finally:
        store.close()


# -- counting a run's points --------------------------------------------------------------------
def test_metric_counts_counts_each_metric_of_one_run(st: Any) -> None:
    run, other = _new_id(), _new_id()
    st.create_run(run, _run_fields())
    st.create_run(other, _run_fields())
    assert st.metric_counts(run) == {}
    st.append_metrics(run, [("loss", i, 1.0 / (i + 1), 0.0) for i in range(5)])
    st.append_metrics(run, [("acc", 0, math.nan, 0.0), ("loss", 5, 0.1, 0.0)])
    st.append_metrics(other, [("loss", 0, 1.0, 0.0)])
    assert st.metric_counts(run) == {"loss": 6, "acc": 1}
    assert st.metric_counts(other) == {"loss": 1}
    assert st.metric_counts(_new_id()) == {}
    history = st.metric_history(run)
    assert st.metric_counts(run) == {key: len(points) for key, points in history.items()}
