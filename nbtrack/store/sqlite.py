"""The SQLite store: runs, metrics, deduplicated blobs and content-addressed artifacts.

One :class:`Store` per process and folder is enough; it is safe to share between threads
(a lock serialises use of its connection) and between processes (SQLite WAL mode, a busy
timeout, and ``BEGIN IMMEDIATE`` around every write that must be atomic).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nbtrack import config
from nbtrack.errors import (
    AmbiguousRunError,
    ArtifactError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreReadOnlyError,
    StoreSchemaError,
    UnknownRunError,
)
from nbtrack.store.artifact_store import (
    ArtifactEntry,
    ArtifactLocation,
    LocalArtifacts,
    artifact_location,
    content_hash,
    file_hash,
)
from nbtrack.store.registry_tables import RegistryTables
from nbtrack.store.schema import MIGRATIONS, SCHEMA_VERSION

#: Columns of ``runs`` that hold JSON text, with the value used when they are empty.
JSON_COLUMNS: dict[str, Any] = {
    "tags": [],
    "params": {},
    "metrics": {},
    "seeds": [],
    "git": {},
    "inputs": [],
    "models": [],
    "history": [],
    "warnings": [],
    "extra": {},
    "goals": {},
    "error": None,
}
RUN_COLUMNS = (
    "id",
    "number",
    "name",
    "status",
    "kind",
    "start_time",
    "end_time",
    "heartbeat",
    "pid",
    "hostname",
    "notebook",
    "note",
    "tags",
    "params",
    "metrics",
    "seed",
    "deterministic",
    "seeds",
    "rng_hash",
    "env_hash",
    "git",
    "inputs",
    "models",
    "code_hash",
    "history",
    "error",
    "warnings",
    "extra",
    "goals",
    "user_name",
    "project",
)
#: A running run whose heartbeat is older than this (seconds), on another host, is crashed.
STALE_AFTER = 600.0


def dumps(value: Any) -> str:
    """JSON for the store; objects JSON can't hold are stored as their ``str``."""
    return json.dumps(value, default=str, separators=(",", ":"))


@contextlib.contextmanager
def translate_sqlite_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's errors into nbtrack's, each with a line that says what to do."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise StoreLockedError(
                f"the store at {path} is locked by another process beyond the busy timeout "
                f"({config.busy_timeout():g}s); retry, or raise {config.ENV_BUSY_TIMEOUT}"
            ) from exc
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            raise StoreReadOnlyError(
                f"cannot write the store at {path} ({text}); make the folder writable or point "
                f"{config.ENV_STORE} / `%nbtrack store PATH` at a writable folder"
            ) from exc
        if "no such table" in text or "no such column" in text:
            raise StoreCorruptError(
                f"the store at {path} is missing part of its schema ({text}); "
                "move it aside and start a new store"
            ) from exc
        raise StoreError(f"store error at {path}: {text}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreCorruptError(
            f"{path} is not a readable nbtrack store ({exc}); nothing was changed; "
            "move the file aside or point to another store"
        ) from exc


class Store(RegistryTables):
    """An nbtrack store in a folder: ``nbtrack.db`` plus ``artifacts/``.

    ``Store(path)`` opens (and, with ``create=True``, creates) the store in folder ``path``.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path).expanduser().absolute()
        self.db_path = self.path / config.DB_FILENAME
        self.artifacts_path = self.path / config.ARTIFACTS_DIRNAME
        self._lock = threading.RLock()
        self._known_blobs: set[str] = set()
        self._text_hashes: dict[int, tuple[str, str]] = {}
        self._gc_generation = 0
        if not self.db_path.exists():
            if not create:
                raise StoreError(
                    f"no nbtrack store at {self.path}; run a tracked cell first, or pass the "
                    f"store's folder with --store / {config.ENV_STORE}"
                )
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreReadOnlyError(
                    f"cannot create the store folder {self.path} ({exc.strerror}); point "
                    f"{config.ENV_STORE} or `%nbtrack store PATH` at a writable folder"
                ) from exc
        with translate_sqlite_errors(self.db_path):
            self._conn = sqlite3.connect(
                str(self.db_path),
                timeout=config.busy_timeout(),
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                self._setup()
            except BaseException:
                self._conn.close()
                raise
        self._inode = os.stat(self.db_path).st_ino
        self._mark_crashed_on_open()

    # -- set-up -------------------------------------------------------------------------
    def _setup(self) -> None:
        conn = self._conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreSchemaError(
                f"the store at {self.path} has schema version {version}, newer than this "
                f"nbtrack understands ({SCHEMA_VERSION}); upgrade nbtrack to read it"
            )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            pass  # a read-only folder cannot switch modes; reads still work
        conn.execute("PRAGMA synchronous=NORMAL")
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        with self.transaction() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for target in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's write lock from its first statement."""
        with self._lock, translate_sqlite_errors(self.db_path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, translate_sqlite_errors(self.db_path):
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the connection; the store can be reopened any time."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def location(self) -> str:
        """This store as ``NBTRACK_STORE`` names it, so a child process (an exported script
        being verified, a sweep worker) opens the same store. A database's is its URL with
        the password: pass it on, never show it."""
        return str(self.path)

    @property
    def shown(self) -> str:
        """How messages name this store: a folder by its path, a database by its URL with
        the password redacted (:class:`~nbtrack.store.postgres.PostgresStore`)."""
        return str(self.path)

    def is_current(self) -> bool:
        """Whether our connection still points at the file at :attr:`db_path`."""
        try:
            return os.stat(self.db_path).st_ino == self._inode
        except OSError:
            return False

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    # -- runs ---------------------------------------------------------------------------
    def create_run(self, run_id: str, fields: dict[str, Any]) -> int:
        """Insert a new run and return its per-store number."""
        row = {
            "id": run_id,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "heartbeat": time.time(),
            **fields,
        }
        if row.get("user_name") is None:  # nobody named: the login name
            from nbtrack.identity import current_user

            row["user_name"] = current_user()
        columns, values = self._encode(row)
        placeholders = ",".join("?" * len(columns))
        with self.transaction() as conn:
            number = (
                1
                + conn.execute(
                    "SELECT MAX(COALESCE((SELECT MAX(number) FROM runs), 0),"
                    " COALESCE((SELECT value FROM meta WHERE key='last_number'), 0))"
                ).fetchone()[0]
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_number', ?)", (number,)
            )
            conn.execute(
                f"INSERT INTO runs (number, {','.join(columns)}) VALUES (?, {placeholders})",
                (number, *values),
            )
        return int(number)

    def update_run(self, run_id: str, fields: dict[str, Any]) -> None:
        """Set some columns of one run."""
        if not fields:
            return
        columns, values = self._encode(fields)
        assignments = ",".join(f"{c}=?" for c in columns)
        with self.transaction() as conn:
            conn.execute(f"UPDATE runs SET {assignments} WHERE id=?", (*values, run_id))

    @staticmethod
    def _encode(fields: dict[str, Any]) -> tuple[list[str], list[Any]]:
        columns, values = [], []
        for key, value in fields.items():
            if key not in RUN_COLUMNS:
                raise ValueError(f"unknown run column {key!r}")
            if key in JSON_COLUMNS:
                value = None if value is None and key == "error" else dumps(value)
            columns.append(key)
            values.append(value)
        return columns, values

    def run_row(self, run_id: str) -> dict[str, Any]:
        """One run as a dict of its columns, JSON columns decoded."""
        rows = self._query(f"SELECT {','.join(RUN_COLUMNS)} FROM runs WHERE id=?", (run_id,))
        if not rows:
            raise UnknownRunError(run_id, self.shown)
        return decode_row(rows[0])

    def resolve(self, ref: object) -> str:
        """The id of the run ``ref`` names: a number, ``#number``, an id (prefix) or 'last'."""
        text = str(ref).strip()
        if text in ("last", "latest", "-1"):
            rows = self._query("SELECT id FROM runs ORDER BY number DESC LIMIT 1")
            if not rows:
                raise UnknownRunError(ref, self.shown)
            return str(rows[0][0])
        digits = text[1:] if text.startswith("#") else text
        # isascii: str.isdigit() is also true of '¹' and '٣', which int() refuses.
        if digits.isascii() and digits.isdigit() and len(digits) < 12:
            rows = self._query("SELECT id FROM runs WHERE number=?", (int(digits),))
            if rows:
                return str(rows[0][0])
        if len(text) >= 4 and all(c in "0123456789abcdef" for c in text.lower()):
            rows = self._query("SELECT id FROM runs WHERE id LIKE ? LIMIT 3", (text.lower() + "%",))
            if len(rows) == 1:
                return str(rows[0][0])
            if len(rows) > 1:
                raise AmbiguousRunError(text, len(rows))
        raise UnknownRunError(ref, self.shown)

    def list_runs(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        columns: Sequence[str] = RUN_COLUMNS,
        notebook: str | None = None,
        user: str | None = None,
        project: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows of runs, oldest first, filtered; ``name`` may be a glob (``digits/*``);
        ``user``: only that user's runs; ``project``: only that project's."""
        where, args = [], []
        if user is not None:
            where.append("user_name = ?")
            args.append(user)
        if project is not None:
            where.append("project = ?")
            args.append(project)
        if name is not None:
            if any(ch in name for ch in "*?["):
                where.append("name GLOB ?")
            else:
                where.append("name = ?")
            args.append(name)
        if status is not None:
            where.append("status = ?")
            args.append(str(status))
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE value = ?)")
            args.append(tag)
        if notebook is not None:
            where.append("notebook = ?")
            args.append(notebook)
        sql = f"SELECT {','.join(columns)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._query(sql + " ORDER BY number", args)

    def count_runs(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM runs")[0][0])

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Delete runs with their metrics and artifact records; ``gc`` frees the files."""
        ids = list(run_ids)
        with self.transaction() as conn:
            for run_id in ids:
                conn.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
                conn.execute("DELETE FROM artifacts WHERE run_id=?", (run_id,))
                conn.execute("DELETE FROM runs WHERE id=?", (run_id,))
        return len(ids)

    def _mark_crashed_on_open(self) -> None:
        # docs/reliability.md promises that a run whose process died (SIGKILL, OOM killer,
        # a kernel restart) reads as crashed the next time any nbtrack process opens the
        # store, not only when someone lists runs.
        with contextlib.suppress(StoreError):
            self.mark_crashed()  # a read-only or busy store: the next reader marks them

    def mark_crashed(self) -> int:
        """Mark runs left 'running' by a process that no longer exists as 'crashed'."""
        host = socket.gethostname()
        rows = self._query(
            "SELECT id, pid, hostname, heartbeat, start_time FROM runs WHERE status='running'"
        )
        dead = []
        now = time.time()
        for run_id, pid, hostname, heartbeat, start_time in rows:
            if hostname == host and pid:
                if not _run_process_alive(int(pid), start_time):
                    dead.append(run_id)
            elif heartbeat is not None and now - float(heartbeat) > STALE_AFTER:
                dead.append(run_id)
        if dead:
            error = dumps(
                {
                    "type": "Crashed",
                    "message": "the process running this run died before the run finished",
                    "traceback": "",
                }
            )
            with self.transaction() as conn:
                for run_id in dead:
                    conn.execute(
                        "UPDATE runs SET status='crashed', error=?, "
                        "end_time=COALESCE(end_time, heartbeat) WHERE id=? AND status='running'",
                        (error, run_id),
                    )
        return len(dead)

    # -- metrics ------------------------------------------------------------------------
    def append_metrics(
        self,
        run_id: str,
        points: Sequence[tuple[str, int, float, float]],
        latest: dict[str, float] | None = None,
    ) -> None:
        """Append metric points ``(key, step, value, timestamp)`` and each metric's last value."""
        with self.transaction() as conn:
            if points:
                conn.executemany(
                    "INSERT INTO metrics (run_id, key, step, value, ts) VALUES (?,?,?,?,?)",
                    [(run_id, k, s, v, t) for k, s, v, t in points],
                )
            if latest is not None:
                conn.execute(
                    "UPDATE runs SET metrics=?, heartbeat=? WHERE id=?",
                    (dumps(latest), time.time(), run_id),
                )

    def metric_history(self, run_id: str) -> dict[str, list[tuple[int, float, float]]]:
        """Every logged point of every metric of a run: ``key -> [(step, value, ts)]``."""
        history: dict[str, list[tuple[int, float, float]]] = {}
        for key, step, value, ts in self._query(
            "SELECT key, step, value, ts FROM metrics WHERE run_id=? ORDER BY rowid", (run_id,)
        ):
            history.setdefault(key, []).append((step, float("nan") if value is None else value, ts))
        return history

    def metric_points(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one metric of a run, in logging order (for charts)."""
        return [
            (int(step), float("nan") if value is None else float(value))
            for step, value in self._query(
                "SELECT step, value FROM metrics WHERE run_id=? AND key=? ORDER BY rowid",
                (run_id, key),
            )
        ]

    def metric_counts(self, run_id: str) -> dict[str, int]:
        """``key -> number of points`` of a run's metrics, counted by the database in one
        query (the ``(run_id, key)`` index serves it): what a resumed writer asks to know
        how far the store got, without reading every point back."""
        return {
            str(key): int(count)
            for key, count in self._query(
                "SELECT key, COUNT(*) FROM metrics WHERE run_id=? GROUP BY key", (run_id,)
            )
        }

    # -- blobs (environment snapshots, code, RNG states) ---------------------------------
    def check_blob_cache(self) -> None:
        """Forget which blobs we know exist if any process ran ``gc`` since we last looked."""
        rows = self._query("SELECT value FROM meta WHERE key='gc_generation'")
        generation = int(rows[0][0]) if rows else 0
        if generation != self._gc_generation:
            self._known_blobs.clear()
            self._text_hashes.clear()
            self._gc_generation = generation

    def put_blob(self, kind: str, data: bytes) -> str:
        """Store ``data`` once under its content hash and return the hash."""
        digest = content_hash(data)
        if digest in self._known_blobs:
            return digest
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO blobs (hash, kind, data, created) VALUES (?,?,?,?)",
                (digest, kind, zlib.compress(data, 1), time.time()),
            )
        self._known_blobs.add(digest)
        return digest

    def put_blobs(self, kind: str, items: Iterable[bytes]) -> list[str]:
        """Store many blobs in one transaction; returns their hashes in order."""
        hashes, new = [], []
        for data in items:
            digest = content_hash(data)
            hashes.append(digest)
            if digest not in self._known_blobs:
                new.append((digest, kind, zlib.compress(data, 1), time.time()))
        if new:
            with self.transaction() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO blobs (hash, kind, data, created) VALUES (?,?,?,?)", new
                )
            self._known_blobs.update(item[0] for item in new)
        return hashes

    def put_texts(self, kind: str, texts: Sequence[str]) -> list[str]:
        """Store texts as blobs (like :meth:`put_blobs`), remembering the str objects seen.

        A kernel's history is the same str objects from one run to the next, so a run
        after 1,000 cells hashes only the cells added since the previous run.
        """
        memo = self._text_hashes
        hashes: list[str | None] = []
        missing: list[int] = []
        for index, text in enumerate(texts):
            hit = memo.get(id(text))
            if hit is not None and hit[0] is text:
                hashes.append(hit[1])
            else:
                hashes.append(None)
                missing.append(index)
        if missing:
            fresh = self.put_blobs(kind, [texts[i].encode("utf-8") for i in missing])
            for index, digest in zip(missing, fresh):
                hashes[index] = digest
                memo[id(texts[index])] = (texts[index], digest)  # the ref keeps the id unique
        return [h for h in hashes if h is not None]

    def get_blob(self, digest: str) -> bytes | None:
        rows = self._query("SELECT data FROM blobs WHERE hash=?", (digest,))
        return zlib.decompress(rows[0][0]) if rows else None

    def get_blobs(self, digests: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for digest, data in self._query(
                f"SELECT hash, data FROM blobs WHERE hash IN ({marks})", chunk
            ):
                out[digest] = zlib.decompress(data)
        return out

    # -- sweeps (nbtrack/sweeps/) ----------------------------------------------------------
    def create_sweep(self, sweep_id: str, fields: dict[str, Any]) -> int:
        """Insert a new sweep and return its per-store number (its own sequence)."""
        row = {"id": sweep_id, "pid": os.getpid(), "hostname": socket.gethostname(), **fields}
        columns, values = _encode_sweep(row)
        with self.transaction() as conn:
            number = 1 + conn.execute("SELECT COALESCE(MAX(number), 0) FROM sweeps").fetchone()[0]
            conn.execute(
                f"INSERT INTO sweeps (number, {','.join(columns)}) "
                f"VALUES (?, {','.join('?' * len(columns))})",
                (number, *values),
            )
        return int(number)

    def update_sweep(self, sweep_id: str, fields: dict[str, Any]) -> None:
        """Set some columns of one sweep."""
        if not fields:
            return
        columns, values = _encode_sweep(fields)
        assignments = ",".join(f"{c}=?" for c in columns)
        with self.transaction() as conn:
            conn.execute(f"UPDATE sweeps SET {assignments} WHERE id=?", (*values, sweep_id))

    def sweep_row(self, sweep_id: str) -> dict[str, Any]:
        """One sweep as a dict of its columns, JSON columns decoded."""
        from nbtrack.errors import UnknownSweepError

        rows = self._query(f"SELECT {','.join(SWEEP_COLUMNS)} FROM sweeps WHERE id=?", (sweep_id,))
        if not rows:
            raise UnknownSweepError(sweep_id, self.shown)
        return _decode_sweep(rows[0])

    def resolve_sweep(self, ref: object) -> str:
        """The id of the sweep ``ref`` names: a number, ``#number``, an id (prefix) or 'last'."""
        from nbtrack.errors import UnknownSweepError

        text = str(ref).strip()
        if text in ("last", "latest", "-1"):
            rows = self._query("SELECT id FROM sweeps ORDER BY number DESC LIMIT 1")
        else:
            digits = text[1:] if text.startswith("#") else text
            rows = []
            if digits.isascii() and digits.isdigit() and len(digits) < 12:  # not '¹'
                rows = self._query("SELECT id FROM sweeps WHERE number=?", (int(digits),))
            if not rows and len(text) >= 4 and all(c in "0123456789abcdef" for c in text.lower()):
                rows = self._query(
                    "SELECT id FROM sweeps WHERE id LIKE ? LIMIT 3", (text.lower() + "%",)
                )
                if len(rows) > 1:
                    raise AmbiguousRunError(text, len(rows))
        if not rows:
            raise UnknownSweepError(ref, self.shown)
        return str(rows[0][0])

    def list_sweeps(self, *, name: str | None = None) -> list[dict[str, Any]]:
        """Every sweep (``name``: only those of that name, a glob works), oldest first."""
        sql, args = f"SELECT {','.join(SWEEP_COLUMNS)} FROM sweeps", []
        if name is not None:
            sql += " WHERE name GLOB ?" if any(ch in name for ch in "*?[") else " WHERE name = ?"
            args.append(name)
        return [_decode_sweep(row) for row in self._query(sql + " ORDER BY number", args)]

    def claim_sweep_trial(self, sweep_id: str, trial: int) -> None:
        """Record that this process (pid, host) runs trial ``trial`` of a sweep."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sweep_trials (sweep_id, trial, run_id, state, pid, "
                "hostname) VALUES (?,?,NULL,'claimed',?,?)",
                (sweep_id, int(trial), os.getpid(), socket.gethostname()),
            )

    def set_sweep_trial(
        self,
        sweep_id: str,
        trial: int,
        run_id: str | None,
        state: str,
        value: float | None = None,
    ) -> None:
        """Record (or update) the run of trial ``trial`` of a sweep and how it stands."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO sweep_trials (sweep_id, trial, run_id, state, value) "
                "VALUES (?,?,?,?,?) ON CONFLICT(sweep_id, trial) DO UPDATE SET "
                "run_id=COALESCE(excluded.run_id, run_id), state=excluded.state, "
                "value=excluded.value",
                (sweep_id, int(trial), run_id, state, value),
            )

    def sweep_trials(self, sweep_id: str) -> list[dict[str, Any]]:
        """Each recorded trial of a sweep, in order: ``trial``, ``run_id``, ``state``,
        ``value``, ``pid`` and ``hostname`` (of the process that claimed it)."""
        keys = ("trial", "run_id", "state", "value", "pid", "hostname")
        return [
            dict(zip(keys, row))
            for row in self._query(
                f"SELECT {','.join(keys)} FROM sweep_trials WHERE sweep_id=? ORDER BY trial",
                (sweep_id,),
            )
        ]

    # -- artifacts ----------------------------------------------------------------------
    # Content lives behind one ArtifactLocation (nbtrack/store/artifact_store.py): the
    # store's ``artifacts/`` folder, or an fsspec URL such as s3://bucket/prefix. Content is
    # written under a temporary name and reaches its content name only when whole, so a
    # process killed mid-write never leaves a partial object under a content name. A row is
    # added only once its content is stored, in a transaction that checks the content is
    # still there; ``gc`` deletes only inside a transaction that re-reads which content rows
    # refer to. So no row ever points at content ``gc`` removed. Loading checks the content
    # against its hash, which catches what atomic writes cannot: damage after the fact.
    @property
    def artifact_location(self) -> ArtifactLocation:
        """Where this store's artifact content lives: ``$NBTRACK_ARTIFACTS`` or the project's
        ``[store] artifacts`` as they are now, else the store's ``artifacts/`` folder."""
        return artifact_location(self.artifacts_path)

    def artifact_file(self, digest: str) -> Path:
        """A local file holding the content with hash ``digest`` (unchecked): the file in
        the store's folder, or a fresh download when artifacts live in object storage."""
        location = self.artifact_location
        if isinstance(location, LocalArtifacts):
            return location.path(digest)
        return location.local_file(digest)

    def put_artifact_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes by content; returns ``(hash, size)``."""
        digest = content_hash(data)
        if not self.artifact_location.present(digest, len(data)):
            self.artifact_location.put_bytes(digest, data)
        return digest, len(data)

    def put_artifact_file(self, source: Path) -> tuple[str, int]:
        """Copy a file into the store by content; returns ``(hash, size)``."""
        try:
            digest, size = file_hash(source)
        except OSError as exc:
            raise ArtifactError(f"cannot read {source} to store it: {exc}") from exc
        if not self.artifact_location.present(digest, size):
            self.artifact_location.put_file(digest, source)
        return digest, size

    def checked_artifact_file(self, digest: str) -> Path:
        """A local file holding content ``digest``, after checking its bytes hash to it.

        Raises :class:`~nbtrack.errors.ArtifactError` (one line) when the content is
        missing or damaged; damaged content is never handed out as valid.
        """
        path = self.artifact_location.local_file(digest)
        try:
            actual, _ = file_hash(path)
        except OSError as exc:
            raise ArtifactError(f"cannot read artifact content {path}: {exc}") from exc
        if actual != digest:
            raise self._damaged(digest)
        return path

    def read_artifact(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, checked against it (see :meth:`checked_artifact_file`)."""
        data = self.artifact_location.read(digest)
        if content_hash(data) != digest:
            raise self._damaged(digest)
        return data

    def _damaged(self, digest: str) -> ArtifactError:
        return ArtifactError(
            f"artifact content {digest[:12]} in {self.artifact_location.description} is "
            "damaged: its bytes no longer match their hash (a write cut short by a power "
            "loss, a disk fault, or an object overwritten by hand); run `nbtrack gc --verify` "
            "to remove damaged copies, then save it again"
        )

    def add_artifact(
        self, run_id: str, name: str, kind: str, digest: str, size: int, meta: dict[str, Any]
    ) -> None:
        """Record that run ``run_id`` keeps content ``digest`` (already stored) as ``name``.

        Raises :class:`~nbtrack.errors.ArtifactError` and records nothing when the content
        vanished since it was stored (an ``nbtrack gc`` in another process at that moment).
        """
        needed = [digest]
        if kind == "dir":
            needed += list(meta.get("files", {}).values())
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO artifacts (run_id, name, kind, hash, size, meta, created)"
                " VALUES (?,?,?,?,?,?,?)",
                (run_id, name, kind, digest, size, dumps(meta), time.time()),
            )
            # gc deletes only while holding the write lock, as we do now: content that is
            # here now stays for as long as this row refers to it.
            missing = [d for d in needed if not self.artifact_location.present(d)]
            if missing:
                raise ArtifactError(
                    f"artifact {name!r} was not recorded: its content {missing[0][:12]} "
                    f"vanished from {self.artifact_location.description} while it was being "
                    "saved (an `nbtrack gc` at the same moment?); save it again"
                )

    def artifacts(self, run_id: str) -> list[tuple[str, str, str, int, dict[str, Any]]]:
        """``(name, kind, hash, size, meta)`` of each artifact of a run, oldest first."""
        return [
            (name, kind, digest, size, json.loads(meta))
            for name, kind, digest, size, meta in self._query(
                "SELECT name, kind, hash, size, meta FROM artifacts WHERE run_id=? "
                "ORDER BY created",
                (run_id,),
            )
        ]

    def _referenced_artifacts(self) -> set[str]:
        """Every content hash an artifact row refers to, folders' files included."""
        referenced = {h for (h,) in self._query("SELECT hash FROM artifacts")}
        for (meta,) in self._query("SELECT meta FROM artifacts WHERE kind='dir'"):
            referenced.update(json.loads(meta).get("files", {}).values())
        # A registered model version keeps its artifact even after its run is deleted.
        referenced.update(self.registry_artifact_hashes())
        return referenced

    def gc(
        self, grace: float = 60.0, *, verify: bool = False, shared: bool = False
    ) -> dict[str, int]:
        """Delete artifact files and blobs that no run refers to any more.

        Content younger than ``grace`` seconds is kept: another process may have just
        written it for a run whose row is not in the database yet. Leftovers of writes
        that were cut short (``.tmp-`` files) go too. With ``verify``, every content file
        is also checked against its hash and a damaged one is deleted (counted in
        ``"damaged"``): loading it would fail anyway, and saving the same content again
        then writes a good copy. A ``gc`` killed part-way leaves a consistent store.

        Content in a configured artifact location (``NBTRACK_ARTIFACTS`` or ``[store]
        artifacts``: a bucket, a share) is shared by every store pointed at it (the team
        database, each laptop's store, outboxes), and this store sees only its own runs:
        its unreferenced content is kept and counted in ``"shared_kept"``, unless
        ``shared`` says this store is the location's only user.
        """
        cutoff = time.time() - grace
        removed_files = freed = damaged = shared_kept = 0
        location = self.artifact_location
        keep_content = not shared and not isinstance(location, LocalArtifacts)
        candidates: list[ArtifactEntry] = []  # unreferenced content and temp leftovers
        entries = list(location.entries())
        if entries:
            referenced = self._referenced_artifacts()
            for entry in entries:
                if entry.digest is None or entry.digest not in referenced:
                    if keep_content and entry.digest is not None:
                        shared_kept += 1  # perhaps another store's: never ours to judge
                        continue
                    candidates.append(entry)
                elif verify and location.stored_hash(entry.digest) != entry.digest:
                    damaged += location.delete(entry)
        # Delete under the write lock, re-reading the references each batch: a run in
        # another process may have just recorded an artifact with this content.
        for start in range(0, len(candidates), 500):
            with self.transaction():
                referenced = self._referenced_artifacts()
                for entry in candidates[start : start + 500]:
                    if entry.digest is not None and entry.digest in referenced:
                        continue
                    # Kept when younger than the grace: possibly in flight elsewhere.
                    size = location.delete_if_older(entry, cutoff)
                    if size is not None:
                        freed += size
                        removed_files += 1
        used: set[str] = set()
        for env_hash, rng_hash, code_hash, history in self._query(
            "SELECT env_hash, rng_hash, code_hash, history FROM runs"
        ):
            used.update(h for h in (env_hash, rng_hash, code_hash) if h)
            used.update(entry[1] for entry in json.loads(history))
        removed_blobs = 0
        all_blobs = [
            h for (h,) in self._query("SELECT hash FROM blobs WHERE created <= ?", (cutoff,))
        ]
        orphans = [h for h in all_blobs if h not in used]
        if orphans:
            with self.transaction() as conn:
                conn.executemany("DELETE FROM blobs WHERE hash=?", [(h,) for h in orphans])
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('gc_generation', 1) "
                    "ON CONFLICT(key) DO UPDATE SET value = value + 1"
                )
            removed_blobs = len(orphans)
            self._known_blobs.clear()
            self._text_hashes.clear()
        return {
            "files": removed_files,
            "bytes": freed,
            "blobs": removed_blobs,
            "damaged": damaged,
            "shared_kept": shared_kept,
        }

    # -- secrets: `nbtrack scan --redact` (what is secret is nbtrack.secrets' rule) ---------
    def artifact_rows(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(run id, name, meta)`` of every artifact in the store."""
        return [
            (run_id, name, json.loads(meta))
            for run_id, name, meta in self._query("SELECT run_id, name, meta FROM artifacts")
        ]

    def redact_in_place(
        self,
        runs: Mapping[str, Mapping[str, Any]],
        blobs: Mapping[str, bytes],
        artifacts: Sequence[tuple[str, str, str, dict[str, Any]]] = (),
        sweeps: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Replace stored content that held secrets, all in one transaction, and leave no
        old copy in the file.

        ``runs``: run id -> the columns to set (as :meth:`update_run` takes them).
        ``blobs``: old blob hash -> its redacted content. Blobs are content-addressed, so
        the new content is written under its own hash, every run that referred to the old
        blob (code, history, environment) is repointed, and the old blob is deleted.
        ``artifacts``: ``(run id, name, new name, new meta)``. ``sweeps``: sweep id -> the
        columns to set (a sweep keeps its cell's code and history as text).

        Deleted and overwritten content is zeroed (SQLite's ``secure_delete``), then the
        file is rebuilt (``VACUUM``) and its write-ahead log truncated, so the old values
        do not linger in free pages. Returns counts and ``compacted`` (False when another
        process held the store, so the rebuild was skipped; the data is redacted anyway).
        """
        with self._lock, translate_sqlite_errors(self.db_path):
            self._conn.execute("PRAGMA secure_delete=ON")
        try:
            with self.transaction() as conn:
                moved = self._rewrite_redacted(conn, runs, blobs, artifacts, sweeps or {})
        finally:
            with self._lock, translate_sqlite_errors(self.db_path):
                self._conn.execute("PRAGMA secure_delete=OFF")
        self._known_blobs.clear()
        self._text_hashes.clear()
        return {
            "runs": len(runs),
            "blobs": len(moved),
            "artifacts": len(artifacts),
            "sweeps": len(sweeps or {}),
            "compacted": self.compact(),
        }

    def _rewrite_redacted(
        self,
        conn: Any,
        runs: Mapping[str, Mapping[str, Any]],
        blobs: Mapping[str, bytes],
        artifacts: Sequence[tuple[str, str, str, dict[str, Any]]],
        sweeps: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, str]:
        """The rows :meth:`redact_in_place` rewrites, inside the caller's transaction; both
        stores run this SQL (PostgreSQL through its ``pg_sql``). Returns old -> new blob hash
        of the blobs that moved."""
        moved: dict[str, str] = {}
        for old, data in blobs.items():
            row = conn.execute("SELECT kind FROM blobs WHERE hash=?", (old,)).fetchone()
            if row is None:
                continue
            new = content_hash(data)
            conn.execute(
                "INSERT OR IGNORE INTO blobs (hash, kind, data, created) VALUES (?,?,?,?)",
                (new, row[0], zlib.compress(data, 1), time.time()),
            )
            if new != old:
                moved[old] = new
        for old, new in moved.items():
            for column in ("code_hash", "env_hash", "rng_hash"):
                conn.execute(f"UPDATE runs SET {column}=? WHERE {column}=?", (new, old))
        if moved:
            for run_id, history in conn.execute("SELECT id, history FROM runs").fetchall():
                entries = json.loads(history)
                if any(entry[1] in moved for entry in entries):
                    entries = [[count, moved.get(h, h)] for count, h in entries]
                    conn.execute("UPDATE runs SET history=? WHERE id=?", (dumps(entries), run_id))
        for run_id, fields in runs.items():
            columns, values = self._encode(dict(fields))
            if columns:
                assignments = ",".join(f"{c}=?" for c in columns)
                conn.execute(f"UPDATE runs SET {assignments} WHERE id=?", (*values, run_id))
        for run_id, name, new_name, meta in artifacts:
            conn.execute(
                "UPDATE artifacts SET meta=? WHERE run_id=? AND name=?",
                (dumps(meta), run_id, name),
            )
            if new_name != name:
                # A name already taken by another artifact of the run keeps the old
                # one; the next scan reports it. (Not SQLite's UPDATE OR IGNORE: this
                # SQL is PostgreSQL's too.)
                conn.execute(
                    "UPDATE artifacts SET name=? WHERE run_id=? AND name=? AND NOT EXISTS "
                    "(SELECT 1 FROM artifacts WHERE run_id=? AND name=?)",
                    (new_name, run_id, name, run_id, new_name),
                )
        for sweep_id, fields in sweeps.items():
            columns, values = _encode_sweep(dict(fields))
            if columns:
                assignments = ",".join(f"{c}=?" for c in columns)
                conn.execute(f"UPDATE sweeps SET {assignments} WHERE id=?", (*values, sweep_id))
        used: set[str] = set()
        for hashes in conn.execute(
            "SELECT env_hash, rng_hash, code_hash, history FROM runs"
        ).fetchall():
            used.update(h for h in hashes[:3] if h)
            used.update(entry[1] for entry in json.loads(hashes[3]))
        stale = [(old,) for old in moved if old not in used]
        conn.executemany("DELETE FROM blobs WHERE hash=?", stale)
        # Other processes forget which blobs they know exist, as after gc.
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('gc_generation', 1) "
            "ON CONFLICT(key) DO UPDATE SET value = value + 1"
        )
        return moved

    def compact(self) -> bool:
        """Rebuild the file (``VACUUM``) and empty the write-ahead log, so content deleted
        earlier is gone from the disk too; False when another process holds the store."""
        with self._lock:
            try:
                self._conn.execute("VACUUM")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError:
                return False
        return True

    def integrity_check(self) -> str:
        """SQLite's own ``PRAGMA integrity_check``: ``"ok"``, or what is wrong."""
        rows = self._query("PRAGMA integrity_check")
        return "\n".join(str(r[0]) for r in rows)


#: Columns of ``sweeps``; those holding JSON text are :data:`SWEEP_JSON_COLUMNS`.
SWEEP_COLUMNS = (
    "id",
    "number",
    "name",
    "status",
    "start_time",
    "end_time",
    "pid",
    "hostname",
    "objective",
    "direction",
    "sampler",
    "pruner",
    "space",
    "n_trials",
    "seed",
    "study_name",
    "storage",
    "notebook",
    "code",
    "history",
    "extra",
)
SWEEP_JSON_COLUMNS: dict[str, Any] = {"space": [], "history": [], "extra": {}}


def _encode_sweep(fields: dict[str, Any]) -> tuple[list[str], list[Any]]:
    columns, values = [], []
    for key, value in fields.items():
        if key not in SWEEP_COLUMNS:
            raise ValueError(f"unknown sweep column {key!r}")
        columns.append(key)
        values.append(dumps(value) if key in SWEEP_JSON_COLUMNS else value)
    return columns, values


def _decode_sweep(row: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in zip(SWEEP_COLUMNS, row):
        if key in SWEEP_JSON_COLUMNS:
            value = json.loads(value) if value is not None else SWEEP_JSON_COLUMNS[key]
        out[key] = value
    return out


def decode_row(row: Sequence[Any], columns: Sequence[str] = RUN_COLUMNS) -> dict[str, Any]:
    """A ``runs`` row as a dict, its JSON columns decoded."""
    out: dict[str, Any] = {}
    for key, value in zip(columns, row):
        if key in JSON_COLUMNS:
            value = json.loads(value) if value is not None else JSON_COLUMNS[key]
        out[key] = value
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _run_process_alive(pid: int, run_start: float | None) -> bool:
    """Whether the process that started a run at ``run_start`` still runs as ``pid``.

    A live ``pid`` is not enough: after a container or machine restart, pids start again
    from small numbers and a dead kernel's pid soon belongs to some other process. A process
    that started after the run did cannot be the run's own.
    """
    if not _pid_alive(pid):
        return False
    started = _process_start_time(pid)
    if started is None or run_start is None:
        return True  # no /proc (macOS, Windows): trust the pid
    # /proc/stat's boot time has whole-second resolution; allow for it and clock slew.
    return started <= float(run_start) + 2.0


_boot_time: float | None = None


def _process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (Unix time), from Linux's /proc; ``None`` elsewhere."""
    global _boot_time
    try:
        boot = _boot_time
        if boot is None:
            with open("/proc/stat", encoding="ascii") as fh:
                boot = next(float(line.split()[1]) for line in fh if line.startswith("btime "))
            _boot_time = boot
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            # The command name (field 2) may hold spaces and parentheses: split after it.
            fields = fh.read().rsplit(")", 1)[1].split()
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
