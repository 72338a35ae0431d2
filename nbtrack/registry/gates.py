"""Evaluating a stage's gates and approvals for one version: a pure function of records.

Everything the checks need is passed in (the candidate, the version now in production,
the run's current status, whether the run was reproduced, the decisions so far), so the
same function serves ``nbtrack models gate``, a promotion, the server and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nbtrack.errors import RegistryConfigError
from nbtrack.metrics import Direction
from nbtrack.registry.policy import StagePolicy, allowed
from nbtrack.registry.records import Decision, GateReport, GateResult, ModelVersion


@dataclass(frozen=True)
class RunFacts:
    """What a gate needs to know about the version's run now (not when it was registered)."""

    status: str | None  # None: the run was deleted
    verified_by: int | None  # number of a run that reproduced it (`nbtrack export --verify`)
    verified: bool


def evaluate(
    policy: StagePolicy,
    candidate: ModelVersion,
    production: ModelVersion | None,
    run: RunFacts,
    decisions: Sequence[Decision],
    direction: Callable[[str], Direction],
    policy_file: str | None = None,
) -> GateReport:
    """Every gate of ``policy`` for moving ``candidate`` into its stage, and the approvals.

    ``production`` is the version in production now (``None``, or the candidate itself,
    when there is nothing to compare with). ``direction`` gives a metric's direction by
    :mod:`nbtrack.metrics`' rule. A gate naming a metric the candidate never logged is a
    :class:`~nbtrack.errors.RegistryConfigError` naming the file and key.
    """
    results: list[GateResult] = []
    label = f"{candidate.model} v{candidate.version}"
    metrics = candidate.metrics
    if production is not None and production.version == candidate.version:
        production = None
    for gate in policy.thresholds:
        value = _metric(metrics, gate.metric, gate.key, label)
        ok = gate.holds(value)
        results.append(
            GateResult(gate.text, ok, f"{_fmt(value)} (needs {gate.op} {gate.value:g})", gate.key)
        )
    for better in policy.better_than_production:
        value = _metric(metrics, better.metric, better.key, label)
        way = direction(better.metric)
        text = f"{better.metric} better than production by >= {better.by:g}"
        if production is None:
            results.append(GateResult(text, True, "no version in production yet", better.key))
            continue
        if better.metric not in production.metrics:
            results.append(
                GateResult(
                    text,
                    False,
                    f"production v{production.version} has no {better.metric} to compare with",
                    better.key,
                )
            )
            continue
        base = production.metrics[better.metric]
        gain = (base - value) if way == "min" else (value - base)
        ok = gain >= better.by and gain == gain
        results.append(
            GateResult(
                text,
                ok,
                f"{_fmt(value)} vs v{production.version} {_fmt(base)}: {_signed(gain)} "
                f"better ({way} is better)",
                better.key,
            )
        )
    have = candidate.lineage.input_hashes()
    if policy.inputs_match:
        key = policy.where("inputs_match")
        text = f"inputs {', '.join(policy.inputs_match)} match production"
        if production is None:
            results.append(GateResult(text, True, "no version in production yet", key))
        else:
            theirs = production.lineage.input_hashes()
            bad = [n for n in policy.inputs_match if n not in have or have.get(n) != theirs.get(n)]
            detail = (
                f"same content as v{production.version}"
                if not bad
                else "; ".join(_input_mismatch(n, have, theirs, production.version) for n in bad)
            )
            results.append(GateResult(text, not bad, detail, key))
    for name, digest in policy.inputs_pinned:
        key = f"{policy.where('inputs_match')}.{name}"
        actual = have.get(name)
        ok = actual == digest
        detail = (
            "matches"
            if ok
            else f"{name} was not recorded by the run"
            if actual is None
            else f"{name} is {actual[:24]}…, not {digest[:24]}…"
        )
        results.append(GateResult(f"input {name} is {digest[:24]}…", ok, detail, key))
    run_label = f"run #{candidate.lineage.run_number}"
    if policy.run_finished:
        status = run.status
        results.append(
            GateResult(
                "run finished",
                status == "finished",
                f"{run_label} was deleted" if status is None else f"{run_label} is {status}",
                policy.where("run_finished"),
            )
        )
    if policy.verified:
        results.append(
            GateResult(
                "reproduction verified",
                run.verified,
                f"{run_label} reproduced by run #{run.verified_by} (nbtrack export --verify)"
                if run.verified
                else f"no passing `nbtrack export --run {candidate.lineage.run_number} --verify`",
                policy.where("verified"),
            )
        )
    if policy.clean_git:
        commit, dirty = candidate.lineage.git_commit, candidate.lineage.git_dirty
        ok = commit is not None and dirty is False
        detail = (
            "no git commit was recorded for the run"
            if commit is None
            else f"commit {commit[:12]}, "
            + ("clean" if dirty is False else "uncommitted edits" if dirty else "state unknown")
        )
        results.append(GateResult("clean git tree", ok, detail, policy.where("clean_git")))
    if policy.approvals:
        results.append(approvals_result(policy, candidate, decisions))
    return GateReport(
        model=candidate.model,
        version=candidate.version,
        stage=policy.stage,
        results=tuple(results),
        policy_file=policy_file,
    )


def approvals_result(
    policy: StagePolicy, candidate: ModelVersion, decisions: Sequence[Decision]
) -> GateResult:
    """Whether ``candidate`` has the approvals ``policy`` asks for.

    A person's latest decision counts; one standing rejection blocks; an approval by someone
    not among the approvers, or by the registrant where self-approval is off, does not count.
    """
    latest: dict[str, Decision] = {}
    for decision in sorted(decisions, key=lambda d: d.time):
        if decision.stage == policy.stage and decision.version == candidate.version:
            latest[decision.user.casefold()] = decision
    counted = [
        d
        for d in latest.values()
        if d.approved
        and allowed(d.user, policy.approvers)
        and (policy.self_approval or d.user.casefold() != candidate.created_by.casefold())
    ]
    rejected = [d for d in latest.values() if not d.approved]
    need = policy.approvals
    text = f"{need} approval{'s' if need != 1 else ''}"
    if rejected:
        who = ", ".join(f"{d.user}" + (f" ({d.comment})" if d.comment else "") for d in rejected)
        detail = f"rejected by {who}"
    else:
        names = ", ".join(d.user for d in counted) or "none yet"
        detail = f"{len(counted)}/{need}: {names}"
        if len(counted) < need and policy.approvers is not None:
            waiting = [
                u
                for u in policy.approvers
                if u.casefold() not in {d.user.casefold() for d in counted}
            ]
            detail += f"; waiting for {need - len(counted)} more of {', '.join(waiting)}"
    ok = not rejected and len(counted) >= need
    return GateResult(text, ok, detail, policy.where("approvals"), kind="approvals")


def _metric(metrics: dict[str, float], metric: str, key: str, label: str) -> float:
    if metric not in metrics:
        have = ", ".join(sorted(metrics)) or "none"
        raise RegistryConfigError(
            f"{key}: {metric!r} is not a metric of {label} (it has: {have}); fix the gate's "
            "metric name, or log it in the run"
        )
    return float(metrics[metric])


def _input_mismatch(name: str, have: dict[str, str], theirs: dict[str, str], v: int) -> str:
    if name not in have:
        return f"{name} was not recorded by the run"
    if name not in theirs:
        return f"{name} was not recorded by production v{v}"
    return f"{name} differs from v{v}'s"


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _signed(value: float) -> str:
    return f"{value:+.6g}"


__all__ = ["RunFacts", "approvals_result", "evaluate"]
