"""What the registry hands out: versions, stages, aliases, decisions, gate results, audit
entries, as frozen dataclasses.

The registry's part of the model layer: nothing here opens the store or reads a file.
:mod:`nbtrack.registry.core` builds these records from store rows; the renderers in
:mod:`nbtrack.registry.render`, the CLI, the magics and (later) the server and the
JupyterLab panel read them. Every record has ``to_dict()`` giving the JSON that
``--json`` prints and the server sends. The stages and audit events themselves live in
:mod:`nbtrack.registry.stages` (re-exported here), below the renderers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nbtrack.registry.stages import (
    EXCLUSIVE_STAGES,
    INITIAL_STAGE,
    STAGES,
    STEP_DOWN_STAGE,
    Event,
    Stage,
    next_stage,
    stage_rank,
    step_down_stage,
)


@dataclass(frozen=True)
class Lineage:
    """Everything a version links to in the run that made it, copied when it was registered.

    Copied, not referenced: the version stays what it was even if the run is deleted.
    """

    run_id: str
    run_number: int
    run_name: str | None
    notebook: str | None
    params: dict[str, Any]
    seed: int | None
    rng_hash: str | None
    env_hash: str | None
    git: dict[str, Any]
    inputs: list[dict[str, Any]]
    code_hash: str | None
    metrics: dict[str, float]
    #: Each metric's direction as the run stored it (see :mod:`nbtrack.metrics`).
    goals: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The run's project (docs/team.md#projects); ``None`` for none or an older version.
    project: str | None = None

    @property
    def git_commit(self) -> str | None:
        """The commit the run's code was at, when it ran in a git work tree."""
        commit = self.git.get("commit")
        return str(commit) if commit else None

    @property
    def git_dirty(self) -> bool | None:
        """Whether the work tree had uncommitted edits (``None``: unknown)."""
        dirty = self.git.get("dirty")
        return None if dirty is None else bool(dirty)

    def input_hashes(self) -> dict[str, str]:
        """``{input name: content hash}`` of the data the run read."""
        return {str(i.get("name")): str(i.get("hash")) for i in self.inputs if i.get("name")}

    def to_dict(self) -> dict[str, Any]:
        """The lineage as JSON-able data (what the store keeps)."""
        return {
            "run_id": self.run_id,
            "run_number": self.run_number,
            "run_name": self.run_name,
            "notebook": self.notebook,
            "params": self.params,
            "seed": self.seed,
            "rng_hash": self.rng_hash,
            "env_hash": self.env_hash,
            "git": self.git,
            "inputs": self.inputs,
            "code_hash": self.code_hash,
            "metrics": self.metrics,
            "goals": self.goals,
            "project": self.project,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        """The inverse of :meth:`to_dict`."""
        return cls(
            run_id=str(data["run_id"]),
            run_number=int(data.get("run_number") or 0),
            run_name=data.get("run_name"),
            notebook=data.get("notebook"),
            params=dict(data.get("params") or {}),
            seed=data.get("seed"),
            rng_hash=data.get("rng_hash"),
            env_hash=data.get("env_hash"),
            git=dict(data.get("git") or {}),
            inputs=list(data.get("inputs") or []),
            code_hash=data.get("code_hash"),
            metrics={str(k): float(v) for k, v in (data.get("metrics") or {}).items()},
            goals=dict(data.get("goals") or {}),
            project=data.get("project"),
        )


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a registered model: an artifact of a run, with its lineage."""

    model: str
    version: int
    stage: Stage
    artifact: str  # the artifact's name in the run
    kind: str  # how it is stored (see nbtrack.artifacts)
    hash: str  # content hash of the artifact
    size: int
    meta: dict[str, Any]
    lineage: Lineage
    created: float
    created_by: str
    host: str
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The version's canonical reference, ``models:/name/3``."""
        return f"models:/{self.model}/{self.version}"

    @property
    def metrics(self) -> dict[str, float]:
        """The run's metrics when the version was registered."""
        return self.lineage.metrics

    def __str__(self) -> str:
        from nbtrack.registry.render import version_text

        return version_text(self)

    def _repr_html_(self) -> str:
        from nbtrack.registry.render import version_html

        return version_html(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data (``nbtrack models show --json``)."""
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "stage": str(self.stage),
            "aliases": list(self.aliases),
            "artifact": {
                "name": self.artifact,
                "kind": self.kind,
                "hash": self.hash,
                "size": self.size,
                "meta": self.meta,
            },
            "lineage": self.lineage.to_dict(),
            "created": self.created,
            "created_by": self.created_by,
            "host": self.host,
        }


@dataclass(frozen=True)
class StagePeriod:
    """A version's time in one stage: from ``since`` until ``until`` (``None``: still there)."""

    model: str
    version: int
    stage: Stage
    since: float
    until: float | None
    by: str | None = None  # who moved it in
    reason: str | None = None

    def covers(self, moment: float) -> bool:
        """Whether the version was in the stage at ``moment``."""
        return self.since <= moment and (self.until is None or moment < self.until)

    def overlaps(self, start: float, end: float) -> bool:
        """Whether the version was in the stage at some moment of ``[start, end)``."""
        return self.since < end and (self.until is None or self.until > start)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        return {
            "model": self.model,
            "version": self.version,
            "stage": str(self.stage),
            "since": self.since,
            "until": self.until,
            "by": self.by,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Decision:
    """An approval or a rejection of a version for a stage."""

    model: str
    version: int
    stage: Stage
    user: str
    approved: bool
    comment: str | None
    time: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        return {
            "model": self.model,
            "version": self.version,
            "stage": str(self.stage),
            "user": self.user,
            "decision": "approve" if self.approved else "reject",
            "comment": self.comment,
            "time": self.time,
        }


@dataclass(frozen=True)
class GateResult:
    """One check of a promotion: a validation gate, the approvals, or who may promote."""

    gate: str  # what was checked, as the user wrote it: "val_acc >= 0.95"
    passed: bool
    detail: str  # the values that decided it: "0.962 >= 0.95"
    key: str = ""  # where it is declared: "nbtrack.toml: registry.stages.production.metrics"
    kind: str = "gate"  # "gate" (validation; --force may override), "approvals"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        return {
            "gate": self.gate,
            "passed": self.passed,
            "detail": self.detail,
            "key": self.key,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class GateReport:
    """Every check of moving one version into one stage, and the verdict."""

    model: str
    version: int
    stage: Stage
    results: tuple[GateResult, ...]
    policy_file: str | None  # where the gates came from (None: no registry policy declared)

    @property
    def passed(self) -> bool:
        """Every check passed."""
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[GateResult, ...]:
        """The checks that did not pass."""
        return tuple(r for r in self.results if not r.passed)

    def __str__(self) -> str:
        from nbtrack.registry.render import gate_text

        return gate_text(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data (``nbtrack models gate --json``)."""
        return {
            "model": self.model,
            "version": self.version,
            "stage": str(self.stage),
            "passed": self.passed,
            "policy_file": self.policy_file,
            "results": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class AuditEntry:
    """One line of the tamper-evident audit log.

    ``hash`` covers every other field and ``prev_hash``, the hash of the entry before, so
    editing or deleting an entry breaks the chain (:func:`nbtrack.registry.audit.verify_chain`).
    """

    seq: int
    time: float
    user: str
    host: str
    event: str  # an Event value
    model: str | None
    version: int | None
    stage: str | None
    reason: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data: one line of ``nbtrack models audit --json``."""
        return {
            "seq": self.seq,
            "time": self.time,
            "user": self.user,
            "host": self.host,
            "event": str(self.event),
            "model": self.model,
            "version": self.version,
            "stage": self.stage,
            "reason": self.reason,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class AuditCheck:
    """The outcome of verifying the audit chain."""

    entries: int
    head: str  # the last entry's hash: note it elsewhere to detect a rewrite of the whole log
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """No entry was edited, deleted or inserted."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class ModelSummary:
    """One registered model at a glance: its versions per stage and its aliases."""

    name: str
    description: str | None
    versions: int
    latest: int
    stages: dict[str, list[int]]  # stage -> versions in it now (archived left out)
    aliases: dict[str, int]
    created: float
    updated: float

    @property
    def production(self) -> int | None:
        """The version in production, if any."""
        found = self.stages.get(Stage.PRODUCTION.value)
        return found[0] if found else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        return {
            "name": self.name,
            "description": self.description,
            "versions": self.versions,
            "latest": self.latest,
            "stages": self.stages,
            "aliases": self.aliases,
            "created": self.created,
            "updated": self.updated,
        }


@dataclass(frozen=True)
class Promotion:
    """A checked move of one version into a stage, ready to commit.

    ``revision`` is the model's revision the checks saw: committing refuses when another
    process changed the model's stages, aliases or approvals since.
    """

    model: str
    version: int
    from_stage: Stage
    to_stage: Stage
    event: Event  # promote, demote, archive or rollback
    revision: int
    user: str
    reason: str | None
    report: GateReport | None  # None: no gates apply (a demotion, an archive, a rollback)
    forced: bool  # failed validation gates overridden with --force (and a reason)
    step_down: int | None  # the version leaving the stage to make room, if any
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        return {
            "model": self.model,
            "version": self.version,
            "from": str(self.from_stage),
            "to": str(self.to_stage),
            "event": str(self.event),
            "revision": self.revision,
            "user": self.user,
            "reason": self.reason,
            "report": self.report.to_dict() if self.report is not None else None,
            "forced": self.forced,
            "step_down": self.step_down,
        }


@dataclass(frozen=True)
class Outcome:
    """What a registry action did, for the edges to show: a message and its audit entry."""

    message: str
    entry: AuditEntry | None
    version: ModelVersion | None = None
    report: GateReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        return {
            "message": self.message,
            "entry": self.entry.to_dict() if self.entry is not None else None,
            "version": self.version.to_dict() if self.version is not None else None,
            "report": self.report.to_dict() if self.report is not None else None,
        }


__all__ = [
    "AuditCheck",
    "AuditEntry",
    "Decision",
    "EXCLUSIVE_STAGES",
    "Event",
    "GateReport",
    "GateResult",
    "INITIAL_STAGE",
    "Lineage",
    "ModelSummary",
    "ModelVersion",
    "Outcome",
    "Promotion",
    "STAGES",
    "STEP_DOWN_STAGE",
    "Stage",
    "StagePeriod",
    "next_stage",
    "stage_rank",
    "step_down_stage",
]
