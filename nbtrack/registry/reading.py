"""Reading the model registry: models, versions, references, stage history, decisions,
the audit log, and what the gates say now (:meth:`RegistryReader.check`). Nothing here
writes; :class:`nbtrack.registry.core.Registry` adds the changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import UnknownModelError, UnknownRunError, UsageError
from nbtrack.identity import current_user
from nbtrack.registry import audit
from nbtrack.registry.gates import RunFacts, evaluate
from nbtrack.registry.policy import Policy, load_policy
from nbtrack.registry.records import (
    STAGES,
    AuditCheck,
    AuditEntry,
    Decision,
    GateReport,
    ModelSummary,
    ModelVersion,
    Stage,
    StagePeriod,
)
from nbtrack.registry.refs import ModelRef, check_model_name, parse_ref
from nbtrack.registry.rows import decision_of, period_of, version_of

if TYPE_CHECKING:
    from nbtrack.metrics import Direction
    from nbtrack.store.sqlite import Store


_STAGE_NAMES = tuple(str(s) for s in STAGES)


def parse_stage(value: str | Stage) -> Stage:
    """A :class:`Stage` from its name; an unknown one is a one-line UsageError."""
    try:
        return Stage(str(value).strip().lower())
    except ValueError:
        raise UsageError(
            f"{value!r} is not a stage; stages are {', '.join(str(s) for s in STAGES)}"
        ) from None


class RegistryReader:
    """What the registry kept in ``store`` holds, and what its gates say now; reading only.

    ``policy`` defaults to the one declared around ``cwd`` (:func:`load_policy`, re-read
    when the file changes); ``user`` to :func:`current_user`.
    """

    def __init__(
        self,
        store: Store,
        *,
        policy: Policy | None = None,
        user: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.store = store
        self._policy = policy
        self._user = user
        self._cwd = cwd

    @property
    def policy(self) -> Policy:
        """The policy in force (read from the project's config file unless given)."""
        return self._policy if self._policy is not None else load_policy(self._cwd)

    @property
    def user(self) -> str:
        """Who is acting."""
        return self._user or current_user(self._cwd)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store.shown!r})"

    def _model(self, name: str) -> dict[str, Any]:
        check_model_name(name)
        row = self.store.registry_model(name)
        if row is None:
            raise UnknownModelError(
                f"no model {name!r} in the registry at {self.store.shown}; list models with "
                "`nbtrack models list`, or register one with `nbtrack models register`"
            )
        return row

    def _versions(self, model: dict[str, Any], version: int | None = None) -> list[ModelVersion]:
        rows = self.store.registry_versions(model["id"], version)
        if version is not None and not rows:
            raise UnknownModelError(
                f"{model['name']} has no version {version} (versions 1..{model['last_version']}); "
                f"list them with `nbtrack models show {model['name']}`"
            )
        stages = self.store.registry_current_stages(model["id"])
        aliases = self.store.registry_aliases(model["id"])
        return [version_of(model["name"], row, stages, aliases) for row in rows]

    def version(self, name: str, version: int) -> ModelVersion:
        """Version ``version`` of model ``name``."""
        return self._versions(self._model(name), int(version))[0]

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of model ``name``, oldest first."""
        return self._versions(self._model(name))

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference names (``name/3``, ``name@production``, ``name@alias``,
        ``name@latest``, ``models:/name/3``; see :mod:`nbtrack.registry.refs`)."""
        parsed = ref if isinstance(ref, ModelRef) else parse_ref(ref)
        model = self._model(parsed.model)
        if parsed.version is not None:
            return self._versions(model, parsed.version)[0]
        selector = parsed.selector or "latest"
        if selector == "latest":
            if not model["last_version"]:
                raise UnknownModelError(f"{model['name']} has no versions yet")
            return self._versions(model, int(model["last_version"]))[0]
        if selector in {str(s) for s in STAGES}:
            found = [
                (since, v)
                for v, (stage, since) in self.store.registry_current_stages(model["id"]).items()
                if stage == selector
            ]
            if not found:
                raise UnknownModelError(
                    f"no version of {model['name']} is in {selector}; see "
                    f"`nbtrack models show {model['name']}`"
                )
            return self._versions(model, max(found)[1])[0]
        aliases = self.store.registry_aliases(model["id"])
        if selector not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise UnknownModelError(
                f"{model['name']} has no alias {selector!r} (aliases: {known}); a stage or "
                "'latest' also works after @"
            )
        return self._versions(model, aliases[selector])[0]

    def models(self) -> list[ModelSummary]:
        """Every registered model at a glance, by name."""
        models, stages, aliases = self.store.registry_overview()
        by_model: dict[int, dict[str, list[int]]] = {}
        for model_id, stage, versions in stages:
            by_model.setdefault(model_id, {})[stage] = versions
        alias_map: dict[int, dict[str, int]] = {}
        for model_id, alias, version in aliases:
            alias_map.setdefault(model_id, {})[alias] = version
        out = []
        for row in models:
            held: dict[str, list[int]] = by_model.get(row["id"], {})
            out.append(
                ModelSummary(
                    name=row["name"],
                    description=row["description"],
                    versions=int(row["last_version"]),
                    latest=int(row["last_version"]),
                    stages={s: sorted(held[s]) for s in _STAGE_NAMES if s in held},
                    aliases=alias_map.get(row["id"], {}),
                    created=float(row["created"]),
                    updated=float(row["updated"]),
                )
            )
        return out

    def decisions(self, name: str, version: int | None = None) -> list[Decision]:
        """Approvals and rejections of model ``name``'s versions (of ``version``)."""
        model = self._model(name)
        return [decision_of(name, d) for d in self.store.registry_decisions(model["id"], version)]

    def history(
        self, name: str, stage: str | Stage | None = None, version: int | None = None
    ) -> list[StagePeriod]:
        """Every period a version of ``name`` spent in a stage, oldest first."""
        model = self._model(name)
        wanted = parse_stage(stage) if stage is not None else None
        rows = self.store.registry_stage_periods(
            model["id"], stage=str(wanted) if wanted else None, version=version
        )
        return [period_of(name, r) for r in rows]

    def at(
        self, name: str, stage: str | Stage, start: float, end: float | None = None
    ) -> list[StagePeriod]:
        """The versions of ``name`` in ``stage`` at moment ``start`` (with ``end``: at some
        moment of ``[start, end)``) — "what was in production on date D"."""
        periods = self.history(name, stage)
        if end is None:
            return [p for p in periods if p.covers(start)]
        return [p for p in periods if p.overlaps(start, end)]

    def audit(self, model: str | None = None) -> list[AuditEntry]:
        """The audit log (of ``model``), oldest first."""
        if model is not None:
            check_model_name(model)
        return [audit.entry_from_row(r) for r in self.store.registry_audit_rows(model=model)]

    def verify_audit(self) -> AuditCheck:
        """Check every entry of the audit log against its hash and its neighbours."""
        return audit.verify_chain(
            self.store.registry_audit_rows(), self.store.registry_audit_count()
        )

    def run_facts(self, version: ModelVersion) -> RunFacts:
        """What the gates need to know about ``version``'s run now."""
        run_id = version.lineage.run_id
        try:
            status: str | None = str(self.store.run_row(run_id)["status"])
        except UnknownRunError:
            status = None
        verified_by = None
        for fact in self.store.verifications(run_id):
            try:
                verified_by = int(self.store.run_row(fact["reproduced_run_id"])["number"])
            except UnknownRunError:
                verified_by = 0  # the reproducing run was deleted since; the fact stands
        return RunFacts(status=status, verified_by=verified_by, verified=verified_by is not None)

    def check(self, name: str, version: int, stage: str | Stage) -> GateReport:
        """Evaluate the gates and approvals for moving ``name`` v``version`` into ``stage``
        now, writing nothing."""
        target = parse_stage(stage)
        model = self._model(name)
        candidate = self._versions(model, int(version))[0]
        return self._evaluate(model, candidate, target, self.policy)

    def _evaluate(
        self, model: dict[str, Any], candidate: ModelVersion, target: Stage, policy: Policy
    ) -> GateReport:
        production = None
        for v, (stage, _since) in self.store.registry_current_stages(model["id"]).items():
            if stage == Stage.PRODUCTION and v != candidate.version:
                production = self._versions(model, v)[0]
        return evaluate(
            policy.for_stage(candidate.model, target),
            candidate,
            production,
            self.run_facts(candidate),
            [
                decision_of(candidate.model, d)
                for d in self.store.registry_decisions(model["id"], candidate.version)
            ],
            self._direction_for(candidate),
            str(policy.source) if policy.source is not None else None,
        )

    def _direction_for(self, candidate: ModelVersion) -> Callable[[str], Direction]:
        from nbtrack.metrics import direction, stored_direction

        def judge(metric: str) -> Direction:
            # The direction the run stored wins (declared, or nbtrack.toml when it ran);
            # otherwise the rule as it stands: nbtrack.toml here, then the metric's name.
            found = stored_direction(candidate.lineage.goals, metric)
            if found is not None and found[1] != "heuristic":
                return found[0]
            return direction(metric, start=Path(self._cwd) if self._cwd is not None else None)

        return judge

    def load(self, ref: str | ModelRef) -> Any:
        """The artifact of the version ``ref`` names, checked against its content hash
        (a path for files and folders, the object otherwise; see :mod:`nbtrack.artifacts`)."""
        from nbtrack.artifacts import load_artifact

        found = self.resolve(ref)
        return load_artifact(self.store, found.kind, found.hash, found.meta)


__all__ = ["RegistryReader", "parse_stage"]
