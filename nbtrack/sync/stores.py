"""Copy runs between two nbtrack stores by global run id (``nbtrack push`` / ``pull``).

Run ids are global and numbers are per store, so a run is "already there" when the target
holds its id; it then gets a number of the target's own. Everything goes through the store
interface (:class:`~nbtrack.store.base.TrackingStore`), so SQLite and PostgreSQL stores mix.

Why a copy survives being killed: the store interface has no transaction spanning a run row,
its metrics and its artifacts, so a run is written in an order that a rerun can detect and
finish. Content first (blobs and artifact files, both idempotent by hash), then the run row
carrying a marker in ``extra`` (:data:`INCOMPLETE`), then its metrics and artifact records,
and last the row's real ``extra`` (the marker gone). A rerun that finds the marker deletes
that partial copy and copies the run again, so the target ends with exactly one copy.

A source row marked :data:`CONTINUATION` is not a run of its own but the end of one the
target already holds: a database run whose connection dropped before its last points and
its outcome were written, kept in the outbox (:mod:`nbtrack.sync.outbox`). It is never
copied as a new run; :func:`complete_run` adds the artifacts saved while the target was
down, appends the points the target lacks and applies the outcome, in an order a rerun can
repeat without writing any point or artifact record twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbtrack.errors import ArtifactError, NbtrackError, SyncError, UnknownRunError
from nbtrack.store.base import TrackingStore

__all__ = [
    "CONTINUATION",
    "INCOMPLETE",
    "SyncReport",
    "complete_run",
    "copy_artifact_content",
    "copy_runs",
    "copy_sweeps",
    "needs_copy",
]

#: Key put in a copied run's ``extra`` until the copy is complete.
INCOMPLETE = "_nbtrack_sync_incomplete"
#: Key in the ``extra`` of an outbox row that continues a run of the target:
#: ``{"flushed": {metric: points the target had been sent}, "apply": [final columns]}``.
CONTINUATION = "_nbtrack_continuation"

#: Which blob kind each blob-hash column holds (nbtrack/tracker.py writes them).
_BLOB_COLUMNS = {"code_hash": "code", "env_hash": "env", "rng_hash": "rng"}


@dataclass
class SyncReport:
    """What a push or pull did: run ids copied, updated (a copy that was still running or
    left half-written, or a run completed by its continuation), skipped (already there),
    failed (not copied: unreadable content in the source, or a continuation whose run the
    target does not hold as expected) and problems (one line each)."""

    source: str
    target: str
    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (``--json``)."""
        return {
            "source": self.source,
            "target": self.target,
            "copied": self.copied,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": self.failed,
            "sweeps": self.sweeps,
            "problems": self.problems,
        }

    def text(self) -> str:
        """One line (plus one per problem) for people."""
        line = (
            f"{self.source} -> {self.target}: {len(self.copied)} run(s) copied, "
            f"{len(self.updated)} updated, {len(self.skipped)} already there"
        )
        if self.failed:
            line += f", {len(self.failed)} not copied"
        if self.sweeps:
            line += f", {len(self.sweeps)} sweep(s)"
        return "\n".join([line, *(f"  warning: {p}" for p in self.problems)])


def _state(target: TrackingStore, run_id: str) -> dict[str, Any] | None:
    try:
        return target.run_row(run_id)
    except UnknownRunError:
        return None


def needs_copy(source_row: dict[str, Any], target_row: dict[str, Any] | None) -> str | None:
    """``"copy"``, ``"update"`` or ``None`` (nothing to do) for one run.

    A target copy is replaced when it is half-written (a push killed midway) or when it
    was copied while still running and the source has moved on since. Such a copy may
    read "crashed" by then: the target marks a running copy crashed once the process it
    names has ended (the source's process, which finished the run), so a crashed copy
    whose source says otherwise, or holds other metrics, is replaced too.
    """
    if target_row is None:
        return "copy"
    if INCOMPLETE in (target_row.get("extra") or {}):
        return "update"
    if target_row["status"] in ("running", "crashed") and (
        source_row["status"] != target_row["status"]
        or source_row.get("metrics") != target_row["metrics"]
    ):
        return "update"
    return None


def _copy_blobs(source: TrackingStore, target: TrackingStore, row: dict[str, Any]) -> list[str]:
    wanted: dict[str, str] = {row[c]: kind for c, kind in _BLOB_COLUMNS.items() if row.get(c)}
    for entry in row.get("history") or []:
        wanted.setdefault(str(entry[1]), "code")
    found = source.get_blobs(list(wanted))
    problems = []
    for digest, kind in wanted.items():
        data = found.get(digest)
        if data is None:
            problems.append(f"run {row['id'][:8]}: blob {digest[:12]} is missing in the source")
            continue
        if target.put_blob(kind, data) != digest:
            raise SyncError(
                f"blob {digest} hashes differently in the target store; the stores use "
                "different content hashes, so they cannot be synced"
            )
    return problems


def copy_artifact_content(
    source: TrackingStore,
    target: TrackingStore,
    run_id: str,
    kind: str,
    digest: str,
    meta: dict[str, Any],
) -> None:
    """Copy one artifact's content of run ``run_id`` from ``source`` into ``target``'s
    artifact storage: the content ``digest`` and, for a folder (``kind == "dir"``), each of
    its files, which the target's record requires too. Idempotent by hash (present content
    is not copied again). Raises :class:`~nbtrack.errors.ArtifactError` when the source's
    content is missing or damaged."""
    digests = [digest]
    if kind == "dir":
        digests += [str(d) for d in (meta.get("files") or {}).values()]
    for wanted in dict.fromkeys(digests):
        stored, _ = target.put_artifact_file(source.artifact_file(wanted))
        if stored != wanted:
            raise ArtifactError(
                f"artifact {wanted} of run {run_id[:8]} reads back as {stored}: the source "
                "file is damaged; run `nbtrack gc --verify` on the source store"
            )


def _copy_artifact_content(
    source: TrackingStore, target: TrackingStore, run_id: str
) -> list[tuple[str, str, str, int, dict[str, Any]]]:
    records = source.artifacts(run_id)
    for _name, kind, digest, _size, meta in records:
        copy_artifact_content(source, target, run_id, kind, digest, meta)
    return records


def _copy_run(
    source: TrackingStore, target: TrackingStore, row: dict[str, Any], *, replace: bool
) -> list[str]:
    run_id = str(row["id"])
    problems = _copy_blobs(source, target, row)
    artifacts = _copy_artifact_content(source, target, run_id)
    if replace:  # only once the content is safe in the target
        target.delete_runs([run_id])
    fields = {k: v for k, v in row.items() if k not in ("id", "number")}
    extra = dict(fields.get("extra") or {})
    fields["extra"] = {**extra, INCOMPLETE: True}
    target.create_run(run_id, fields)
    points = [
        (key, int(step), float(value), float(ts))
        for key, series in source.metric_history(run_id).items()
        for step, value, ts in series
    ]
    for start in range(0, len(points), 50_000):
        target.append_metrics(run_id, points[start : start + 50_000])
    for name, kind, digest, size, meta in artifacts:
        target.add_artifact(run_id, name, kind, digest, size, meta)
    # The last write: the marker goes, and the row reads exactly as in the source.
    target.update_run(run_id, {"extra": extra, "metrics": row.get("metrics") or {}})
    return problems


def complete_run(source: TrackingStore, target: TrackingStore, row: dict[str, Any]) -> str | None:
    """Complete the target's run from its continuation ``row`` in ``source``; returns
    ``None`` when done, else the one-line reason it was not (the continuation stays).

    No transaction spans the two stores, so the target's own points say what it has:
    for each metric, with ``flushed`` points sent before the connection dropped and ``n``
    in the target, the continuation's ``tail`` goes on from ``tail[n - flushed:]``. That
    also absorbs a batch the target committed but never acknowledged, and a push cut off
    after appending (its rerun appends nothing). Artifacts the continuation holds go first
    (content, then the records the target lacks by name and hash), the points in one
    append, then the final columns in one update: rerun at any point, each point and
    artifact record ends up there once.
    """
    run_id = str(row["id"])
    marker = (row.get("extra") or {})[CONTINUATION]
    label = f"run {run_id[:8]} (continued in {source.shown})"
    if _state(target, run_id) is None:
        return (
            f"{label}: the target has no such run to complete (was it deleted?); its "
            "continuation stays: push it elsewhere with `nbtrack push --store` or delete it"
        )
    flushed: dict[str, int] = {str(k): int(v) for k, v in (marker.get("flushed") or {}).items()}
    tail = source.metric_history(run_id)
    present = target.metric_counts(run_id)  # counted there: no point is read back
    points: list[tuple[str, int, float, float]] = []
    for key in dict.fromkeys([*present, *tail]):
        series = tail.get(key, [])
        done = present.get(key, 0) - flushed.get(key, 0)
        if not 0 <= done <= len(series):
            return (
                f"{label}: metric {key!r} has {present.get(key, 0)} point(s) in the target, "
                f"expected {flushed.get(key, 0)} to {flushed.get(key, 0) + len(series)}; "
                "not completed, its continuation stays"
            )
        points.extend(
            (key, int(step), float(value), float(ts)) for step, value, ts in series[done:]
        )
    apply = [str(c) for c in marker.get("apply") or []]
    # Blobs the final columns refer to (an environment that changed during the run) first:
    # the outbox wrote them, the target may lack them.
    problems = _copy_blobs(source, target, {"id": run_id, **{c: row[c] for c in apply}})
    if problems:
        return f"{problems[0]}; not completed, its continuation stays"
    try:
        _complete_artifacts(source, target, run_id)
    except ArtifactError as exc:
        return f"{label}: {exc}; not completed, its continuation stays"
    if points:
        target.append_metrics(run_id, points)
    fields = {column: row[column] for column in apply}
    if "extra" in fields:
        fields["extra"] = {k: v for k, v in fields["extra"].items() if k != CONTINUATION}
    target.update_run(run_id, fields)
    return None


def _complete_artifacts(source: TrackingStore, target: TrackingStore, run_id: str) -> None:
    """Add to the target's run the artifacts its continuation holds (saved while the
    database was down): content first, then each record the target lacks, judged by name
    and hash, so a push cut off after some records and run again adds none twice (a name
    the target holds with other content, saved before the outage, is replaced: the later
    save wins, as it would have in the database)."""
    records = source.artifacts(run_id)
    if not records:
        return
    present = {(name, digest) for name, _kind, digest, _size, _meta in target.artifacts(run_id)}
    for name, kind, digest, size, meta in records:
        if (name, digest) in present:
            continue
        copy_artifact_content(source, target, run_id, kind, digest, meta)
        target.add_artifact(run_id, name, kind, digest, size, meta)


def copy_runs(
    source: TrackingStore,
    target: TrackingStore,
    refs: Sequence[object] = (),
    *,
    source_name: str = "",
    target_name: str = "",
    progress: Callable[[str, str], None] | None = None,
) -> SyncReport:
    """Copy runs (all, or those ``refs`` name in the source) from ``source`` to ``target``.

    Idempotent: a run already complete in the target is skipped; a half-written copy or
    one copied while still running is replaced. Blobs and artifacts go by hash, so the
    copy's metrics, blobs and artifact hashes are byte-identical to the source's.
    """
    report = SyncReport(source_name or source.shown, target_name or target.shown)
    ids = (
        [source.resolve(ref) for ref in refs]
        if refs
        else [str(r[0]) for r in source.list_runs(columns=("id",))]
    )
    for run_id in dict.fromkeys(ids):
        row = source.run_row(run_id)
        if INCOMPLETE in (row.get("extra") or {}):
            continue  # a half-written copy in the source itself: its own push will finish it
        if CONTINUATION in (row.get("extra") or {}):
            # The end of a run the target holds: completed in place, never a new run.
            problem = complete_run(source, target, row)
            if problem is None:
                report.updated.append(run_id)
            else:
                report.failed.append(run_id)
                report.problems.append(problem)
            continue
        action = needs_copy(row, _state(target, run_id))
        if action is None:
            report.skipped.append(run_id)
            continue
        try:
            report.problems.extend(_copy_run(source, target, row, replace=action == "update"))
        except ArtifactError as exc:
            # Its content is unreadable in the source: nothing of this run was written;
            # the other runs still go.
            report.failed.append(run_id)
            report.problems.append(f"run #{row['number']} not copied: {exc}")
            continue
        (report.copied if action == "copy" else report.updated).append(run_id)
        if progress is not None:
            progress(action, run_id)
    if not refs:
        report.sweeps, problems = copy_sweeps(source, target)
        report.problems.extend(problems)
    return report


def copy_sweeps(source: TrackingStore, target: TrackingStore) -> tuple[list[str], list[str]]:
    """Copy the sweeps the target lacks, with their trials' links to runs and their Optuna
    studies; returns their ids and one line per problem.

    A sweep is copied once (by id); its trial links are written again on every call, and
    the finished trials its study lacks in the target are added, so a sweep that went on
    after an earlier push gets its new trials. The target's study lives where the target
    keeps its sweeps' studies (a journal file beside a SQLite store, Optuna's tables in a
    PostgreSQL store's database), so ``nbtrack sweep`` commands, ``get_sweep(...).study``
    and ``--resume`` work on the copy.
    """
    from nbtrack.errors import UnknownSweepError
    from nbtrack.sweeps.study import copy_study, storage_for

    copied: list[str] = []
    problems: list[str] = []
    for sweep in source.list_sweeps():
        sweep_id = str(sweep["id"])
        try:
            storage = str(target.sweep_row(sweep_id)["storage"])
        except UnknownSweepError:
            storage = None
        if storage is None:
            storage = storage_for(target, sweep_id)  # type: ignore[arg-type]
            fields = {k: v for k, v in sweep.items() if k not in ("id", "number")}
            target.create_sweep(sweep_id, {**fields, "storage": storage})
            copied.append(sweep_id)
        else:
            target.update_sweep(
                sweep_id, {"status": sweep["status"], "end_time": sweep["end_time"]}
            )
        for trial in source.sweep_trials(sweep_id):
            target.set_sweep_trial(
                sweep_id, int(trial["trial"]), trial["run_id"], trial["state"], trial["value"]
            )
        label = f"sweep #{sweep['number']} ({sweep_id[:8]})"
        try:
            copy_study(
                source,  # type: ignore[arg-type]
                str(sweep["storage"]),
                target,  # type: ignore[arg-type]
                storage,
                str(sweep["study_name"]),
            )
        except ImportError:
            problems.append(
                f"{label}: its Optuna study was not copied: optuna is not installed "
                "(pip install 'nbtrack[sweeps]'), the next push copies it"
            )
        except (NbtrackError, OSError) as exc:
            problems.append(f"{label}: its Optuna study was not copied: {exc}")
    return copied, problems
