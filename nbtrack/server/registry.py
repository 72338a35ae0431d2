"""The JSON the panel's Models section reads and the registry actions it takes: pure
functions over the notebook's store, no tornado.

Each function opens the notebook's store (:func:`~nbtrack.server.payloads.open_notebook_store`),
makes a :class:`~nbtrack.registry.Registry` whose policy file is found from the notebook's
folder upwards (as the kernel's would be), calls it, and returns plain JSON-able dicts. Who
acts is the registry's own rule (``$NBTRACK_USER`` of the server, else git's identity in
the notebook's folder, else the login name), so the panel acts as the kernel would. Every
rule — gates, approvals, who may promote, which version a rollback brings back — is the
registry's; nothing here decides.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbtrack import config
from nbtrack.errors import RegistryError
from nbtrack.identity import current_user
from nbtrack.registry import Registry, Stage, parse_stage
from nbtrack.registry.records import (
    EXCLUSIVE_STAGES,
    STAGES,
    GateReport,
    ModelVersion,
    next_stage,
    step_down_stage,
)
from nbtrack.server.payloads import NoStoreError, json_object, open_notebook_store, store_dir_for


@contextlib.contextmanager
def notebook_registry(notebook: Path) -> Iterator[Registry]:
    """The registry of ``notebook``'s store, for this request only."""
    with open_notebook_store(notebook) as store:
        yield Registry(store, cwd=notebook.parent)


def _policy(reg: Registry) -> tuple[str | None, str | None]:
    """(policy file, the line saying why it cannot be read): a broken file is shown, not
    fatal, where nothing depends on it (listing models)."""
    try:
        source = reg.policy.source
    except RegistryError as exc:
        return None, str(exc)
    return (str(source) if source is not None else None), None


def models_payload(notebook: Path) -> dict[str, Any]:
    """Every model of the notebook's store: versions, who is in each stage, aliases.

    A notebook without a store is not an error here: the payload says so in ``message``.
    """
    user = current_user(notebook.parent)
    try:
        with notebook_registry(notebook) as reg:
            models = [m.to_dict() | {"production": m.production} for m in reg.models()]
            policy_file, policy_error = _policy(reg)
    except NoStoreError as exc:
        return {
            "store": config.shown_location(store_dir_for(notebook)),
            "store_exists": False,
            "models": [],
            "stages": [str(s) for s in STAGES],
            "user": user,
            "policy_file": None,
            "policy_error": None,
            "message": str(exc),
        }
    return json_object(
        {
            "store": config.shown_location(store_dir_for(notebook)),
            "store_exists": True,
            "models": models,
            "stages": [str(s) for s in STAGES],
            "user": user,
            "policy_file": policy_file,
            "policy_error": policy_error,
            "message": None,
        }
    )


def _gate(reg: Registry, version: ModelVersion, stage: Stage) -> dict[str, Any]:
    """The gate report for moving ``version`` into ``stage`` now, or the one line saying
    why it cannot be evaluated (a gate naming a metric the version never logged)."""
    try:
        return {"report": reg.check(version.model, version.version, stage).to_dict(), "error": None}
    except RegistryError as exc:
        return {"report": None, "error": str(exc)}


def model_payload(notebook: Path, name: str, stage: str | None = None) -> dict[str, Any]:
    """One model in full: each version with its lineage (back to its run, and whether that
    run still exists), its decisions, its stage history, and the gate results for ``stage``
    (default: each version's next stage; none for production and archived versions)."""
    target = parse_stage(stage) if stage else None
    with notebook_registry(notebook) as reg:
        versions = reg.versions(name)  # first: an unknown model is a 404 before anything else
        summary = next(m for m in reg.models() if m.name == name)
        decisions = reg.decisions(name)
        periods = reg.history(name)
        policy_file, policy_error = _policy(reg)
        out = []
        for version in reversed(versions):  # newest first, as the panel lists them
            into = target or next_stage(version.stage)
            movable = into is not None and version.stage not in (into, Stage.ARCHIVED)
            facts = reg.run_facts(version)
            item = version.to_dict()
            item["run"] = {
                "number": version.lineage.run_number,
                "id": version.lineage.run_id,
                "name": version.lineage.run_name,
                "status": facts.status,  # None: the run was deleted; the version stays
                "verified_by": facts.verified_by,
            }
            item["decisions"] = [d.to_dict() for d in decisions if d.version == version.version]
            item["periods"] = [p.to_dict() for p in periods if p.version == version.version]
            item["target"] = str(into) if movable and into is not None else None
            item["gate"] = (
                _gate(reg, version, into)
                if movable and into is not None and not policy_error
                else None
            )
            out.append(item)
        return json_object(
            {
                "model": summary.to_dict() | {"production": summary.production},
                "versions": out,
                "user": reg.user,
                "policy_file": policy_file,
                "policy_error": policy_error,
                "stages": [str(s) for s in STAGES],
            }
        )


def _holders(reg: Registry, name: str, stage: Stage) -> list[int]:
    summary = next(m for m in reg.models() if m.name == name)
    return list(summary.stages.get(str(stage), []))


def promote_payload(
    notebook: Path,
    name: str,
    version: int,
    stage: str,
    *,
    reason: str | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Promote (or demote, or archive) ``name`` v``version`` into ``stage``.

    ``dry_run``: evaluate the gates and approvals and say who is in the stage now, writing
    nothing (the panel shows this before asking to confirm). Otherwise the registry checks
    and commits; a refusal is a :class:`~nbtrack.errors.PromotionRefusedError`.
    """
    target = parse_stage(stage)
    with notebook_registry(notebook) as reg:
        if dry_run:
            candidate = reg.version(name, version)
            report: GateReport = reg.check(name, version, target)
            holders = _holders(reg, name, target)
            # An exclusive stage (production) makes room: its holder steps down, as commit does.
            leaving = [v for v in holders if v != candidate.version]
            replaces = leaving[0] if target in EXCLUSIVE_STAGES and leaving else None
            return json_object(
                {
                    "dry_run": True,
                    "user": reg.user,
                    "version": candidate.to_dict(),
                    "stage": str(target),
                    "holders": holders,
                    "replaces": replaces,
                    "replaced_to": str(step_down_stage(target)) if replaces else None,
                    "report": report.to_dict(),
                }
            )
        outcome = reg.promote(name, version, target, reason=reason, force=force)
        return json_object({"dry_run": False, "user": reg.user, **outcome.to_dict()})


def rollback_payload(
    notebook: Path,
    name: str,
    stage: str = "production",
    *,
    reason: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Roll ``stage`` of ``name`` back to the version there before the current one.

    ``dry_run``: which version comes back and which leaves, both in full, and the gates as
    they stand now for the one coming back — shown for information, since a rollback does
    not re-run them — writing nothing.
    """
    with notebook_registry(notebook) as reg:
        plan = reg.plan_rollback(name, stage, reason=reason)
        if not dry_run:
            outcome = reg.commit(plan)
            return json_object({"dry_run": False, "user": reg.user, **outcome.to_dict()})
        back = reg.version(name, plan.version)
        leaving = reg.version(name, plan.step_down) if plan.step_down is not None else None
        gate = _gate(reg, back, plan.to_stage)
        return json_object(
            {
                "dry_run": True,
                "user": reg.user,
                "plan": plan.to_dict(),
                "version": back.to_dict(),
                "leaving": leaving.to_dict() if leaving is not None else None,
                "report": gate["report"],
                "gate_error": gate["error"],
            }
        )


def decide_payload(
    notebook: Path,
    name: str,
    version: int,
    stage: str,
    *,
    approve: bool = True,
    comment: str | None = None,
) -> dict[str, Any]:
    """Approve (or reject) ``name`` v``version`` for ``stage`` as the acting user; the
    answer carries the gate report after the decision (how many approvals are in now)."""
    with notebook_registry(notebook) as reg:
        if approve:
            outcome = reg.approve(name, version, stage, comment)
        else:
            outcome = reg.reject(name, version, stage, comment)
        after = reg.version(name, version)
        gate = _gate(reg, after, parse_stage(stage))
        return json_object(
            {
                "user": reg.user,
                **outcome.to_dict(),
                "report_after": gate["report"],
                "gate_error": gate["error"],
            }
        )


def audit_payload(
    notebook: Path, model: str | None = None, limit: int = 50, verify: bool = False
) -> dict[str, Any]:
    """The newest ``limit`` audit entries (of ``model``), oldest first, the total count, and
    with ``verify`` the check of the whole hash chain."""
    with notebook_registry(notebook) as reg:
        entries = reg.audit(model)
        check = reg.verify_audit().to_dict() if verify else None
    return json_object(
        {
            "model": model,
            "total": len(entries),
            "entries": [e.to_dict() for e in entries[-limit:]] if limit > 0 else [],
            "check": check,
        }
    )


__all__ = [
    "audit_payload",
    "decide_payload",
    "model_payload",
    "models_payload",
    "notebook_registry",
    "promote_payload",
    "rollback_payload",
]
