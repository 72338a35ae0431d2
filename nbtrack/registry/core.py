"""The model registry of one store: register, promote, approve, alias, roll back, audit.

Every change is one ``BEGIN IMMEDIATE`` transaction of the store in which the registry
re-reads what it checked and then writes, and appends a sealed entry to the audit log in
the same transaction: a change and its audit entry exist together or not at all. A
promotion is checked first (:meth:`Registry.plan_promotion`: policy, gates, approvals) and
then committed (:meth:`Registry.commit`), which refuses when another process changed the
model in between, so of two processes promoting at once exactly one wins.

Bad input (an unknown model, version, stage or alias; a policy that forbids the action;
an archived version) raises one-line :class:`~nbtrack.errors.RegistryError` subclasses
before anything is written.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import (
    PromotionRefusedError,
    RegistryConflictError,
    RegistryError,
    UnknownModelError,
    UsageError,
)
from nbtrack.identity import current_host
from nbtrack.registry import audit, hooks
from nbtrack.registry.policy import Policy, allowed
from nbtrack.registry.reading import RegistryReader, parse_stage
from nbtrack.registry.records import (
    EXCLUSIVE_STAGES,
    INITIAL_STAGE,
    AuditEntry,
    Event,
    GateReport,
    Lineage,
    ModelVersion,
    Outcome,
    Promotion,
    Stage,
    stage_rank,
    step_down_stage,
)
from nbtrack.registry.refs import check_alias_name, check_model_name
from nbtrack.registry.render import moved_text
from nbtrack.registry.rows import pick_artifact

if TYPE_CHECKING:
    from nbtrack.store.registry_tables import RegistryWriter


class Registry(RegistryReader):
    """The model registry kept in ``store``: every read of :class:`RegistryReader`, and the
    changes (register, promote, approve, alias, roll back), each one audited transaction.
    """

    def register(
        self,
        run: object,
        name: str,
        artifact: str | None = None,
        *,
        description: str | None = None,
        reason: str | None = None,
        metrics: dict[str, float] | None = None,
        git: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Register artifact ``artifact`` of run ``run`` (a run ref) as the next version of
        model ``name`` (created on first use), in ``development``.

        ``artifact`` may be left out when the run has exactly one. Registering the same
        run's same artifact again returns the version it already is. ``metrics`` and
        ``git`` stand in for the run's stored ones (a run still recording passes its
        latest values).
        """
        check_model_name(name)
        store = self.store
        text = str(run)
        # A full run id (what track.register passes) needs no prefix search.
        full_id = len(text) == 32 and all(c in "0123456789abcdef" for c in text)
        run_id = text if full_id else store.resolve(run)
        row = store.run_row(run_id)
        chosen = pick_artifact(store.artifacts(run_id), artifact, int(row["number"]))
        art_name, kind, digest, size, meta = chosen
        lineage = Lineage(
            run_id=run_id,
            run_number=int(row["number"]),
            run_name=row["name"],
            notebook=row["notebook"],
            params=row["params"],
            seed=row["seed"],
            rng_hash=row["rng_hash"],
            env_hash=row["env_hash"],
            git=git if git is not None else row["git"],
            inputs=row["inputs"],
            code_hash=row["code_hash"],
            metrics={k: float(v) for k, v in (metrics or row["metrics"]).items()},
            goals=row["goals"],
            project=row.get("project"),
        )
        user, host, policy = self.user, current_host(), self.policy
        with store.registry_transaction() as w:
            model = w.registry_model(name)
            now = time.time()
            if model is None:
                model = w.create_model(name, description, now, user)
            existing = w.registry_version_of_run(model["id"], run_id, art_name)
            if existing is not None:
                # An idempotent re-run (a CI job retried): the same content, the same version.
                entry = None
                number = existing
            else:
                number = w.insert_version(
                    model["id"],
                    {
                        "run_id": run_id,
                        "artifact": art_name,
                        "kind": kind,
                        "hash": digest,
                        "size": size,
                        "meta": meta,
                        "lineage": lineage.to_dict(),
                        "created": now,
                        "created_by": user,
                        "host": host,
                    },
                )
                w.open_stage(model["id"], number, str(INITIAL_STAGE), now, user, reason)
                entry = audit.append(
                    w,
                    Event.REGISTER,
                    name,
                    number,
                    INITIAL_STAGE,
                    reason,
                    {
                        "run": lineage.run_number,
                        "run_id": run_id,
                        "artifact": art_name,
                        "hash": digest,
                        "metrics": lineage.metrics,
                        "git_commit": lineage.git_commit,
                    },
                    user,
                    host,
                    now,
                    where=self.store.shown,
                )
                w.touch_model(model["id"], now, changed=False)
        if entry is None:
            return self.version(name, number)
        self._after(entry, policy)
        # Just written, so known: no need to read it back.
        return ModelVersion(
            model=name,
            version=number,
            stage=INITIAL_STAGE,
            artifact=art_name,
            kind=kind,
            hash=digest,
            size=size,
            meta=meta,
            lineage=lineage,
            created=now,
            created_by=user,
            host=host,
        )

    def plan_promotion(
        self,
        name: str,
        version: int,
        stage: str | Stage,
        *,
        reason: str | None = None,
        force: bool = False,
    ) -> Promotion:
        """Check moving ``name`` v``version`` into ``stage``; nothing is written unless the
        gates refuse it (the refusal is audited as a gate result).

        Raises :class:`~nbtrack.errors.PromotionRefusedError` when the policy forbids the
        user the move, or a gate or the approvals fail (``force`` with a ``reason``
        overrides failed validation gates, never approvals or who may promote).
        """
        target = parse_stage(stage)
        reason = _clean_reason(reason)
        if force and not reason:
            raise UsageError(
                "--force needs --reason '...': a forced promotion records why the failed "
                "gates were overridden"
            )
        model = self._model(name)
        revision = int(model["revision"])  # first: anything read after it is at least as new
        candidate = self._versions(model, int(version))[0]
        current = candidate.stage
        label = f"{name} v{candidate.version}"
        if current == target:
            raise RegistryError(f"{label} is already in {target}; nothing to do")
        if current == Stage.ARCHIVED:
            raise RegistryError(
                f"{label} is archived, and an archived version cannot move again; register "
                f"its run again (`nbtrack models register {candidate.lineage.run_number} "
                f"{name}`) for a new version"
            )
        policy, user = self.policy, self.user
        self._check_mover(user, name, target, policy)
        if (
            current in EXCLUSIVE_STAGES
            or target == Stage.ARCHIVED
            or stage_rank(target) < stage_rank(current)
        ):
            self._check_mover(user, name, current, policy)
        if target == Stage.ARCHIVED:
            event, report = Event.ARCHIVE, None
        elif stage_rank(target) < stage_rank(current):
            event, report = Event.DEMOTE, None
        else:
            event, report = Event.PROMOTE, self._evaluate(model, candidate, target, policy)
        forced = False
        if report is not None and not report.passed:
            blocking = [r for r in report.failed if r.kind != "gate" or not force]
            if blocking:
                self._record_gate(report, policy, refused=True)
                details = "; ".join(f"{r.gate}: {r.detail}" for r in report.failed)
                raise PromotionRefusedError(
                    f"{label} was not promoted to {target}: {len(report.failed)} of "
                    f"{len(report.results)} checks failed ({details})"
                    + (
                        "; --force overrides failed gates (with --reason), not approvals"
                        if not force and all(r.kind == "gate" for r in report.failed)
                        else ""
                    ),
                    report,
                )
            forced = True
        step_down = None
        if target in EXCLUSIVE_STAGES:
            for v, (held, _since) in self.store.registry_current_stages(model["id"]).items():
                if held == target and v != candidate.version:
                    step_down = v
        return Promotion(
            model=name,
            version=candidate.version,
            from_stage=current,
            to_stage=target,
            event=event,
            revision=revision,
            user=user,
            reason=reason,
            report=report,
            forced=forced,
            step_down=step_down,
            metrics=candidate.metrics,
        )

    def commit(self, plan: Promotion) -> Outcome:
        """Carry out a checked move, if the model is still as the checks saw it.

        Raises :class:`~nbtrack.errors.RegistryConflictError` (nothing written) when another
        process changed the model's stages, aliases or approvals since :meth:`plan_promotion`.
        """
        policy, host = self.policy, current_host()
        with self.store.registry_transaction() as w:
            model = w.registry_model(plan.model)
            if model is None:
                raise UnknownModelError(f"model {plan.model!r} is gone from the registry")
            if int(model["revision"]) != plan.revision:
                raise RegistryConflictError(self._conflict(w, plan))
            now = time.time()
            data: dict[str, Any] = {
                "from": str(plan.from_stage),
                "metrics": plan.metrics,
            }
            if plan.step_down is not None:
                w.close_stage(model["id"], plan.step_down, now)
                w.open_stage(
                    model["id"],
                    plan.step_down,
                    str(step_down_stage(plan.to_stage)),
                    now,
                    plan.user,
                    f"replaced by v{plan.version}",
                )
                data["replaced"] = plan.step_down
                data["replaced_to"] = str(step_down_stage(plan.to_stage))
            if plan.event == Event.ROLLBACK:
                data["rolled_back"] = plan.step_down
            if plan.report is not None:
                data["gates"] = [r.to_dict() for r in plan.report.results]
            if plan.forced:
                data["forced"] = True
                data["failed_gates"] = [r.gate for r in plan.report.failed] if plan.report else []
            w.close_stage(model["id"], plan.version, now)
            w.open_stage(model["id"], plan.version, str(plan.to_stage), now, plan.user, plan.reason)
            entry = audit.append(
                w,
                plan.event,
                plan.model,
                plan.version,
                plan.to_stage,
                plan.reason,
                data,
                plan.user,
                host,
                now,
                where=self.store.shown,
            )
            w.touch_model(model["id"], now, changed=True)
        self._after(entry, policy)
        return Outcome(
            message=moved_text(plan),
            entry=entry,
            version=self.version(plan.model, plan.version),
            report=plan.report,
        )

    def promote(
        self,
        name: str,
        version: int,
        stage: str | Stage,
        *,
        reason: str | None = None,
        force: bool = False,
    ) -> Outcome:
        """Move ``name`` v``version`` into ``stage``: :meth:`plan_promotion` then
        :meth:`commit`. Moving to an earlier stage is a demotion, to ``archived`` an
        archive; only a promotion runs the gates."""
        return self.commit(self.plan_promotion(name, version, stage, reason=reason, force=force))

    def gate(self, name: str, version: int, stage: str | Stage) -> GateReport:
        """:meth:`check`, with the result appended to the audit log (CI's gate step)."""
        report = self.check(name, version, stage)
        self._record_gate(report, self.policy, refused=False)
        return report

    def _record_gate(self, report: GateReport, policy: Policy, *, refused: bool) -> None:
        user, host = self.user, current_host()
        data = {
            "passed": report.passed,
            "refused_promotion": refused,
            "gates": [r.to_dict() for r in report.results],
            "metrics": self.version(report.model, report.version).metrics,
        }
        with self.store.registry_transaction() as w:
            entry = audit.append(
                w,
                Event.GATE,
                report.model,
                report.version,
                report.stage,
                None,
                data,
                user,
                host,
                time.time(),
                where=self.store.shown,
            )
        self._after(entry, policy)

    def approve(
        self, name: str, version: int, stage: str | Stage, comment: str | None = None
    ) -> Outcome:
        """Approve ``name`` v``version`` for ``stage`` as the current user."""
        return self._decide(name, version, stage, comment, approved=True)

    def reject(
        self, name: str, version: int, stage: str | Stage, comment: str | None = None
    ) -> Outcome:
        """Reject ``name`` v``version`` for ``stage``: it cannot enter the stage until the
        same person approves it."""
        return self._decide(name, version, stage, comment, approved=False)

    def _decide(
        self, name: str, version: int, stage: str | Stage, comment: str | None, *, approved: bool
    ) -> Outcome:
        target = parse_stage(stage)
        comment = _clean_reason(comment)
        if target in (Stage.DEVELOPMENT, Stage.ARCHIVED):
            raise UsageError(f"approvals are for staging, canary and production, not {target}")
        model = self._model(name)
        candidate = self._versions(model, int(version))[0]
        label = f"{name} v{candidate.version}"
        if candidate.stage == Stage.ARCHIVED:
            raise RegistryError(f"{label} is archived; there is nothing left to approve")
        policy, user = self.policy, self.user
        rules = policy.for_stage(name, target)
        verb = "approve" if approved else "reject"
        if not allowed(user, rules.approvers):
            raise PromotionRefusedError(
                f"{user} may not {verb} versions for {target}: {rules.where('approvers')} "
                f"names {', '.join(rules.approvers or ())}"
            )
        if (
            approved
            and not rules.self_approval
            and user.casefold() == candidate.created_by.casefold()
        ):
            raise PromotionRefusedError(
                f"{user} registered {label} and may not approve it for {target}: "
                f"{rules.where('self_approval')} is false; ask another approver"
            )
        host = current_host()
        with self.store.registry_transaction() as w:
            now = time.time()
            w.add_decision(
                model["id"], candidate.version, str(target), user, approved, comment, now
            )
            entry = audit.append(
                w,
                Event.APPROVE if approved else Event.REJECT,
                name,
                candidate.version,
                target,
                comment,
                {"metrics": candidate.metrics},
                user,
                host,
                now,
                where=self.store.shown,
            )
            w.touch_model(model["id"], now, changed=True)
        self._after(entry, policy)
        return Outcome(
            message=f"{user} {verb}d {label} for {target}", entry=entry, version=candidate
        )

    def set_alias(
        self, name: str, alias: str, version: int, *, reason: str | None = None
    ) -> Outcome:
        """Point ``name@alias`` at version ``version`` (creating the alias)."""
        check_alias_name(alias)
        reason = _clean_reason(reason)
        model = self._model(name)
        candidate = self._versions(model, int(version))[0]
        if candidate.stage == Stage.ARCHIVED:
            raise RegistryError(
                f"{name} v{candidate.version} is archived; an alias cannot point at it"
            )
        policy, user = self.policy, self.user
        self._check_alias_mover(user, alias, policy)
        host = current_host()
        with self.store.registry_transaction() as w:
            before = w.registry_aliases(model["id"]).get(alias)
            if before == candidate.version:
                raise RegistryError(f"{name}@{alias} already points at v{candidate.version}")
            now = time.time()
            w.set_alias(model["id"], alias, candidate.version, now, user)
            entry = audit.append(
                w,
                Event.ALIAS,
                name,
                candidate.version,
                None,
                reason,
                {"alias": alias, "previous": before, "metrics": candidate.metrics},
                user,
                host,
                now,
                where=self.store.shown,
            )
            w.touch_model(model["id"], now, changed=True)
        self._after(entry, policy)
        moved = f" (was v{before})" if before is not None else ""
        return Outcome(
            message=f"{name}@{alias} -> v{candidate.version}{moved}",
            entry=entry,
            version=self.version(name, candidate.version),
        )

    def remove_alias(self, name: str, alias: str, *, reason: str | None = None) -> Outcome:
        """Delete ``name@alias``."""
        check_alias_name(alias)
        reason = _clean_reason(reason)
        model = self._model(name)
        policy, user = self.policy, self.user
        self._check_alias_mover(user, alias, policy)
        host = current_host()
        with self.store.registry_transaction() as w:
            before = w.registry_aliases(model["id"]).get(alias)
            if before is None:
                raise UnknownModelError(f"{name} has no alias {alias!r}")
            now = time.time()
            w.delete_alias(model["id"], alias)
            entry = audit.append(
                w,
                Event.UNALIAS,
                name,
                before,
                None,
                reason,
                {"alias": alias},
                user,
                host,
                now,
                where=self.store.shown,
            )
            w.touch_model(model["id"], now, changed=True)
        self._after(entry, policy)
        return Outcome(message=f"removed {name}@{alias} (was v{before})", entry=entry)

    def rollback(
        self, name: str, stage: str | Stage = Stage.PRODUCTION, *, reason: str | None = None
    ) -> Outcome:
        """Put back the version that was in ``stage`` before the one there now, in one step.

        The version rolled back from steps down (never archived); gates and approvals are
        not re-run (the version passed them when it first entered the stage), but who may
        promote into the stage still applies.
        """
        return self.commit(self.plan_rollback(name, stage, reason=reason))

    def plan_rollback(
        self, name: str, stage: str | Stage = Stage.PRODUCTION, *, reason: str | None = None
    ) -> Promotion:
        """Check a :meth:`rollback` and say what it would do (``version`` comes back,
        ``step_down`` leaves), writing nothing; :meth:`commit` carries it out."""
        target = parse_stage(stage)
        if target in (Stage.DEVELOPMENT, Stage.ARCHIVED):
            raise UsageError(f"rollback is for staging, canary and production, not {target}")
        reason = _clean_reason(reason)
        model = self._model(name)
        revision = int(model["revision"])
        current = self.store.registry_current_stages(model["id"])
        inside = sorted((since, v) for v, (s, since) in current.items() if s == target)
        if not inside:
            raise RegistryError(f"no version of {name} is in {target}; nothing to roll back")
        now_there = inside[-1][1]
        previous = None
        for period in reversed(self.store.registry_stage_periods(model["id"], stage=str(target))):
            v = int(period["version"])
            if v != now_there and period["until"] is not None and current[v][0] != target:
                previous = v
                break
        if previous is None:
            raise RegistryError(
                f"{name} v{now_there} is the only version {target} has had; nothing to roll back to"
            )
        if current[previous][0] == Stage.ARCHIVED:
            raise RegistryError(
                f"{name} v{previous}, in {target} before v{now_there}, is archived; promote "
                "another version instead"
            )
        policy, user = self.policy, self.user
        self._check_mover(user, name, target, policy)
        return Promotion(
            model=name,
            version=previous,
            from_stage=Stage(current[previous][0]),
            to_stage=target,
            event=Event.ROLLBACK,
            revision=revision,
            user=user,
            reason=reason,
            report=None,
            forced=False,
            step_down=now_there,
            metrics=self._versions(model, previous)[0].metrics,
        )

    # -- shared steps -------------------------------------------------------------------
    def _check_mover(self, user: str, name: str, stage: Stage, policy: Policy) -> None:
        rules = policy.for_stage(name, stage)
        if not allowed(user, rules.promoters):
            raise PromotionRefusedError(
                f"{user} may not move versions of {name} into or out of {stage}: "
                f"{rules.where('promoters')} names {', '.join(rules.promoters or ())}"
            )

    def _check_alias_mover(self, user: str, alias: str, policy: Policy) -> None:
        rules = policy.for_alias(alias)
        if not allowed(user, rules.movers):
            raise PromotionRefusedError(
                f"{user} may not move the alias {alias!r}: {rules.key} names "
                f"{', '.join(rules.movers or ())}"
            )

    def _conflict(self, w: RegistryWriter, plan: Promotion) -> str:
        last = w.registry_last_change(plan.model)
        what = ""
        if last is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(float(last["time"])))
            what = (
                f" ({last['event']} of v{last['version']}"
                + (f" to {last['stage']}" if last["stage"] else "")
                + f" by {last['user']} at {stamp})"
            )
        return (
            f"{plan.model} changed while {plan.model} v{plan.version} was being checked for "
            f"{plan.to_stage}{what}; nothing was changed; look at `nbtrack models show "
            f"{plan.model}` and try again"
        )

    def _after(self, entry: AuditEntry, policy: Policy) -> None:
        cwd = policy.source.parent if policy.source is not None else None
        if cwd is not None and cwd.name == ".nbtrack":
            cwd = cwd.parent  # .nbtrack/gates.toml: commands run from the project's folder
        hooks.dispatch(entry, policy.hook_commands(entry.event), cwd)


def _clean_reason(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text or None


def default_registry(store: Any = None, *, cwd: str | os.PathLike[str] | None = None) -> Registry:
    """A :class:`Registry` for ``store`` (a :class:`Store`, a folder, or ``None`` for this
    process's store)."""
    from nbtrack.store.routing import open_store
    from nbtrack.store.sqlite import Store

    if not isinstance(store, Store):
        store = open_store(Path(store) if store is not None else None)
    return Registry(store, cwd=cwd)


__all__ = ["Registry", "default_registry", "parse_stage"]
