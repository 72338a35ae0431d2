"""``nbtrack scan --redact`` on a PostgreSQL store (the session's real server,
tests/pg_server.py): secrets planted the way an old nbtrack wrote them (a run's params,
note, code and history blobs, a sweep's code) are gone from every table and, after the
``VACUUM FULL``, from the database's files on disk; the redaction is in the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import psycopg
import pytest

import nbtrack
from nbtrack.model import HistoryEntry
from nbtrack.secrets import REDACTED
from nbtrack.store.postgres import PostgresStore
from nbtrack.store.sqlite import content_hash
from nbtrack.tracker import RunSpec, start_run

REPO = Path(__file__).resolve().parents[1]
OPENAI = "sk-" + "Qw3rTy7uIo9pAs1dFg5hJk"
PASSWORD = "hunter2-pg-Zq8"
HF = "hf_" + "ZyXwVuTsRqPoNmLkJiHgFe"
SECRETS = (OPENAI, PASSWORD, HF)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NBTRACK_STORE"}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    return subprocess.run(
        [sys.executable, "-m", "nbtrack", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _blob(conn: psycopg.Connection[Any], kind: str, data: bytes) -> str:
    digest = content_hash(data)
    conn.execute(
        "INSERT INTO blobs (hash, kind, data, created) VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
        (digest, kind, zlib.compress(data), time.time()),
    )
    return digest


def _everything(url: str) -> bytes:
    """Every row of every table of the database, blobs decompressed."""
    out = b""
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        for table in tables:
            out += repr(conn.execute(f'SELECT * FROM "{table}"').fetchall()).encode()
        for (data,) in conn.execute("SELECT data FROM blobs").fetchall():
            out += zlib.decompress(data)
    return out


def _database_files(pg_server: Any, url: str) -> bytes:
    """The bytes of the database's files on disk (after a checkpoint wrote them out)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        oid = conn.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert oid is not None
    folder = pg_server.data / "base" / str(oid[0])
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


@pytest.fixture
def old_pg_store(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Two runs sharing a history cell and a registered model, then secrets written in."""
    monkeypatch.setenv("NBTRACK_ARTIFACTS", str(tmp_path / "artifacts"))
    store = PostgresStore(pg_url)
    ids = []
    try:
        for lr in (0.1, 0.2):
            run = start_run(
                RunSpec(
                    name="chat",
                    source=f"lr = {lr}\n",
                    code=f"lr = {lr}\n",
                    capture_env=False,
                    history=[HistoryEntry(1, "import os\n"), HistoryEntry(2, f"lr = {lr}\n")],
                    cwd=str(tmp_path),
                ),
                store=store,
            )
            run.log(acc=lr)
            run.finish()
            ids.append(run.id)
        with nbtrack.run(name="clf", store=store, capture_env=False) as track:
            track.log(acc=0.9)
            track.artifact(b"model-bytes", "model")
        nbtrack.register(3, "clf", artifact="model", store=store)  # starts the audit trail
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:
        shared = _blob(conn, "code", f'OPENAI_API_KEY = "{OPENAI}"\nmodel = "gpt"\n'.encode())
        code = _blob(conn, "code", f'password = "{PASSWORD}"\nlr = 0.1\n'.encode())
        for run_id in ids:
            conn.execute(
                "UPDATE runs SET code_hash=%s, history=%s WHERE id=%s",
                (code, json.dumps([[1, shared], [2, code]]), run_id),
            )
        conn.execute(
            "UPDATE runs SET params=%s, note=%s WHERE id=%s",
            (json.dumps({"password": PASSWORD, "lr": 0.1}), f"token {HF}", ids[0]),
        )
        # An artifact named with a token (renamed) and one whose metadata holds one.
        conn.execute(
            "INSERT INTO artifacts (run_id, name, kind, hash, size, meta, created) VALUES"
            " (%s, %s, 'file', %s, 1, %s, 1.0), (%s, 'weights', 'file', %s, 1, %s, 1.0)",
            (
                ids[1],
                f"dump-{OPENAI}",
                "0" * 32,
                "{}",
                ids[1],
                "1" * 32,
                json.dumps({"source": f"/d/{HF}/w.pt"}),
            ),
        )
        conn.execute(
            "INSERT INTO sweeps (id, number, name, status, start_time, objective, direction,"
            " sampler, pruner, n_trials, study_name, storage, code, history, extra)"
            " VALUES ('s1', 1, 'tune', 'finished', 1.0, 'acc', 'max', 'tpe', 'none', 2,"
            " 'study', 'j.log', %s, '[]', '{}')",
            (f"hf_token = '{HF}'\n",),
        )
    return pg_url


def test_scan_redact_on_postgresql_leaves_no_copy_in_tables_or_files(
    old_pg_store: str, pg_server: Any, tmp_path: Path
) -> None:
    url = old_pg_store
    assert PASSWORD.encode() in _everything(url)
    assert PASSWORD.encode() in _database_files(pg_server, url)  # the check below can fail

    found = _cli("scan", "--store", url, cwd=tmp_path)
    assert found.returncode == 1, found.stderr
    redacted = _cli("scan", "--redact", "--store", url, cwd=tmp_path)
    assert redacted.returncode == 0, redacted.stderr
    out = redacted.stdout
    assert "redacted" in out and "in 2 run(s) and 1 sweep(s)" in out
    # It says what the database may still hold, which nbtrack cannot reach.
    assert "note: the database's write-ahead log" in out and "backups" in out

    again = _cli("scan", "--store", url, cwd=tmp_path)
    assert again.returncode == 0, again.stdout
    everything = _everything(url)
    files = _database_files(pg_server, url)
    for secret in SECRETS:
        assert secret.encode() not in everything, secret[:4]
        assert secret.encode() not in files, secret[:4]  # VACUUM FULL rewrote the tables

    store = PostgresStore(url, create=False)
    try:
        first, second = nbtrack.get_run(1, store=store), nbtrack.get_run(2, store=store)
        assert first.params == {"password": REDACTED, "lr": 0.1}
        assert first.note == f"token {REDACTED}" and first.metrics == {"acc": 0.1}
        assert first.code == f"password = {REDACTED!r}\nlr = 0.1\n"
        assert second.history[0].source == f'OPENAI_API_KEY = {REDACTED!r}\nmodel = "gpt"\n'
        assert store.sweep_row("s1")["code"] == f"hf_token = {REDACTED!r}\n"
        artifacts = {a.name: a.meta for a in second.artifacts}
        assert artifacts == {f"dump-{REDACTED}": {}, "weights": {"source": f"/d/{REDACTED}/w.pt"}}
        from nbtrack.registry.api import registry

        reader = registry(store)
        last = reader.audit()[-1]
        assert str(last.event) == "secrets-redacted"
        assert any(r["field"] == "params.password" for r in last.data["redacted"])
        assert not any(secret in json.dumps(last.data) for secret in SECRETS)
        assert reader.verify_audit().ok
    finally:
        store.close()


def test_a_role_that_does_not_own_the_tables_redacts_and_is_told_what_remains(
    old_pg_store: str, pg_server: Any, tmp_path: Path
) -> None:
    url = old_pg_store
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "DO $$ BEGIN CREATE ROLE scan_ana LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO scan_ana")
    as_ana = url.replace(f"://{pg_server.user}@", "://scan_ana@")
    redacted = _cli("scan", "--redact", "--store", as_ana, cwd=tmp_path)
    assert redacted.returncode == 0, redacted.stderr
    note = [line for line in redacted.stdout.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "VACUUM FULL was not possible on runs, blobs" in note[0]
    assert "as the owner" in note[0] and "write-ahead log" in note[0]
    # The rows are redacted all the same.
    assert PASSWORD.encode() not in _everything(url)
