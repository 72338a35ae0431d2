"""The store interface the core uses, as a :class:`typing.Protocol`.

:class:`nbtrack.store.sqlite.Store` implements it; a team store (PostgreSQL) implements
the same methods, and a conformance test suite runs against both. Only what the core
calls is here (the tracker, queries, export, sweeps): runs, metrics, blobs, artifacts,
sweeps. Growing the store means adding the method here first.

Values are plain: JSON columns go in and come out decoded (``run_row``), run references
resolve to ids (``resolve``), every error is an :class:`~nbtrack.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nbtrack.store.registry_base import RegistryStore

__all__ = ["TrackingStore"]


@runtime_checkable
class TrackingStore(RegistryStore, Protocol):
    """What a store offers the core: runs, metrics, blobs, artifacts and sweeps, and the
    model registry's tables (:class:`~nbtrack.store.registry_base.RegistryStore`)."""

    #: Where the store lives (for a local store: its folder; sweeps keep their Optuna
    #: journal beside it).
    path: Path

    @property
    def shown(self) -> str:
        """How messages name the store: its folder, or its URL with the password redacted."""
        ...

    @property
    def location(self) -> str:
        """The store as ``NBTRACK_STORE`` names it, for child processes (never shown)."""
        ...

    @property
    def schema_version(self) -> int:
        """The schema version the store is at."""
        ...

    def close(self) -> None:
        """Release the connection; the store can be reopened."""
        ...

    # -- runs ---------------------------------------------------------------------------
    def create_run(self, run_id: str, fields: dict[str, Any]) -> int:
        """Insert a run; returns its per-store number."""
        ...

    def update_run(self, run_id: str, fields: dict[str, Any]) -> None:
        """Set some columns of one run."""
        ...

    def run_row(self, run_id: str) -> dict[str, Any]:
        """One run's columns, JSON decoded; :class:`UnknownRunError` when absent."""
        ...

    def resolve(self, ref: object) -> str:
        """The id of the run a number, ``#number``, id (prefix) or ``"last"`` names."""
        ...

    def list_runs(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        columns: Sequence[str] = ...,
        notebook: str | None = None,
        user: str | None = None,
        project: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows of ``columns`` of the runs matching the filters, by number."""
        ...

    def count_runs(self) -> int:
        """How many runs the store holds."""
        ...

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Delete runs with their metrics and artifact records."""
        ...

    def mark_crashed(self) -> int:
        """Mark runs whose process is gone as crashed; returns how many."""
        ...

    # -- metrics ------------------------------------------------------------------------
    def append_metrics(
        self,
        run_id: str,
        points: Sequence[tuple[str, int, float, float]],
        latest: dict[str, float] | None = None,
    ) -> None:
        """Append ``(key, step, value, timestamp)`` points (and each metric's last value)."""
        ...

    def metric_history(self, run_id: str) -> dict[str, list[tuple[int, float, float]]]:
        """Every point of every metric of a run."""
        ...

    def metric_points(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one metric, in logging order."""
        ...

    def metric_counts(self, run_id: str) -> dict[str, int]:
        """How many points each metric of a run has (one query; no point is read)."""
        ...

    # -- blobs ----------------------------------------------------------------------------
    def check_blob_cache(self) -> None:
        """Forget cached blob hashes when another process collected garbage."""
        ...

    def put_blob(self, kind: str, data: bytes) -> str:
        """Store ``data`` once by content; returns its hash."""
        ...

    def put_blobs(self, kind: str, items: Iterable[bytes]) -> list[str]:
        """Store many blobs; returns their hashes in order."""
        ...

    def put_texts(self, kind: str, texts: Sequence[str]) -> list[str]:
        """Store texts as blobs; returns their hashes in order."""
        ...

    def get_blob(self, digest: str) -> bytes | None:
        """A blob's content, or ``None``."""
        ...

    def get_blobs(self, digests: Sequence[str]) -> dict[str, bytes]:
        """The blobs found among ``digests``."""
        ...

    # -- artifacts ----------------------------------------------------------------------
    def artifact_file(self, digest: str) -> Path:
        """Where the content with hash ``digest`` lives."""
        ...

    def put_artifact_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes by content; returns ``(hash, size)``."""
        ...

    def put_artifact_file(self, source: Path) -> tuple[str, int]:
        """Copy a file in by content; returns ``(hash, size)``."""
        ...

    def add_artifact(
        self, run_id: str, name: str, kind: str, digest: str, size: int, meta: dict[str, Any]
    ) -> None:
        """Attach stored content to a run under ``name``."""
        ...

    def artifacts(self, run_id: str) -> list[tuple[str, str, str, int, dict[str, Any]]]:
        """``(name, kind, hash, size, meta)`` of each artifact of a run."""
        ...

    def gc(
        self, grace: float = 60.0, *, verify: bool = False, shared: bool = False
    ) -> dict[str, int]:
        """Delete content no run refers to; returns what was freed (``shared``: also in a
        configured artifact location other stores may use; see :meth:`Store.gc`)."""
        ...

    # -- sweeps -----------------------------------------------------------------------------
    def create_sweep(self, sweep_id: str, fields: dict[str, Any]) -> int:
        """Insert a sweep; returns its per-store number."""
        ...

    def update_sweep(self, sweep_id: str, fields: dict[str, Any]) -> None:
        """Set some columns of one sweep."""
        ...

    def sweep_row(self, sweep_id: str) -> dict[str, Any]:
        """One sweep's columns, JSON decoded; :class:`UnknownSweepError` when absent."""
        ...

    def resolve_sweep(self, ref: object) -> str:
        """The id of the sweep a number, ``#number``, id (prefix) or ``"last"`` names."""
        ...

    def list_sweeps(self, *, name: str | None = None) -> list[dict[str, Any]]:
        """Every sweep (of ``name``), oldest first."""
        ...

    def claim_sweep_trial(self, sweep_id: str, trial: int) -> None:
        """Record that this process runs trial ``trial`` of a sweep."""
        ...

    def set_sweep_trial(
        self,
        sweep_id: str,
        trial: int,
        run_id: str | None,
        state: str,
        value: float | None = None,
    ) -> None:
        """Link trial ``trial`` of a sweep to its run, with its state and value."""
        ...

    def sweep_trials(self, sweep_id: str) -> list[dict[str, Any]]:
        """A sweep's trials: ``trial``, ``run_id``, ``state``, ``value``, ``pid``,
        ``hostname``."""
        ...


if TYPE_CHECKING:
    # mypy checks here that the SQLite store keeps the interface.
    from nbtrack.store.sqlite import Store

    def _conforms(store: Store) -> TrackingStore:
        return store
