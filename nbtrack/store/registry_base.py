"""The model registry's part of the store interface (:class:`~nbtrack.store.base.TrackingStore`
includes it), so a team store (PostgreSQL) offers the registry the same methods.

Values are plain: rows come back as dicts with their JSON columns decoded (the audit log's
``data`` stays the JSON text its hash covers). Every change happens inside
:meth:`RegistryStore.registry_transaction`, whose writer reads and writes under the store's
write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a lock on the model's row), so the
registry's check-then-write is atomic across processes and machines.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

__all__ = ["RegistryReadsProtocol", "RegistryStore", "RegistryWrites"]


class RegistryReadsProtocol(Protocol):
    """Reads available both on the store and on a writer inside its transaction."""

    def registry_model(self, name: str) -> dict[str, Any] | None:
        """The model row (id, name, description, created, created_by, updated, revision,
        last_version), or ``None``."""
        ...

    def registry_versions(self, model_id: int, version: int | None = None) -> list[dict[str, Any]]:
        """A model's version rows (or the one numbered ``version``), oldest first."""
        ...

    def registry_version_of_run(self, model_id: int, run_id: str, artifact: str) -> int | None:
        """The version already registered from this run's artifact, if any."""
        ...

    def registry_current_stages(self, model_id: int) -> dict[int, tuple[str, float]]:
        """``{version: (stage, since)}`` now."""
        ...

    def registry_stage_periods(
        self, model_id: int, *, stage: str | None = None, version: int | None = None
    ) -> list[dict[str, Any]]:
        """Stage periods (version, stage, since, until, by_user, reason), oldest first."""
        ...

    def registry_aliases(self, model_id: int) -> dict[str, int]:
        """``{alias: version}``."""
        ...

    def registry_decisions(self, model_id: int, version: int | None = None) -> list[dict[str, Any]]:
        """Approval and rejection rows, oldest first."""
        ...

    def registry_last_change(self, model: str) -> dict[str, Any] | None:
        """The newest audit row that changed ``model`` (gate results left out)."""
        ...

    def verifications(self, run_id: str) -> list[dict[str, Any]]:
        """Passing ``nbtrack export --verify`` reproductions of a run."""
        ...


class RegistryWrites(RegistryReadsProtocol, Protocol):
    """What :meth:`RegistryStore.registry_transaction` yields: reads plus writes, all
    inside one transaction that holds the store's write lock."""

    def create_model(
        self, name: str, description: str | None, when: float, user: str
    ) -> dict[str, Any]:
        """Insert a model; returns its row."""
        ...

    def touch_model(self, model_id: int, when: float, *, changed: bool) -> None:
        """Note activity; ``changed`` bumps the model's revision."""
        ...

    def insert_version(self, model_id: int, fields: dict[str, Any]) -> int:
        """Insert the model's next version; returns its number."""
        ...

    def open_stage(
        self, model_id: int, version: int, stage: str, since: float, user: str, reason: str | None
    ) -> None:
        """Start a stage period."""
        ...

    def close_stage(self, model_id: int, version: int, until: float) -> None:
        """End a version's current stage period."""
        ...

    def set_alias(self, model_id: int, alias: str, version: int, when: float, user: str) -> None:
        """Point an alias at a version."""
        ...

    def delete_alias(self, model_id: int, alias: str) -> None:
        """Remove an alias."""
        ...

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
        ...

    def audit_head(self) -> tuple[int, dict[str, Any] | None]:
        """``(entries appended so far, the newest audit row present)``."""
        ...

    def append_audit(self, entry: dict[str, Any]) -> None:
        """Append a sealed audit row and count it."""
        ...


class RegistryStore(RegistryReadsProtocol, Protocol):
    """The registry methods a store offers."""

    def registry_transaction(self) -> contextlib.AbstractContextManager[RegistryWrites]:
        """A write transaction for the registry's check-then-write."""
        ...

    def registry_overview(
        self,
    ) -> tuple[list[dict[str, Any]], list[tuple[int, str, list[int]]], list[tuple[int, str, int]]]:
        """Model rows, (model id, stage, versions in it now) for every stage but archived,
        and (model id, alias, version)."""
        ...

    def registry_audit_rows(
        self, *, model: str | None = None, since_seq: int = 0
    ) -> list[dict[str, Any]]:
        """Audit rows as stored, oldest first."""
        ...

    def registry_audit_count(self) -> int:
        """How many audit entries were ever appended."""
        ...

    def registry_artifact_hashes(self) -> set[str]:
        """Every content hash a model version keeps (gc must not free them)."""
        ...

    def record_verification(
        self, run_id: str, reproduced_run_id: str, rtol: float = 0.0, atol: float = 0.0
    ) -> None:
        """Note that ``nbtrack export --verify`` reproduced ``run_id``."""
        ...


if TYPE_CHECKING:
    # mypy checks here that the SQLite store keeps the interface.
    from nbtrack.store.sqlite import Store

    def _conforms(store: Store) -> RegistryStore:
        return store
