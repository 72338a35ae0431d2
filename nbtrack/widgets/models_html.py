"""HTML for the registry view in the notebook (:mod:`nbtrack.widgets.models`): pure functions
of registry records, nothing here opens the store or imports ipywidgets.

Stage colours are :data:`nbtrack.registry.render.STAGE_COLOURS`, the same as every other
registry badge; timestamps use :func:`nbtrack.registry.render.when`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from nbtrack.registry.records import Decision, GateReport, ModelSummary, ModelVersion, StagePeriod
from nbtrack.registry.render import STAGE_COLOURS, when

esc = html.escape

#: A gate report for a version, or the one line saying why it cannot be evaluated.
GateOutcome = GateReport | str | None

_CELL = "padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #d0d7de"


def stage_badge(stage: str, suffix: str = "") -> str:
    """A coloured badge for ``stage`` (``production v3`` with a suffix)."""
    colour = STAGE_COLOURS.get(str(stage), "#57606a")
    text = f"{stage} {suffix}".strip()
    return (
        f"<span class='nbtrack-stage' data-stage='{esc(str(stage))}' style='background:{colour};"
        f"color:white;border-radius:8px;padding:0 6px;font-size:90%;white-space:nowrap'>"
        f"{esc(text)}</span>"
    )


def _metrics(metrics: Mapping[str, float], limit: int = 3) -> str:
    items = [f"{esc(k)}={v:.4g}" for k, v in list(metrics.items())[:limit]]
    return ", ".join(items) + (", …" if len(metrics) > limit else "")


def verdict(outcome: GateOutcome) -> str:
    """``passed``, ``2 of 5 failed``, ``no gates`` or the error line, as text."""
    if outcome is None:
        return ""
    if isinstance(outcome, str):
        return outcome
    if not outcome.results:
        return "no gates declared"
    failed = len(outcome.failed)
    return "passed" if failed == 0 else f"{failed} of {len(outcome.results)} failed"


def _verdict_html(outcome: GateOutcome) -> str:
    text = verdict(outcome)
    if not text:
        return ""
    ok = isinstance(outcome, GateReport) and outcome.passed
    colour = "#1a7f37" if ok else "#cf222e"
    stage = f"→ {outcome.stage}: " if isinstance(outcome, GateReport) else ""
    return f"<span class='nbtrack-verdict' style='color:{colour}'>{esc(stage + text)}</span>"


def summary_html(model: ModelSummary) -> str:
    """One line about a model: versions, who is in each stage, aliases."""
    badges = " ".join(
        stage_badge(stage, " ".join(f"v{v}" for v in versions))
        for stage, versions in model.stages.items()
        if versions
    )
    aliases = ", ".join(f"@{esc(a)}=v{v}" for a, v in sorted(model.aliases.items()))
    count = f"{model.versions} version{'s' if model.versions != 1 else ''}"
    return (
        f"<div class='nbtrack-model-summary'><b>{esc(model.name)}</b> "
        f"<span style='color:#57606a'>{count}</span> {badges}"
        + (f" <span style='color:#57606a'>aliases {aliases}</span>" if aliases else "")
        + "</div>"
    )


def versions_html(
    versions: Sequence[ModelVersion],
    gates: Mapping[int, GateOutcome],
    selected: int | None = None,
) -> str:
    """A table of versions, newest first: stage, aliases, the run it came from, metrics,
    who registered it, and the verdict of the gates for its next (or the chosen) stage."""
    if not versions:
        return "<p><i>no versions</i></p>"
    head = "".join(
        f"<th style='{_CELL}'>{h}</th>"
        for h in ("version", "stage", "run", "metrics", "registered", "gates")
    )
    rows = []
    for v in sorted(versions, key=lambda v: -v.version):
        aliases = " ".join(f"<code>@{esc(a)}</code>" for a in v.aliases)
        mark = "background:#ddf4ff;" if v.version == selected else ""
        rows.append(
            f"<tr class='nbtrack-version' data-version='{v.version}' style='{mark}'>"
            f"<td style='{_CELL}'><b>v{v.version}</b></td>"
            f"<td style='{_CELL}'>{stage_badge(str(v.stage))} {aliases}</td>"
            f"<td style='{_CELL}'>#{v.lineage.run_number} {esc(v.lineage.run_name or '')}</td>"
            f"<td style='{_CELL}'>{_metrics(v.metrics)}</td>"
            f"<td style='{_CELL}'>{esc(v.created_by)}<br><small>{when(v.created)}</small></td>"
            f"<td style='{_CELL}'>{_verdict_html(gates.get(v.version))}</td>"
            "</tr>"
        )
    return (
        "<table class='nbtrack-versions' style='border-collapse:collapse'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def gates_html(outcome: GateOutcome) -> str:
    """Every check of a gate report: passed or failed, what decided it, where declared."""
    if outcome is None:
        return "<p><i>no later stage to promote into</i></p>"
    if isinstance(outcome, str):
        return f"<p class='nbtrack-error' style='color:#cf222e'>{esc(outcome)}</p>"
    if not outcome.results:
        where = outcome.policy_file or "no registry policy declared"
        return f"<p><i>no gates or approvals declared for {esc(str(outcome.stage))} ({esc(where)})</i></p>"
    rows = "".join(
        f"<tr class='nbtrack-gate {'passed' if r.passed else 'failed'}'>"
        f"<td style='{_CELL};color:{'#1a7f37' if r.passed else '#cf222e'}'>"
        f"{'✓' if r.passed else '✗'}</td>"
        f"<td style='{_CELL}'>{esc(r.gate)}</td><td style='{_CELL}'>{esc(r.detail)}</td>"
        f"<td style='{_CELL};color:#57606a'><small>{esc(r.key)}</small></td></tr>"
        for r in outcome.results
    )
    return (
        f"<div>{_verdict_html(outcome)}</div>"
        f"<table class='nbtrack-gates' style='border-collapse:collapse'><tbody>{rows}</tbody></table>"
    )


def decisions_html(decisions: Sequence[Decision]) -> str:
    """Approvals and rejections, oldest first."""
    if not decisions:
        return "<p><i>no approvals or rejections yet</i></p>"
    items = "".join(
        f"<li class='nbtrack-decision'>{'approved' if d.approved else '<b>REJECTED</b>'} for "
        f"{esc(str(d.stage))} by {esc(d.user)} at {when(d.time)}"
        + (f": {esc(d.comment)}" if d.comment else "")
        + "</li>"
        for d in decisions
    )
    return f"<ul>{items}</ul>"


def lineage_html(version: ModelVersion, run_status: str | None) -> str:
    """Where the version came from: its run (and whether that run still exists), params,
    seed, git, inputs, code and environment hashes, the artifact."""
    lin = version.lineage
    state = "deleted; the version keeps its lineage" if run_status is None else run_status
    rows: list[tuple[str, str]] = [
        (
            "run",
            f"#{lin.run_number} {esc(lin.run_name or '')} ({esc(state)}), id {lin.run_id[:12]}",
        ),
        ("params", ", ".join(f"{esc(k)}={esc(repr(v))}" for k, v in lin.params.items()) or "—"),
        ("metrics", _metrics(lin.metrics, limit=12) or "—"),
        ("seed", esc(str(lin.seed)) if lin.seed is not None else "—"),
    ]
    if lin.git_commit:
        dirty = lin.git_dirty
        state = "uncommitted edits" if dirty else "clean" if dirty is False else "state unknown"
        rows.append(("git", f"<code>{esc(lin.git_commit[:12])}</code> ({state})"))
    for fp in lin.inputs:
        rows.append(
            (
                f"input {esc(str(fp.get('name')))}",
                f"<code>{esc(str(fp.get('hash', ''))[:28])}</code>",
            )
        )
    if lin.code_hash:
        rows.append(("code", f"<code>{esc(lin.code_hash[:16])}</code>"))
    if lin.env_hash:
        rows.append(("environment", f"<code>{esc(lin.env_hash[:16])}</code>"))
    rows.append(
        (
            "artifact",
            f"{esc(version.artifact)} ({esc(version.kind)}, {version.size:,} bytes) "
            f"<code>{esc(version.hash[:20])}</code>",
        )
    )
    if lin.notebook:
        rows.append(("notebook", esc(lin.notebook)))
    body = "".join(
        f"<tr><th style='{_CELL};color:#57606a;font-weight:normal'>{k}</th>"
        f"<td style='{_CELL}'>{v}</td></tr>"
        for k, v in rows
    )
    return f"<table class='nbtrack-lineage' style='border-collapse:collapse'>{body}</table>"


def periods_html(periods: Sequence[StagePeriod]) -> str:
    """A version's stage history: each stage, from when until when, who, why."""
    if not periods:
        return "<p><i>no stage history</i></p>"
    items = "".join(
        f"<li>{stage_badge(str(p.stage))} {when(p.since)} → "
        f"{when(p.until) if p.until is not None else 'now'}"
        + (f" by {esc(p.by)}" if p.by else "")
        + (f" ({esc(p.reason)})" if p.reason else "")
        + "</li>"
        for p in periods
    )
    return f"<ul class='nbtrack-periods'>{items}</ul>"


def version_html(
    version: ModelVersion,
    outcome: GateOutcome,
    decisions: Sequence[Decision],
    periods: Sequence[StagePeriod],
    run_status: str | None,
) -> str:
    """Everything about one version: gate results, approvals, lineage, stage history."""
    aliases = " ".join(f"<code>@{esc(a)}</code>" for a in version.aliases)
    return (
        f"<div class='nbtrack-version-detail'><h4 style='margin:6px 0'>{esc(version.model)} "
        f"v{version.version} {stage_badge(str(version.stage))} {aliases}</h4>"
        f"<h5 style='margin:6px 0 2px'>Gates</h5>{gates_html(outcome)}"
        f"<h5 style='margin:6px 0 2px'>Approvals</h5>{decisions_html(decisions)}"
        f"<h5 style='margin:6px 0 2px'>Lineage</h5>{lineage_html(version, run_status)}"
        f"<h5 style='margin:6px 0 2px'>Stages</h5>{periods_html(periods)}</div>"
    )


__all__ = [
    "GateOutcome",
    "decisions_html",
    "gates_html",
    "lineage_html",
    "periods_html",
    "stage_badge",
    "summary_html",
    "verdict",
    "version_html",
    "versions_html",
]
