"""The model registry's rows in the SQLite store (schema v4): models, versions, stage
periods, aliases, approval decisions, the audit log, and reproduction facts.

Plain SQL and plain values: what a stage or a gate means, and how the audit chain is
sealed, is :mod:`nbtrack.registry`'s business. Reads return dicts (JSON columns decoded);
every change goes through :meth:`RegistryTables.registry_transaction`, one ``BEGIN
IMMEDIATE`` transaction in which the registry re-reads what it checks and then writes, so
two processes can never both act on the same state.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

#: Columns of ``registry_versions``, in order.
VERSION_COLUMNS = (
    "model_id",
    "version",
    "run_id",
    "artifact",
    "kind",
    "hash",
    "size",
    "meta",
    "lineage",
    "created",
    "created_by",
    "host",
)
_VERSION_JSON = ("meta", "lineage")
#: Columns of ``registry_audit``, in order.
AUDIT_COLUMNS = (
    "seq",
    "time",
    "user",
    "host",
    "event",
    "model",
    "version",
    "stage",
    "reason",
    "data",
    "prev_hash",
    "hash",
)
_MODEL_COLUMNS = (
    "id",
    "name",
    "description",
    "created",
    "created_by",
    "updated",
    "revision",
    "last_version",
)
_PERIOD_COLUMNS = ("model_id", "version", "stage", "since", "until", "by_user", "reason")
_DECISION_COLUMNS = ("model_id", "version", "stage", "user", "decision", "comment", "time")


def _version(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(VERSION_COLUMNS, row))
    for key in _VERSION_JSON:
        out[key] = json.loads(out[key]) if out[key] else {}
    return out


class RegistryReads:
    """Reads shared by the store (autocommit) and the writer (inside its transaction)."""

    def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def registry_model(self, name: str) -> dict[str, Any] | None:
        """The model row called ``name``, or ``None``."""
        rows = self._fetch(
            f"SELECT {','.join(_MODEL_COLUMNS)} FROM registry_models WHERE name=?", (name,)
        )
        return dict(zip(_MODEL_COLUMNS, rows[0])) if rows else None

    def registry_versions(self, model_id: int, version: int | None = None) -> list[dict[str, Any]]:
        """Versions of a model (or the one numbered ``version``), oldest first."""
        sql = f"SELECT {','.join(VERSION_COLUMNS)} FROM registry_versions WHERE model_id=?"
        args: list[Any] = [model_id]
        if version is not None:
            sql += " AND version=?"
            args.append(version)
        return [_version(r) for r in self._fetch(sql + " ORDER BY version", args)]

    def registry_version_of_run(self, model_id: int, run_id: str, artifact: str) -> int | None:
        """The version already registered from this run's artifact, if any."""
        rows = self._fetch(
            "SELECT version FROM registry_versions WHERE model_id=? AND run_id=? AND artifact=?",
            (model_id, run_id, artifact),
        )
        return int(rows[0][0]) if rows else None

    def registry_current_stages(self, model_id: int) -> dict[int, tuple[str, float]]:
        """``{version: (stage, since)}`` for every version of a model, now."""
        return {
            int(v): (str(s), float(t))
            for v, s, t in self._fetch(
                "SELECT version, stage, since FROM registry_stages "
                "WHERE model_id=? AND until IS NULL",
                (model_id,),
            )
        }

    def registry_stage_periods(
        self, model_id: int, *, stage: str | None = None, version: int | None = None
    ) -> list[dict[str, Any]]:
        """Every period a version spent in a stage, oldest first (filtered)."""
        sql = f"SELECT {','.join(_PERIOD_COLUMNS)} FROM registry_stages WHERE model_id=?"
        args: list[Any] = [model_id]
        if stage is not None:
            sql += " AND stage=?"
            args.append(stage)
        if version is not None:
            sql += " AND version=?"
            args.append(version)
        rows = self._fetch(sql + " ORDER BY since, rowid", args)
        return [dict(zip(_PERIOD_COLUMNS, r)) for r in rows]

    def registry_aliases(self, model_id: int) -> dict[str, int]:
        """``{alias: version}`` of a model."""
        return {
            str(a): int(v)
            for a, v in self._fetch(
                "SELECT alias, version FROM registry_aliases WHERE model_id=? ORDER BY alias",
                (model_id,),
            )
        }

    def registry_decisions(self, model_id: int, version: int | None = None) -> list[dict[str, Any]]:
        """Approvals and rejections of a model's versions (of ``version``), oldest first."""
        sql = f"SELECT {','.join(_DECISION_COLUMNS)} FROM registry_decisions WHERE model_id=?"
        args: list[Any] = [model_id]
        if version is not None:
            sql += " AND version=?"
            args.append(version)
        return [dict(zip(_DECISION_COLUMNS, r)) for r in self._fetch(sql + " ORDER BY id", args)]

    def registry_last_change(self, model: str) -> dict[str, Any] | None:
        """The newest audit entry that changed ``model`` (gate results left out)."""
        rows = self._fetch(
            f"SELECT {','.join(AUDIT_COLUMNS)} FROM registry_audit WHERE model=? "
            "AND event != 'gate' ORDER BY seq DESC LIMIT 1",
            (model,),
        )
        return dict(zip(AUDIT_COLUMNS, rows[0])) if rows else None

    def verifications(self, run_id: str) -> list[dict[str, Any]]:
        """Passing ``nbtrack export --verify`` reproductions of a run, oldest first."""
        cols = ("run_id", "reproduced_run_id", "time", "rtol", "atol")
        return [
            dict(zip(cols, r))
            for r in self._fetch(
                f"SELECT {','.join(cols)} FROM verifications WHERE run_id=? ORDER BY time",
                (run_id,),
            )
        ]


class RegistryWriter(RegistryReads):
    """The registry's writes, valid only inside :meth:`RegistryTables.registry_transaction`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, args).fetchall()

    def create_model(
        self, name: str, description: str | None, when: float, user: str
    ) -> dict[str, Any]:
        """Insert a model; returns its row."""
        self._conn.execute(
            "INSERT INTO registry_models (name, description, created, created_by, updated) "
            "VALUES (?,?,?,?,?)",
            (name, description, when, user, when),
        )
        found = self.registry_model(name)
        assert found is not None
        return found

    def touch_model(self, model_id: int, when: float, *, changed: bool) -> None:
        """Note activity on a model; ``changed``: its stages, aliases or decisions changed,
        so a promotion checked against the old state must be refused."""
        self._conn.execute(
            "UPDATE registry_models SET updated=?, revision=revision+? WHERE id=?",
            (when, 1 if changed else 0, model_id),
        )

    def insert_version(self, model_id: int, fields: dict[str, Any]) -> int:
        """Insert the model's next version (numbered here, under the lock); returns it."""
        (last,) = self._conn.execute(
            "SELECT last_version FROM registry_models WHERE id=?", (model_id,)
        ).fetchone()
        version = int(last) + 1
        row = {**fields, "model_id": model_id, "version": version}
        values = [
            json.dumps(row[c], separators=(",", ":"), default=str) if c in _VERSION_JSON else row[c]
            for c in VERSION_COLUMNS
        ]
        self._conn.execute(
            f"INSERT INTO registry_versions ({','.join(VERSION_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(VERSION_COLUMNS))})",
            values,
        )
        self._conn.execute(
            "UPDATE registry_models SET last_version=? WHERE id=?", (version, model_id)
        )
        return version

    def open_stage(
        self,
        model_id: int,
        version: int,
        stage: str,
        since: float,
        user: str,
        reason: str | None,
    ) -> None:
        """Start a version's period in ``stage`` (its previous one must be closed first)."""
        self._conn.execute(
            f"INSERT INTO registry_stages ({','.join(_PERIOD_COLUMNS)}) VALUES (?,?,?,?,?,?,?)",
            (model_id, version, stage, since, None, user, reason),
        )

    def close_stage(self, model_id: int, version: int, until: float) -> None:
        """End a version's current stage period."""
        self._conn.execute(
            "UPDATE registry_stages SET until=? WHERE model_id=? AND version=? AND until IS NULL",
            (until, model_id, version),
        )

    def set_alias(self, model_id: int, alias: str, version: int, when: float, user: str) -> None:
        """Point ``alias`` at ``version``."""
        self._conn.execute(
            "INSERT INTO registry_aliases (model_id, alias, version, since, set_by) "
            "VALUES (?,?,?,?,?) ON CONFLICT(model_id, alias) DO UPDATE SET "
            "version=excluded.version, since=excluded.since, set_by=excluded.set_by",
            (model_id, alias, version, when, user),
        )

    def delete_alias(self, model_id: int, alias: str) -> None:
        """Remove ``alias``."""
        self._conn.execute(
            "DELETE FROM registry_aliases WHERE model_id=? AND alias=?", (model_id, alias)
        )

    def add_decision(
        self,
        model_id: int,
        version: int,
        stage: str,
        user: str,
        approved: bool,
        comment: str | None,
        when: float,
    ) -> None:
        """Record an approval or a rejection."""
        self._conn.execute(
            f"INSERT INTO registry_decisions ({','.join(_DECISION_COLUMNS)}) "
            "VALUES (?,?,?,?,?,?,?)",
            (model_id, version, stage, user, "approve" if approved else "reject", comment, when),
        )

    def audit_head(self) -> tuple[int, dict[str, Any] | None]:
        """``(entries appended so far, the newest entry present as stored)``."""
        counted = self._conn.execute("SELECT value FROM meta WHERE key='audit_seq'").fetchone()
        newest = self._conn.execute(
            f"SELECT {','.join(AUDIT_COLUMNS)} FROM registry_audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return (
            int(counted[0]) if counted else 0,
            dict(zip(AUDIT_COLUMNS, newest)) if newest else None,
        )

    def append_audit(self, entry: dict[str, Any]) -> None:
        """Append a sealed entry (``AUDIT_COLUMNS``) and count it."""
        self._conn.execute(
            f"INSERT INTO registry_audit ({','.join(AUDIT_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(AUDIT_COLUMNS))})",
            [entry[c] for c in AUDIT_COLUMNS],
        )
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ('audit_seq', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (entry["seq"],),
        )


class RegistryTables(RegistryReads):
    """The registry part of :class:`nbtrack.store.sqlite.Store` (mixed into it)."""

    if TYPE_CHECKING:

        def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

        def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

    def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._query(sql, args)

    @contextlib.contextmanager
    def registry_transaction(self) -> Iterator[RegistryWriter]:
        """One write transaction holding the store's write lock from its first statement:
        what is read through the writer cannot change before the writes commit."""
        with self.transaction() as conn:
            yield RegistryWriter(conn)

    def registry_overview(
        self,
    ) -> tuple[list[dict[str, Any]], list[tuple[int, str, list[int]]], list[tuple[int, str, int]]]:
        """Everything a list of models shows, in three queries: the model rows, ``(model id,
        stage, versions in it now)`` for every stage but archived (grouped by SQLite, so a
        model with many versions costs one row per stage), and ``(model id, alias, version)``."""
        models = [
            dict(zip(_MODEL_COLUMNS, r))
            for r in self._query(
                f"SELECT {','.join(_MODEL_COLUMNS)} FROM registry_models ORDER BY name"
            )
        ]
        stages = [
            (int(m), str(s), [int(v) for v in str(vs).split(",")])
            for m, s, vs in self._query(
                # The covering index answers this without reading the table's rows.
                "SELECT model_id, stage, group_concat(version) FROM registry_stages "
                "INDEXED BY registry_stages_open "
                "WHERE until IS NULL AND stage != 'archived' GROUP BY model_id, stage"
            )
        ]
        aliases = [
            (int(m), str(a), int(v))
            for m, a, v in self._query("SELECT model_id, alias, version FROM registry_aliases")
        ]
        return models, stages, aliases

    def registry_audit_rows(
        self, *, model: str | None = None, since_seq: int = 0
    ) -> list[dict[str, Any]]:
        """Audit entries as stored (``data`` as its JSON text), oldest first."""
        sql = f"SELECT {','.join(AUDIT_COLUMNS)} FROM registry_audit WHERE seq > ?"
        args: list[Any] = [since_seq]
        if model is not None:
            sql += " AND model=?"
            args.append(model)
        return [dict(zip(AUDIT_COLUMNS, r)) for r in self._query(sql + " ORDER BY seq", args)]

    def registry_audit_count(self) -> int:
        """How many audit entries were ever appended (deleting one does not lower it)."""
        rows = self._query("SELECT value FROM meta WHERE key='audit_seq'")
        return int(rows[0][0]) if rows else 0

    def registry_artifact_hashes(self) -> set[str]:
        """Every content hash a model version keeps (folders' files included), for gc."""
        out: set[str] = set()
        for digest, kind, meta in self._query("SELECT hash, kind, meta FROM registry_versions"):
            out.add(str(digest))
            if kind == "dir":
                out.update(json.loads(meta).get("files", {}).values())
        return out

    def record_verification(
        self, run_id: str, reproduced_run_id: str, rtol: float = 0.0, atol: float = 0.0
    ) -> None:
        """Note that ``nbtrack export --verify`` reproduced run ``run_id`` (as
        ``reproduced_run_id``): the registry's ``verified`` gate reads it."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO verifications (run_id, reproduced_run_id, time, rtol, atol, "
                "pid, hostname) VALUES (?,?,?,?,?,?,?)",
                (
                    run_id,
                    reproduced_run_id,
                    time.time(),
                    rtol,
                    atol,
                    os.getpid(),
                    socket.gethostname(),
                ),
            )


__all__ = ["AUDIT_COLUMNS", "RegistryReads", "RegistryTables", "RegistryWriter", "VERSION_COLUMNS"]
