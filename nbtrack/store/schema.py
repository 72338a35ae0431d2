"""The store's SQL schema and its migrations.

The schema version lives in SQLite's ``PRAGMA user_version``. ``MIGRATIONS[n]`` takes a
store from version ``n - 1`` to ``n``; a store newer than :data:`SCHEMA_VERSION` is refused
rather than guessed at.
"""

from __future__ import annotations

SCHEMA_VERSION = 7

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """
        CREATE TABLE IF NOT EXISTS runs (
            id            TEXT PRIMARY KEY,
            number        INTEGER NOT NULL UNIQUE,
            name          TEXT,
            status        TEXT NOT NULL,
            kind          TEXT NOT NULL DEFAULT 'cell',
            start_time    REAL NOT NULL,
            end_time      REAL,
            heartbeat     REAL,
            pid           INTEGER,
            hostname      TEXT,
            notebook      TEXT,
            note          TEXT,
            tags          TEXT NOT NULL DEFAULT '[]',
            params        TEXT NOT NULL DEFAULT '{}',
            metrics       TEXT NOT NULL DEFAULT '{}',
            seed          INTEGER,
            deterministic INTEGER NOT NULL DEFAULT 0,
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
            data    BLOB NOT NULL,
            created REAL NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS metrics (
            run_id TEXT NOT NULL,
            key    TEXT NOT NULL,
            step   INTEGER NOT NULL,
            value  REAL,
            ts     REAL NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS metrics_run_key ON metrics(run_id, key, step)",
        """
        CREATE TABLE IF NOT EXISTS artifacts (
            run_id  TEXT NOT NULL,
            name    TEXT NOT NULL,
            kind    TEXT NOT NULL,
            hash    TEXT NOT NULL,
            size    INTEGER NOT NULL,
            meta    TEXT NOT NULL DEFAULT '{}',
            created REAL NOT NULL,
            PRIMARY KEY (run_id, name)
        )
        """,
        "CREATE INDEX IF NOT EXISTS artifacts_hash ON artifacts(hash)",
        # Counters that must never go backwards: the last run number handed out (numbers
        # are not reused after `nbtrack rm`) and how many times gc ran (processes drop
        # their cache of known blobs when it changes).
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    ],
    # Each metric's direction as the run used it: {metric: {"direction", "source"}}
    # (nbtrack/metrics.py). Its own column, so the compare widget reads it without `extra`.
    2: ["ALTER TABLE runs ADD COLUMN goals TEXT NOT NULL DEFAULT '{}'"],
    # Sweeps (nbtrack/sweeps/): one row per sweep, and one per trial linking the Optuna
    # trial number to the process that claimed it and the run that recorded it, with how
    # it ended (Optuna's FAIL does not say "interrupted"). Kept here, not as Optuna user
    # attributes, because each of those is one more fsync'd journal write per trial. The
    # link is its own table, not a column of `runs`, so deleting a trial's run leaves the
    # sweep readable (the link just dangles).
    3: [
        """
        CREATE TABLE IF NOT EXISTS sweeps (
            id          TEXT PRIMARY KEY,
            number      INTEGER NOT NULL UNIQUE,
            name        TEXT,
            status      TEXT NOT NULL,
            start_time  REAL NOT NULL,
            end_time    REAL,
            pid         INTEGER,
            hostname    TEXT,
            objective   TEXT NOT NULL,
            direction   TEXT NOT NULL,
            sampler     TEXT NOT NULL,
            pruner      TEXT NOT NULL,
            space       TEXT NOT NULL DEFAULT '[]',
            n_trials    INTEGER NOT NULL,
            seed        INTEGER,
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
            trial    INTEGER NOT NULL,
            run_id   TEXT,
            state    TEXT NOT NULL,
            value    REAL,
            pid      INTEGER,
            hostname TEXT,
            PRIMARY KEY (sweep_id, trial)
        )
        """,
        "CREATE INDEX IF NOT EXISTS sweep_trials_run ON sweep_trials(run_id)",
    ],
    # The model registry (nbtrack/registry/, nbtrack/store/registry_tables.py). A version
    # copies its run's lineage and keeps the artifact's content hash, so it outlives the
    # run; versions and audit entries never change (triggers refuse it), stage periods
    # are closed rather than deleted, so "what was in production on date D" stays answerable.
    4: [
        """
        CREATE TABLE IF NOT EXISTS registry_models (
            id           INTEGER PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE,
            description  TEXT,
            created      REAL NOT NULL,
            created_by   TEXT NOT NULL,
            updated      REAL NOT NULL,
            revision     INTEGER NOT NULL DEFAULT 0,
            last_version INTEGER NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS registry_versions (
            model_id   INTEGER NOT NULL,
            version    INTEGER NOT NULL,
            run_id     TEXT NOT NULL,
            artifact   TEXT NOT NULL,
            kind       TEXT NOT NULL,
            hash       TEXT NOT NULL,
            size       INTEGER NOT NULL,
            meta       TEXT NOT NULL DEFAULT '{}',
            lineage    TEXT NOT NULL DEFAULT '{}',
            created    REAL NOT NULL,
            created_by TEXT NOT NULL,
            host       TEXT NOT NULL,
            PRIMARY KEY (model_id, version)
        )
        """,
        "CREATE INDEX IF NOT EXISTS registry_versions_run ON registry_versions(run_id)",
        """
        CREATE TRIGGER IF NOT EXISTS registry_versions_immutable
        BEFORE UPDATE ON registry_versions
        BEGIN SELECT RAISE(ABORT, 'model versions are immutable'); END
        """,
        """
        CREATE TABLE IF NOT EXISTS registry_stages (
            model_id INTEGER NOT NULL,
            version  INTEGER NOT NULL,
            stage    TEXT NOT NULL,
            since    REAL NOT NULL,
            until    REAL,
            by_user  TEXT,
            reason   TEXT
        )
        """,
        # One open period per version, and at most one version of a model in production:
        # the database itself refuses a second one, whatever the code above it does.
        "CREATE UNIQUE INDEX IF NOT EXISTS registry_stages_current "
        "ON registry_stages(model_id, version) WHERE until IS NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS registry_stages_one_production "
        "ON registry_stages(model_id) WHERE until IS NULL AND stage = 'production'",
        "CREATE INDEX IF NOT EXISTS registry_stages_history "
        "ON registry_stages(model_id, stage, since)",
        # Covers the list of models (what is in each stage now) without reading the table.
        "CREATE INDEX IF NOT EXISTS registry_stages_open "
        "ON registry_stages(model_id, stage, version) WHERE until IS NULL",
        """
        CREATE TABLE IF NOT EXISTS registry_aliases (
            model_id INTEGER NOT NULL,
            alias    TEXT NOT NULL,
            version  INTEGER NOT NULL,
            since    REAL NOT NULL,
            set_by   TEXT NOT NULL,
            PRIMARY KEY (model_id, alias)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS registry_decisions (
            id       INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL,
            version  INTEGER NOT NULL,
            stage    TEXT NOT NULL,
            user     TEXT NOT NULL,
            decision TEXT NOT NULL,
            comment  TEXT,
            time     REAL NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS registry_decisions_version "
        "ON registry_decisions(model_id, version)",
        # The hash chain (nbtrack/registry/audit.py); meta's 'audit_seq' counts the entries
        # appended, so deleting the newest ones shows too.
        """
        CREATE TABLE IF NOT EXISTS registry_audit (
            seq       INTEGER PRIMARY KEY,
            time      REAL NOT NULL,
            user      TEXT NOT NULL,
            host      TEXT NOT NULL,
            event     TEXT NOT NULL,
            model     TEXT,
            version   INTEGER,
            stage     TEXT,
            reason    TEXT,
            data      TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash      TEXT NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS registry_audit_model ON registry_audit(model, seq)",
        """
        CREATE TRIGGER IF NOT EXISTS registry_audit_no_update BEFORE UPDATE ON registry_audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
        """,
        """
        CREATE TRIGGER IF NOT EXISTS registry_audit_no_delete BEFORE DELETE ON registry_audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
        """,
        # Facts: `nbtrack export --verify` reproduced a run (the registry's `verified` gate).
        """
        CREATE TABLE IF NOT EXISTS verifications (
            run_id            TEXT NOT NULL,
            reproduced_run_id TEXT NOT NULL,
            time              REAL NOT NULL,
            rtol              REAL NOT NULL,
            atol              REAL NOT NULL,
            pid               INTEGER,
            hostname          TEXT
        )
        """,
        "CREATE INDEX IF NOT EXISTS verifications_run ON verifications(run_id)",
    ],
    # Who did what (docs/team.md): the user who ran each run — $NBTRACK_USER, else git's
    # identity, else the login name (PostgreSQL: the database role) — so `runs(user=...)`
    # scopes a team store to one person's runs.
    5: [
        "ALTER TABLE runs ADD COLUMN user_name TEXT",
        "CREATE INDEX IF NOT EXISTS runs_user ON runs(user_name)",
    ],
    # Projects (docs/team.md): the short name that scopes a team's runs — `%%track
    # --project`, `nbtrack.run(project=...)`, $NBTRACK_PROJECT or nbtrack.toml's
    # `[project] name` (nbtrack/identity.py) — NULL when none says, so `runs(project=...)`
    # keeps one project's runs and a store nobody scopes is read as before.
    6: [
        "ALTER TABLE runs ADD COLUMN project TEXT",
        "CREATE INDEX IF NOT EXISTS runs_project ON runs(project)",
    ],
    # Metric points are indexed by (run, key) only: every read asks for one run's points
    # (one key or all) in the order they were written, never for a step, so the step
    # column in the index was work on every insert for nothing (about a sixth of a
    # PostgreSQL server's cost per point; benchmarks/bench_postgres.py). Rebuilt once.
    7: [
        "DROP INDEX IF EXISTS metrics_run_key",
        "CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, key)",
    ],
}
