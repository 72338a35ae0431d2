"""The PostgreSQL store: a team's runs, metrics, blobs, sweeps and registry in one database.

``NBTRACK_STORE=postgresql://user@host/db`` (or ``%nbtrack store postgresql://…``) opens
:class:`PostgresStore` instead of the SQLite :class:`~nbtrack.store.sqlite.Store`; both keep
:class:`~nbtrack.store.base.TrackingStore`. It is the SQLite store's subclass on purpose:
every rule that is not SQL (what a run row holds, how blobs are deduplicated and cached,
where artifact content lives and how it is checked) stays in one place, and this module
only says how PostgreSQL differs:

- the schema (:data:`PG_MIGRATIONS`, same version numbers and meaning as
  :data:`nbtrack.store.schema.MIGRATIONS`), its version in ``meta``'s ``schema_version``;
- locking: SQLite's ``BEGIN IMMEDIATE`` serialises every writer; here writers run
  concurrently (metric ingest from many processes), and only what must be atomic takes a
  transaction-scoped advisory lock: numbering runs and sweeps, migrations, and the
  registry's check-then-write (so exactly one of two racing promotions wins);
- SQL spelling: the shared SQL (registry reads and writes) is written with ``?``
  placeholders; :func:`pg_sql` rewrites it once per statement text.

Artifacts stay in a local folder for now (``NBTRACK_ARTIFACTS`` when it names one,
otherwise a folder per database under the user's cache). The connection URL's password
is never shown: :attr:`PostgresStore.url` is redacted with :mod:`nbtrack.secrets`' rule.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import os
import re
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import config
from nbtrack.errors import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
    StoreUnreachableError,
)
from nbtrack.secrets import redact_text
from nbtrack.store.schema import SCHEMA_VERSION
from nbtrack.store.sqlite import RUN_COLUMNS, Store, dumps

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "PG_MIGRATIONS",
    "PostgresStore",
    "is_postgres_url",
    "open_pg_store",
    "open_store",
    "pg_sql",
    "postgres_url",
]

# Advisory lock keys (transaction-scoped): one per thing that must be serialised.
_LOCK_MIGRATE = 0x6E62_0001
_LOCK_RUN_NUMBER = 0x6E62_0002
_LOCK_SWEEP_NUMBER = 0x6E62_0003
_LOCK_REGISTRY = 0x6E62_0004

#: The schema, step by step, with the same version numbers as SQLite's. Differences that
#: are not spelling: ``rowid`` columns where the shared code orders by insertion (SQLite has
#: one implicitly), and triggers as PL/pgSQL functions.
PG_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """
        CREATE TABLE IF NOT EXISTS runs (
            id            TEXT PRIMARY KEY,
            number        BIGINT NOT NULL UNIQUE,
            name          TEXT,
            status        TEXT NOT NULL,
            kind          TEXT NOT NULL DEFAULT 'cell',
            start_time    DOUBLE PRECISION NOT NULL,
            end_time      DOUBLE PRECISION,
            heartbeat     DOUBLE PRECISION,
            pid           BIGINT,
            hostname      TEXT,
            notebook      TEXT,
            note          TEXT,
            tags          TEXT NOT NULL DEFAULT '[]',
            params        TEXT NOT NULL DEFAULT '{}',
            metrics       TEXT NOT NULL DEFAULT '{}',
            seed          BIGINT,
            deterministic BIGINT NOT NULL DEFAULT 0,
            seeds         TEXT NOT NULL DEFAULT '[]',
            rng_hash      TEXT,
            env_hash      TEXT,
            git           TEXT NOT NULL DEFAULT '{}',
            inputs        TEXT NOT NULL DEFAULT '[]',
            models        TEXT NOT NULL DEFAULT '[]',
            code_hash     TEXT,
            history       TEXT NOT NULL DEFAULT '[]',
            error         TEXT,
            warnings      TEXT NOT NULL DEFAULT '[]',
            extra         TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX IF NOT EXISTS runs_name ON runs(name)",
        "CREATE INDEX IF NOT EXISTS runs_status ON runs(status)",
        """
        CREATE TABLE IF NOT EXISTS blobs (
            hash    TEXT PRIMARY KEY,
            kind    TEXT NOT NULL,
            data    BYTEA NOT NULL,
            created DOUBLE PRECISION NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS metrics (
            rowid  BIGSERIAL,
            run_id TEXT NOT NULL,
            key    TEXT NOT NULL,
            step   BIGINT NOT NULL,
            value  DOUBLE PRECISION,
            ts     DOUBLE PRECISION NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS metrics_run_key ON metrics(run_id, key, step)",
        """
        CREATE TABLE IF NOT EXISTS artifacts (
            run_id  TEXT NOT NULL,
            name    TEXT NOT NULL,
            kind    TEXT NOT NULL,
            hash    TEXT NOT NULL,
            size    BIGINT NOT NULL,
            meta    TEXT NOT NULL DEFAULT '{}',
            created DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (run_id, name)
        )
        """,
        "CREATE INDEX IF NOT EXISTS artifacts_hash ON artifacts(hash)",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    ],
    2: ["ALTER TABLE runs ADD COLUMN IF NOT EXISTS goals TEXT NOT NULL DEFAULT '{}'"],
    3: [
        """
        CREATE TABLE IF NOT EXISTS sweeps (
            id          TEXT PRIMARY KEY,
            number      BIGINT NOT NULL UNIQUE,
            name        TEXT,
            status      TEXT NOT NULL,
            start_time  DOUBLE PRECISION NOT NULL,
            end_time    DOUBLE PRECISION,
            pid         BIGINT,
            hostname    TEXT,
            objective   TEXT NOT NULL,
            direction   TEXT NOT NULL,
            sampler     TEXT NOT NULL,
            pruner      TEXT NOT NULL,
            space       TEXT NOT NULL DEFAULT '[]',
            n_trials    BIGINT NOT NULL,
            seed        BIGINT,
            study_name  TEXT NOT NULL,
            storage     TEXT NOT NULL,
            notebook    TEXT,
            code        TEXT NOT NULL DEFAULT '',
            history     TEXT NOT NULL DEFAULT '[]',
            extra       TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX IF NOT EXISTS sweeps_name ON sweeps(name)",
        """
        CREATE TABLE IF NOT EXISTS sweep_trials (
            sweep_id TEXT NOT NULL,
            trial    BIGINT NOT NULL,
            run_id   TEXT,
            state    TEXT NOT NULL,
            value    DOUBLE PRECISION,
            pid      BIGINT,
            hostname TEXT,
            PRIMARY KEY (sweep_id, trial)
        )
        """,
        "CREATE INDEX IF NOT EXISTS sweep_trials_run ON sweep_trials(run_id)",
    ],
    4: [
        """
        CREATE TABLE IF NOT EXISTS registry_models (
            id           BIGSERIAL PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE,
            description  TEXT,
            created      DOUBLE PRECISION NOT NULL,
            created_by   TEXT NOT NULL,
            updated      DOUBLE PRECISION NOT NULL,
            revision     BIGINT NOT NULL DEFAULT 0,
            last_version BIGINT NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS registry_versions (
            model_id   BIGINT NOT NULL,
            version    BIGINT NOT NULL,
            run_id     TEXT NOT NULL,
            artifact   TEXT NOT NULL,
            kind       TEXT NOT NULL,
            hash       TEXT NOT NULL,
            size       BIGINT NOT NULL,
            meta       TEXT NOT NULL DEFAULT '{}',
            lineage    TEXT NOT NULL DEFAULT '{}',
            created    DOUBLE PRECISION NOT NULL,
            created_by TEXT NOT NULL,
            host       TEXT NOT NULL,
            PRIMARY KEY (model_id, version)
        )
        """,
        "CREATE INDEX IF NOT EXISTS registry_versions_run ON registry_versions(run_id)",
        """
        CREATE OR REPLACE FUNCTION nbtrack_refuse() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$ LANGUAGE plpgsql
        """,
        """
        CREATE OR REPLACE TRIGGER registry_versions_immutable
        BEFORE UPDATE ON registry_versions FOR EACH ROW
        EXECUTE FUNCTION nbtrack_refuse('model versions are immutable')
        """,
        """
        CREATE TABLE IF NOT EXISTS registry_stages (
            rowid    BIGSERIAL,
            model_id BIGINT NOT NULL,
            version  BIGINT NOT NULL,
            stage    TEXT NOT NULL,
            since    DOUBLE PRECISION NOT NULL,
            until    DOUBLE PRECISION,
            by_user  TEXT,
            reason   TEXT
        )
        """,
        "CREATE UNIQUE INDEX IF NOT EXISTS registry_stages_current "
        "ON registry_stages(model_id, version) WHERE until IS NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS registry_stages_one_production "
        "ON registry_stages(model_id) WHERE until IS NULL AND stage = 'production'",
        "CREATE INDEX IF NOT EXISTS registry_stages_history "
        "ON registry_stages(model_id, stage, since)",
        "CREATE INDEX IF NOT EXISTS registry_stages_open "
        "ON registry_stages(model_id, stage, version) WHERE until IS NULL",
        """
        CREATE TABLE IF NOT EXISTS registry_aliases (
            model_id BIGINT NOT NULL,
            alias    TEXT NOT NULL,
            version  BIGINT NOT NULL,
            since    DOUBLE PRECISION NOT NULL,
            set_by   TEXT NOT NULL,
            PRIMARY KEY (model_id, alias)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS registry_decisions (
            id       BIGSERIAL PRIMARY KEY,
            model_id BIGINT NOT NULL,
            version  BIGINT NOT NULL,
            stage    TEXT NOT NULL,
            "user"   TEXT NOT NULL,
            decision TEXT NOT NULL,
            comment  TEXT,
            time     DOUBLE PRECISION NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS registry_decisions_version "
        "ON registry_decisions(model_id, version)",
        """
        CREATE TABLE IF NOT EXISTS registry_audit (
            seq       BIGINT PRIMARY KEY,
            time      DOUBLE PRECISION NOT NULL,
            "user"    TEXT NOT NULL,
            host      TEXT NOT NULL,
            event     TEXT NOT NULL,
            model     TEXT,
            version   BIGINT,
            stage     TEXT,
            reason    TEXT,
            data      TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash      TEXT NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS registry_audit_model ON registry_audit(model, seq)",
        """
        CREATE OR REPLACE TRIGGER registry_audit_no_update BEFORE UPDATE ON registry_audit
        FOR EACH ROW EXECUTE FUNCTION nbtrack_refuse('the audit log is append-only')
        """,
        """
        CREATE OR REPLACE TRIGGER registry_audit_no_delete BEFORE DELETE ON registry_audit
        FOR EACH ROW EXECUTE FUNCTION nbtrack_refuse('the audit log is append-only')
        """,
        """
        CREATE TABLE IF NOT EXISTS verifications (
            run_id            TEXT NOT NULL,
            reproduced_run_id TEXT NOT NULL,
            time              DOUBLE PRECISION NOT NULL,
            rtol              DOUBLE PRECISION NOT NULL,
            atol              DOUBLE PRECISION NOT NULL,
            pid               BIGINT,
            hostname          TEXT
        )
        """,
        "CREATE INDEX IF NOT EXISTS verifications_run ON verifications(run_id)",
    ],
    # A run nbtrack did not name a user for is the database role's.
    5: [
        "ALTER TABLE runs ADD COLUMN IF NOT EXISTS user_name TEXT DEFAULT current_user",
        "CREATE INDEX IF NOT EXISTS runs_user ON runs(user_name)",
    ],
    # Projects (nbtrack/store/schema.py's v6): NULL for a run no project scoped.
    6: [
        "ALTER TABLE runs ADD COLUMN IF NOT EXISTS project TEXT",
        "CREATE INDEX IF NOT EXISTS runs_project ON runs(project)",
    ],
    # nbtrack/store/schema.py's v7: metric points indexed by (run, key), not the step. And
    # each session takes row numbers for metric points 1,000 at a time instead of one
    # sequence call per point: a run's points are written by one session (its process's
    # connection) at a time, and a session's numbers only grow, so ordering a run's points
    # by rowid is still the order they were written in.
    7: [
        "DROP INDEX IF EXISTS metrics_run_key",
        "CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, key)",
        "ALTER SEQUENCE metrics_rowid_seq CACHE 1000",
    ],
}
assert sorted(PG_MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1)), "a migration is missing"

_USER_COLUMN = re.compile(r'(?<![\w".])user(?![\w"(])')
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.IGNORECASE)
_INSERT_OR_REPLACE = re.compile(r"^\s*INSERT OR REPLACE INTO (\w+)\s*\(([^)]*)\)", re.IGNORECASE)
#: The key SQLite's ``INSERT OR REPLACE`` replaces on, per table that the shared code uses it on.
_REPLACE_KEYS = {
    "meta": ("key",),
    "artifacts": ("run_id", "name"),
    "sweep_trials": ("sweep_id", "trial"),
}


_URL_START = re.compile(r"^postgres(?:ql)?://")
#: A URL that went through a :class:`~pathlib.Path` (``//`` folded into ``/``).
_FOLDED_URL_START = re.compile(r"^postgres(?:ql)?:/(?!/)")


def postgres_url(location: object) -> str | None:
    """The ``postgresql://`` URL ``location`` names (a ``--store`` value, ``$NBTRACK_STORE``,
    ``%nbtrack store``, ``[store] location``), or ``None`` for a folder.

    ``postgres://`` is libpq's other spelling; everything after the scheme is kept as
    written, so ``postgresql:///db`` (libpq's default socket), ``?host=/run/postgresql``
    and ``?sslmode=require`` reach libpq unchanged. Locations travel as text
    (:class:`nbtrack.config.StoreURL`); a :class:`~pathlib.Path` that swallowed a URL folded
    its ``//``, and is read as ``scheme://`` + the rest (a host form; ``///`` is lost there).
    """
    if isinstance(location, os.PathLike):
        text = str(os.fspath(location))
        match = _FOLDED_URL_START.match(text) or _URL_START.match(text)
    else:
        text = str(location)
        match = _URL_START.match(text)
    if match is None:
        return None
    return "postgresql://" + text[match.end() :]


def is_postgres_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL store."""
    return postgres_url(location) is not None


@functools.lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """The store's shared SQL (SQLite spelling, ``?`` placeholders) as PostgreSQL reads it.

    Only what the shared code uses: placeholders, the ``user`` column (a keyword here),
    ``INSERT OR IGNORE``, SQLite's ``INDEXED BY`` hint, ``group_concat``, and the
    counter upsert on ``meta`` (PostgreSQL wants the old value named by its table).
    """
    out = sql.replace("%", "%%").replace("?", "%s")
    out = _USER_COLUMN.sub('"user"', out)
    if _INSERT_OR_IGNORE.match(out):
        out = _INSERT_OR_IGNORE.sub("INSERT INTO", out) + " ON CONFLICT DO NOTHING"
    replace = _INSERT_OR_REPLACE.match(out)
    if replace is not None:
        table = replace.group(1)
        keys = _REPLACE_KEYS[table]  # a new table must say its key here
        columns = [c.strip() for c in replace.group(2).split(",")]
        updates = ",".join(f"{c}=excluded.{c}" for c in columns if c not in keys)
        out = re.sub(r"INSERT OR REPLACE INTO", "INSERT INTO", out, count=1, flags=re.IGNORECASE)
        out += f" ON CONFLICT ({','.join(keys)}) DO " + (
            f"UPDATE SET {updates}" if updates else "NOTHING"
        )
    out = re.sub(r"\s+INDEXED BY \w+", "", out)
    out = out.replace("SET value = value + 1", "SET value = meta.value + 1")
    return out.replace("group_concat(version)", "string_agg(version::text, ',')")


def _args(args: Sequence[Any]) -> tuple[Any, ...]:
    # SQLite stores bools as integers, and the shared code passes them (``deterministic``).
    return tuple(int(a) if isinstance(a, bool) else a for a in args)


class _Cursor:
    """What the shared code reads from ``execute``: ``fetchone``/``fetchall``."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._cursor.description is None:
            return None
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._cursor.description is None:
            return []
        return [tuple(row) for row in self._cursor.fetchall()]


class PgConnection:
    """A psycopg connection speaking the subset of ``sqlite3.Connection`` the shared store
    code uses (``execute``, ``executemany``), so the registry's SQL is written once."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> _Cursor:
        """Run one statement (SQLite spelling) and return its cursor."""
        cursor = self.raw.cursor()
        cursor.execute(pg_sql(sql), _args(args))
        return _Cursor(cursor)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each row of arguments (pipelined by psycopg)."""
        with self.raw.cursor() as cursor:
            cursor.executemany(pg_sql(sql), [_args(r) for r in rows])

    def lock(self, key: int) -> None:
        """Take a transaction-scoped advisory lock (released at commit or rollback)."""
        self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


def redact_url(url: str) -> str:
    """The URL as it may be shown: its password replaced (:mod:`nbtrack.secrets`' rule)."""
    return redact_text(url)


@functools.lru_cache(maxsize=64)
def database_label(url: str) -> str:
    """``host_port_dbname``: a folder name for one database, never holding the user or the
    password (the artifact cache and the outbox, nbtrack/sync/outbox.py, are named by it).

    Cached per URL: every run start on a database store asks (the outbox check)."""
    import psycopg.conninfo

    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        info = {}
    return "_".join(
        re.sub(r"[^\w.-]", "_", str(info.get(k) or "local")) for k in ("host", "port", "dbname")
    )


def _artifacts_folder(url: str) -> Path:
    """Where a PostgreSQL store keeps artifact content: ``$NBTRACK_ARTIFACTS`` when it names
    a local folder, otherwise one folder per server and database under the user's cache."""
    env_name = getattr(config, "ENV_ARTIFACTS", "NBTRACK_ARTIFACTS")
    local = os.environ.get(env_name, "")
    if local and "://" not in local:
        return Path(local).expanduser().absolute()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "nbtrack" / "postgres" / database_label(url)


#: A connection failure where the server answered and refused (bad password, no such
#: database or role, pg_hba.conf): libpq spells those ``FATAL:``; the transient ones here
#: (a server starting, stopping, recovering or full) are still "come back later".
_REFUSED = re.compile(
    r"FATAL:(?!.*(starting up|shutting down|recovery|not yet accepting connections"
    r"|too many|remaining connection slots))",
    re.DOTALL,
)
#: Refusals libpq itself reports, without ``FATAL:``: the server asked for a password there
#: was none for, or the connection's settings cannot be met (SSL, channel binding,
#: ``require_auth``, certificates, a bad parameter value). Waiting never fixes those.
_CLIENT_REFUSALS = re.compile(
    r"no password supplied|SSL was required|channel binding|authentication method "
    r"requirement|certificate|private key|invalid \w+ value|invalid connection option"
    r"|invalid URI|invalid integer value",
    re.IGNORECASE,
)
#: What a refusal's message tells the user to check, by what was refused (first match).
_REFUSAL_ADVICE = (
    (
        re.compile(r"SSL|channel binding|certificate|private key", re.IGNORECASE),
        "check the store URL's SSL settings (sslmode, sslrootcert, channel_binding) against "
        "what the server offers",
    ),
    (
        re.compile(r"invalid|authentication method requirement", re.IGNORECASE),
        "check the parameters in the store URL",
    ),
    (
        re.compile(r"pg_hba\.conf|permission denied|not permitted", re.IGNORECASE),
        "check the role and the database name; the server's administrator decides who may "
        "connect (pg_hba.conf, CONNECT, LOGIN)",
    ),
)
_DEFAULT_ADVICE = "check the role, its password (~/.pgpass or PGPASSWORD) and the database name"
#: libpq's framing of a connection error: ``connection failed: connection to server at
#: "host", port N failed: FATAL:  …`` — the reason is what follows.
_FRAMING = re.compile(
    r"^(connection failed: |connection is bad: )?(connection to server (at|on) .*? failed: )?"
    r"(FATAL:\s+|fe_sendauth:\s+)?"
)


def is_unreachable(exc: BaseException) -> bool:
    """Whether a psycopg error means the server could not be reached (worth retrying
    later: a refused, timed-out or dropped connection, a server starting or stopping), as
    opposed to a refusal or a broken query that needs the user."""
    code = str(getattr(exc, "sqlstate", None) or "")
    if code:  # 08 connection exception, 53 insufficient resources, 57 operator intervention
        return code[:2] in ("08", "53", "57")
    # libpq's own connection errors carry no SQLSTATE: the server's refusals say FATAL, and
    # libpq's own refusals (no password to send, SSL it cannot have) are known texts.
    text = str(exc)
    return _REFUSED.search(text) is None and _CLIENT_REFUSALS.search(text) is None


def refusal_reason(text: str) -> str:
    """The reason in a refused connection's first line, without libpq's framing:
    ``password authentication failed for user "ana"``."""
    return _FRAMING.sub("", text, count=1).strip() or text


def refusal_advice(reason: str) -> str:
    """What to check for the refusal ``reason`` (:data:`_REFUSAL_ADVICE`)."""
    for pattern, advice in _REFUSAL_ADVICE:
        if pattern.search(reason):
            return advice
    return _DEFAULT_ADVICE


@contextlib.contextmanager
def translate_pg_errors(url: str) -> Iterator[None]:
    """Turn psycopg's errors into nbtrack's, each one line that says what to do (and
    never the URL's password).

    A connection the server could not be reached for is :class:`StoreUnreachableError`
    ("cannot reach …; check that the server runs"); one it refused (or that libpq refused
    to make: no password, SSL) a :class:`StoreError` saying so and what to check.
    """
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        text = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        # SQLSTATE class 40 is a deadlock or a serialisation failure: the transaction was
        # rolled back whole and may simply be tried again, as for a lock wait that gave up.
        rolled_back = str(getattr(exc, "sqlstate", None) or "").startswith("40")
        if rolled_back or isinstance(
            exc, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled
        ):
            raise StoreLockedError(
                f"the PostgreSQL store {redact_url(url)} is busy ({text}); retry"
            ) from None
        # Unreachable is its own class: a run start then keeps the run in the outbox.
        if is_unreachable(exc):
            raise StoreUnreachableError(
                f"cannot reach the PostgreSQL store {redact_url(url)} ({text}); check that "
                "the server runs and the store URL is right"
            ) from None
        reason = refusal_reason(text)
        raise StoreError(
            f"the PostgreSQL store {redact_url(url)} refused the connection: {reason}; "
            f"{refusal_advice(reason)}"
        ) from None
    except psycopg.errors.UndefinedTable as exc:
        raise StoreCorruptError(
            f"the PostgreSQL store {redact_url(url)} is missing part of its schema "
            f"({redact_text(str(exc).splitlines()[0])}); point the store URL at a "
            "database nbtrack created"
        ) from None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"store error at {redact_url(url)}: {redact_text(first)}") from None


class PostgresStore(Store):
    """An nbtrack store in a PostgreSQL database (``postgresql://user[:pw]@host[:port]/db``).

    ``create=True`` creates nbtrack's tables in an existing database (the database itself
    is the administrator's to create). Safe to share between threads (one connection, a
    lock) and between processes and machines (PostgreSQL's own concurrency, advisory locks
    where nbtrack checks then writes).

    A connection that dropped (a network blip, a server restart) is replaced on the store's
    next use (:attr:`_pg`): the call that met the drop fails with
    :class:`~nbtrack.errors.StoreUnreachableError`, the next one connects again, so a run
    writing through this store goes on once the database is back.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:  # noqa: D107
        self._url = str(url)
        #: The URL as it may be shown (password redacted).
        self.url = redact_url(self._url)
        self.path = _artifacts_folder(self._url)
        self.db_path = self.path / "postgresql"  # never opened; kept for Store's messages
        self.artifacts_path = self.path / config.ARTIFACTS_DIRNAME
        self._lock = threading.RLock()
        self._known_blobs: set[str] = set()
        self._text_hashes: dict[int, tuple[str, str]] = {}
        self._gc_generation = 0
        #: Transactions open on the connection (this thread's: the lock is held through
        #: each); a connection that drops inside one is not replaced until it ends.
        self._depth = 0
        #: How many times a lost connection was replaced (for diagnostics and tests).
        self.reconnects = 0
        #: When a reconnect last timed out (monotonic; none: -inf), and the error each call
        #: raises until RECONNECT_BACKOFF_SECONDS have passed since.
        self._slow_failure_at = -math.inf
        self._down_reason = ""
        try:
            import psycopg  # noqa: F401
        except ImportError:  # pragma: no cover - the extra is part of the test set-up
            raise StoreError(
                "a postgresql:// store needs psycopg; install it with "
                "`pip install 'nbtrack[postgres]'`"
            ) from None
        raw = self._connect()
        self._conn = PgConnection(raw)  # type: ignore[assignment]
        try:
            self._setup(create)
        except BaseException:
            raw.close()
            raise
        self._mark_crashed_on_open()

    # -- set-up and transactions --------------------------------------------------------
    def _read_version(self, conn: PgConnection) -> int:
        # The catalog is read as a table, under the statement's snapshot, not through
        # to_regclass(): a name lookup goes through the backend's cache, which may still
        # say "no such table" after another process committed the migration while this one
        # waited for the lock (seen: all eight concurrent first writers re-ran every
        # migration, and their DDL deadlocked with the runs already being written).
        exists = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables"
            " WHERE schemaname = current_schema() AND tablename = 'meta')"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _setup(self, create: bool = True) -> None:
        with self._lock, translate_pg_errors(self._url):
            version = self._read_version(self._pg)
        if version > SCHEMA_VERSION:
            raise StoreSchemaError(
                f"the store {self.url} has schema version {version}, newer than this "
                f"nbtrack understands ({SCHEMA_VERSION}); upgrade nbtrack to read it"
            )
        if version == 0 and not create:
            raise StoreError(
                f"no nbtrack store in {self.url}; run a tracked cell with "
                f"{config.ENV_STORE} set to it first"
            )
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        # A migration is all or nothing and re-reads the version under its lock, so one
        # that PostgreSQL rolled back (a deadlock with some other client) is tried again.
        for attempt in range(3):
            try:
                self._migrate_once()
                return
            except StoreLockedError:
                if attempt == 2:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def _migrate_once(self) -> None:
        with self.transaction() as conn:
            conn.lock(_LOCK_MIGRATE)
            # Re-read under the lock: another process may have migrated meanwhile.
            current = self._read_version(conn)
            for target in range(current + 1, SCHEMA_VERSION + 1):
                for statement in PG_MIGRATIONS[target]:
                    conn.raw.execute(statement)  # DDL: no placeholders to rewrite
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (target,),
                )

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection with the store's options (autocommit: a statement is its own
        transaction unless :meth:`transaction` opens one; libpq's connect timeout)."""
        import psycopg

        with translate_pg_errors(self._url):
            return psycopg.connect(
                self._url, autocommit=True, connect_timeout=config.connect_timeout()
            )

    @property
    def _pg(self) -> PgConnection:
        """The connection, replaced first when the last one was lost. Every statement
        reaches the connection through here (``_conn`` is otherwise only read by
        ``_reconnect``, ``close`` and ``__del__``). A healthy connection costs one local
        check, libpq's own status (no round trip); psycopg marks a connection closed once
        a call found it dropped."""
        conn: PgConnection = self._conn  # type: ignore[assignment]
        if conn.raw.closed:
            return self._reconnect()
        return conn

    def _reconnect(self) -> PgConnection:
        """Open a new connection in place of the lost one (under the lock: one thread
        reconnects, the others use its connection). Inside an open transaction the dead
        one is kept, so that transaction fails whole and the next call starts afresh; a
        connection that cannot be opened raises :class:`StoreUnreachableError`."""
        with self._lock:
            conn: PgConnection = self._conn  # type: ignore[assignment]
            if not conn.raw.closed or self._depth:
                return conn
            if time.monotonic() - self._slow_failure_at < RECONNECT_BACKOFF_SECONDS:
                # A connect attempt timed out moments ago (a network that drops packets):
                # fail at once rather than make every flush, and the run's end behind
                # them, wait out another connect timeout under the store's lock.
                raise StoreUnreachableError(self._down_reason)
            with contextlib.suppress(Exception):  # frees libpq's side of the dead one
                conn.raw.close()
            started = time.monotonic()
            try:
                raw = self._connect()
            except StoreUnreachableError as exc:
                if time.monotonic() - started >= SLOW_RECONNECT_SECONDS:
                    self._slow_failure_at = time.monotonic()
                    self._down_reason = str(exc)
                raise
            self._conn = conn = PgConnection(raw)  # type: ignore[assignment]
            self._slow_failure_at = -math.inf
            self.reconnects += 1
            return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgConnection]:  # type: ignore[override]
        """One PostgreSQL transaction; what must be serialised takes its advisory lock."""
        with self._lock, translate_pg_errors(self._url):
            conn = self._pg
            self._depth += 1
            try:
                with conn.raw.transaction():
                    yield conn
            finally:
                self._depth -= 1
            if conn.raw.closed:
                # psycopg ends a block whose connection was lost without a word (no COMMIT
                # could be sent): say so, or the caller would take it for committed.
                raise StoreUnreachableError(
                    f"cannot reach the PostgreSQL store {self.url} (the connection dropped "
                    "during a transaction, which was not committed); retry when it is back"
                )

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, translate_pg_errors(self._url):
            return self._pg.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the connection; the store's next use (if any) opens a new one."""
        with self._lock:
            self._conn.raw.close()  # type: ignore[attr-defined]

    def __del__(self) -> None:
        # A store dropped unclosed (a command that read and returned) closes its connection,
        # as a collected sqlite3 connection closes itself, rather than leaving psycopg to
        # find it open (its ResourceWarning) and the server a dropped socket.
        raw = getattr(getattr(self, "_conn", None), "raw", None)
        if raw is not None and not raw.closed:
            with contextlib.suppress(Exception):
                raw.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    @property
    def location(self) -> str:
        """The URL as given, password included, for child processes (never shown)."""
        return self._url

    @property
    def shown(self) -> str:
        """The URL with its password redacted: how messages name this store."""
        return self.url

    def is_current(self) -> bool:
        """Always: a database has no file to replace, and a lost connection is replaced
        on the next use (:attr:`_pg`), so one shared store serves the whole process."""
        return True

    @property
    def schema_version(self) -> int:
        with self._lock, translate_pg_errors(self._url):
            return self._read_version(self._pg)

    # -- what PostgreSQL spells differently ---------------------------------------------
    def create_run(self, run_id: str, fields: dict[str, Any]) -> int:
        """Insert a new run and return its per-store number (numbered under a lock, so
        concurrent writers on any machine get distinct, increasing numbers)."""
        import socket

        row = {
            "id": run_id,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "heartbeat": time.time(),
            **fields,
        }
        if row.get("user_name") is None:
            row.pop("user_name", None)  # the column's default: the database role
        columns, values = self._encode(row)
        # One round trip (a pipeline: BEGIN, lock, insert, COMMIT), so the number lock is
        # held for the server's work only, never across the network: with 8 writers the
        # old four round trips under the lock queued them behind each other. The insert is
        # its own statement after the lock's, so (READ COMMITTED) its snapshot sees the
        # previous holder's committed run: numbers stay distinct and increasing.
        sql = pg_sql(
            "WITH n AS (SELECT GREATEST(COALESCE((SELECT MAX(number) FROM runs), 0),"
            " COALESCE((SELECT value FROM meta WHERE key='last_number'), 0)) + 1 AS number),"
            " m AS (INSERT INTO meta (key, value) SELECT 'last_number', number FROM n"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value)"
            f" INSERT INTO runs (number, {','.join(columns)})"
            f" VALUES ((SELECT number FROM n), {','.join('?' * len(columns))}) RETURNING number"
        )
        import psycopg

        with self._lock, translate_pg_errors(self._url):
            raw = self._pg.raw
            # A libpq older than 14 has no pipeline mode: the same statements, two trips.
            batched = (
                raw.pipeline() if psycopg.Pipeline.is_supported() else contextlib.nullcontext()
            )
            with batched, raw.transaction():
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_RUN_NUMBER,))
                cursor = raw.execute(sql, _args(values))
            numbered = cursor.fetchone()
        if numbered is None:  # pragma: no cover - INSERT … RETURNING returns its row
            raise StoreError(f"the PostgreSQL store {self.url} numbered no run; retry")
        return int(numbered[0])

    def update_run(self, run_id: str, fields: dict[str, Any]) -> None:
        """Set some columns of one run, in one statement (atomic on its own: no
        ``BEGIN``/``COMMIT`` round trips around it, a third of a run's finish)."""
        if not fields:
            return
        columns, values = self._encode(fields)
        assignments = ",".join(f"{c}=?" for c in columns)
        with self._lock, translate_pg_errors(self._url):
            self._pg.execute(f"UPDATE runs SET {assignments} WHERE id=?", (*values, run_id))

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
        """Rows of runs, oldest first, filtered; ``name`` may be a glob (``digits/*``)."""
        where: list[str] = []
        args: list[Any] = []
        if user is not None:
            where.append("user_name = ?")
            args.append(user)
        if project is not None:
            where.append("project = ?")
            args.append(project)
        if name is not None:
            if any(ch in name for ch in "*?["):
                where.append("name ~ ?")
                args.append(_glob_regex(name))
            else:
                where.append("name = ?")
                args.append(name)
        if status is not None:
            where.append("status = ?")
            args.append(str(status))
        if tag is not None:
            where.append("jsonb_exists(tags::jsonb, ?)")
            args.append(tag)
        if notebook is not None:
            where.append("notebook = ?")
            args.append(notebook)
        sql = f"SELECT {','.join(columns)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._query(sql + " ORDER BY number", args)

    def append_metrics(
        self,
        run_id: str,
        points: Sequence[tuple[str, int, float, float]],
        latest: dict[str, float] | None = None,
    ) -> None:
        """Append metric points ``(key, step, value, timestamp)`` and each metric's last value.

        Points go in with one binary ``COPY`` (:func:`binary_copy_metrics`: the batch built
        as one buffer, values as IEEE doubles, so NaN, ±inf and every bit round-trip and
        the server parses no text), in the same transaction as the run's latest values.
        """
        with self.transaction() as conn:
            if points:
                with (
                    conn.raw.cursor() as cursor,
                    cursor.copy(
                        "COPY metrics (run_id, key, step, value, ts) FROM STDIN (FORMAT BINARY)"
                    ) as copy,
                ):
                    copy.write(binary_copy_metrics(run_id, points))
            if latest is not None:
                conn.execute(
                    "UPDATE runs SET metrics=?, heartbeat=? WHERE id=?",
                    (dumps(latest), time.time(), run_id),
                )

    def create_sweep(self, sweep_id: str, fields: dict[str, Any]) -> int:
        """Insert a new sweep and return its per-store number (numbered under a lock)."""
        with self.transaction() as conn:
            conn.lock(_LOCK_SWEEP_NUMBER)
            return super().create_sweep(sweep_id, fields)

    def list_sweeps(self, *, name: str | None = None) -> list[dict[str, Any]]:
        """Every sweep (``name``: only those of that name, a glob works), oldest first."""
        if name is not None and any(ch in name for ch in "*?["):
            return [
                s for s in super().list_sweeps() if re.fullmatch(_glob_regex(name), s["name"] or "")
            ]
        return super().list_sweeps(name=name)

    def claim_sweep_trial(self, sweep_id: str, trial: int) -> None:
        """Record that this process (pid, host) runs trial ``trial`` of a sweep."""
        import socket

        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO sweep_trials (sweep_id, trial, run_id, state, pid, hostname) "
                "VALUES (?,?,NULL,'claimed',?,?) ON CONFLICT (sweep_id, trial) DO UPDATE SET "
                "run_id=NULL, state='claimed', value=NULL, pid=excluded.pid, "
                "hostname=excluded.hostname",
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
                "VALUES (?,?,?,?,?) ON CONFLICT (sweep_id, trial) DO UPDATE SET "
                "run_id=COALESCE(excluded.run_id, sweep_trials.run_id), state=excluded.state, "
                "value=excluded.value",
                (sweep_id, int(trial), run_id, state, value),
            )

    @contextlib.contextmanager
    def registry_transaction(self) -> Iterator[Any]:
        """The registry's check-then-write under one advisory lock: of two racing
        promotions on any machines, the second sees the first's result."""
        from nbtrack.store.registry_tables import RegistryWriter

        with self.transaction() as conn:
            conn.lock(_LOCK_REGISTRY)
            yield RegistryWriter(conn)  # type: ignore[arg-type]

    def redact_in_place(
        self,
        runs: Mapping[str, Mapping[str, Any]],
        blobs: Mapping[str, bytes],
        artifacts: Sequence[tuple[str, str, str, dict[str, Any]]] = (),
        sweeps: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Replace stored content that held secrets, as the SQLite store does (the same
        rewrite, :meth:`Store._rewrite_redacted`), in one transaction; then ``VACUUM FULL``
        the touched tables, so the old row versions are gone from the tables' files.

        ``VACUUM FULL`` cannot run in a transaction, needs the tables' owner (or a
        superuser) and locks each table while rewriting it (writers wait); when it cannot run
        (not the owner, or no lock within the busy timeout), the rows are redacted anyway
        and ``compacted`` is False. Either way the counts carry ``remains``: what the
        database may still hold (its write-ahead log, WAL archives, backups, replicas),
        which only the database administrator can clear.
        """
        with self.transaction() as conn:
            # One redaction at a time, and no run numbered meanwhile, so no run written
            # during the rewrite can point at a blob it deletes.
            conn.lock(_LOCK_RUN_NUMBER)
            moved = self._rewrite_redacted(conn, runs, blobs, artifacts, sweeps or {})
        self._known_blobs.clear()
        self._text_hashes.clear()
        touched = ["runs", "blobs"] + (["artifacts"] if artifacts else [])
        touched += ["sweeps"] if sweeps else []
        skipped = self._vacuum_full(touched)
        remains = (
            "the database's write-ahead log, WAL archives, backups and replicas may still "
            "hold the old values; ask the database administrator to rotate them"
        )
        if skipped:
            remains = (
                f"VACUUM FULL was not possible on {', '.join(skipped)} (it needs the table "
                "owner and no long transaction holding them), so old row versions stay in "
                f"the table files until it runs: `VACUUM FULL {', '.join(skipped)};` as the "
                f"owner; and {remains}"
            )
        return {
            "runs": len(runs),
            "blobs": len(moved),
            "artifacts": len(artifacts),
            "sweeps": len(sweeps or {}),
            "compacted": not skipped,
            "remains": remains,
        }

    def _vacuum_full(self, tables: Sequence[str]) -> list[str]:
        """``VACUUM FULL`` each table (outside a transaction, waiting at most the busy
        timeout for its lock); returns the tables it could not rewrite. PostgreSQL only
        warns, not fails, when the role does not own a table: the warning is the signal."""
        import psycopg

        skipped: list[str] = []
        notices: list[str] = []

        def notice(diag: psycopg.errors.Diagnostic) -> None:
            if diag.severity_nonlocalized == "WARNING":
                notices.append(str(diag.message_primary or ""))

        with self._lock, translate_pg_errors(self._url):
            raw = self._pg.raw
            raw.add_notice_handler(notice)
            try:
                timeout_ms = max(1, int(config.busy_timeout() * 1000))
                raw.execute(f"SET lock_timeout = {timeout_ms}")
                for table in tables:
                    notices.clear()
                    try:
                        raw.execute(f"VACUUM FULL {table}")
                    except psycopg.errors.LockNotAvailable:
                        skipped.append(table)
                        continue
                    if notices:  # "permission denied to vacuum" / "skipping …"
                        skipped.append(table)
            finally:
                raw.execute("RESET lock_timeout")
                raw.remove_notice_handler(notice)
        return skipped

    def compact(self) -> bool:
        """``VACUUM`` the store's tables (outside a transaction, as PostgreSQL requires)."""
        with self._lock, translate_pg_errors(self._url):
            for table in ("runs", "metrics", "blobs", "artifacts"):
                self._pg.raw.execute(f"VACUUM {table}")
        return True

    def integrity_check(self) -> str:
        """``"ok"`` when every table of the schema is there."""
        with self._lock, translate_pg_errors(self._url):
            version = self._read_version(self._pg)
        return "ok" if version == SCHEMA_VERSION else f"schema version {version}"


#: PostgreSQL's binary COPY framing: signature, flags, header extension; end of data.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
#: After a row's run id and key: (length 8, step int8, length 8, value float8, length 8, ts).
_COPY_TAIL = struct.Struct(">iqidid")
#: The same with a NULL value (length -1, no bytes).
_COPY_TAIL_NULL = struct.Struct(">iqiid")


def binary_copy_metrics(
    run_id: str, points: Iterable[tuple[str, int, float | None, float]]
) -> bytes:
    """Metric rows ``(run_id, key, step, value, ts)`` as one ``COPY … (FORMAT BINARY)`` stream.

    Built here rather than row by row through psycopg's ``write_row`` (1.5 µs a row, most
    of a writer's CPU after ``track.log`` itself): a row is its key's cached prefix and one
    ``struct.pack``, about a quarter of that. Binary doubles need no text round trip, so
    NaN, ±inf, -0.0 and the last bit of a value arrive as logged. A step outside int8 or
    a value that is not a number raises :class:`~nbtrack.errors.StoreError` before
    anything is sent: the batch stays in the run's buffer, nothing half-written.
    """
    run = run_id.encode()
    head = struct.pack(">hi", 5, len(run)) + run
    prefixes: dict[str, bytes] = {}
    pack = _COPY_TAIL.pack
    parts = [_COPY_HEADER]
    append = parts.append
    key: object = None
    step: object = None
    try:
        for key, step, value, ts in points:
            prefix = prefixes.get(key)
            if prefix is None:
                encoded = key.encode()
                prefix = prefixes[key] = head + struct.pack(">i", len(encoded)) + encoded
            append(prefix)
            if value is None:
                append(_COPY_TAIL_NULL.pack(8, step, -1, 8, ts))
            else:
                append(pack(8, step, 8, value, 8, ts))
    except (struct.error, AttributeError, TypeError) as exc:
        raise StoreError(
            f"metric point {key!r} at step {step!r} cannot be stored ({exc}); a step must "
            "be a whole number within ±2**63 and a value a number"
        ) from None
    append(_COPY_TRAILER)
    return b"".join(parts)


def _glob_regex(pattern: str) -> str:
    """A glob (``*``, ``?``, ``[...]``, as SQLite's GLOB reads it) as an anchored regex."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "^" + "".join(out) + "$"


#: A reconnect that fails slowly (at least ``SLOW_RECONNECT_SECONDS``: a connect timeout,
#: not a refusal) is not tried again for ``RECONNECT_BACKOFF_SECONDS``; a refused one, which
#: costs nothing, is tried on every call, so a run goes on the moment the database is back.
SLOW_RECONNECT_SECONDS = 1.0
RECONNECT_BACKOFF_SECONDS = 30.0

_open_pg: dict[str, PostgresStore] = {}
_open_pg_lock = threading.Lock()


def open_pg_store(url: str, *, create: bool = True) -> PostgresStore:
    """A shared :class:`PostgresStore` per URL in this process (closed at exit). Kept
    when its connection drops: the store connects again on its next use, so a running run
    and a later caller go on through the same object."""
    with _open_pg_lock:
        store = _open_pg.get(url)
        if store is None:
            store = PostgresStore(url, create=create)
            _open_pg[url] = store
        return store


@atexit.register
def close_pg_stores() -> None:
    """Close every store :func:`open_pg_store` shared. Registered to run at exit, so no
    connection is left for the garbage collector to find open (psycopg's ResourceWarning)
    and the server sees a clean goodbye instead of a dropped socket."""
    with _open_pg_lock:
        stores = list(_open_pg.values())
        _open_pg.clear()
    for store in stores:
        with contextlib.suppress(Exception):  # the server may be gone already
            store.close()


#: The name the sync code opens a database store by (same as :func:`open_pg_store`).
open_store = open_pg_store
