"""Plain-text and HTML views of registry records, for the CLI, the magics and notebooks.

Pure functions of records (:mod:`nbtrack.registry.records`): nothing here opens the store.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nbtrack.registry.stages import STAGES, Event, step_down_stage

if TYPE_CHECKING:
    # Types only: the records call these renderers from their reprs, so a runtime import
    # back would be a circle.
    from nbtrack.registry.records import (
        AuditCheck,
        AuditEntry,
        Decision,
        GateReport,
        ModelSummary,
        ModelVersion,
        Promotion,
        StagePeriod,
    )

STAGE_COLOURS = {
    "development": "#57606a",
    "staging": "#9a6700",
    "canary": "#8250df",
    "production": "#1a7f37",
    "archived": "#6e7781",
}


def when(moment: float | None) -> str:
    """A timestamp as local ``YYYY-MM-DD HH:MM:SS`` (``—`` for none)."""
    if moment is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a rule under the headers."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _metrics(metrics: dict[str, float], limit: int = 4) -> str:
    items = [f"{k}={v:.6g}" for k, v in list(metrics.items())[:limit]]
    if len(metrics) > limit:
        items.append("…")
    return ", ".join(items)


def gate_text(report: GateReport) -> str:
    """A row per check (passed or FAILED, what decided it, where it is declared) and the
    verdict, as ``nbtrack models gate`` prints it."""
    label = f"{report.model} v{report.version} -> {report.stage}"
    if not report.results:
        where = report.policy_file or "no registry policy declared"
        return f"{label}: no gates or approvals declared for {report.stage} ({where}): PASSED"
    rows = [[r.gate, "passed" if r.passed else "FAILED", r.detail, r.key] for r in report.results]
    verdict = "PASSED" if report.passed else f"FAILED ({len(report.failed)} of {len(rows)})"
    return f"{label}: {verdict}\n" + table(["check", "result", "detail", "declared in"], rows)


def models_text(summaries: Sequence[ModelSummary]) -> str:
    """One line per model: versions, what is in each stage, aliases."""
    if not summaries:
        return "no registered models; register one with `nbtrack models register RUN NAME`"
    stages = [str(s) for s in STAGES if str(s) != "archived"]
    rows = []
    for m in summaries:
        rows.append(
            [m.name, str(m.versions)]
            + [",".join(f"v{v}" for v in m.stages.get(s, [])) for s in stages]
            + [", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())), when(m.updated)]
        )
    return table(["model", "versions", *stages, "aliases", "updated"], rows)


def versions_text(name: str, versions: Sequence[ModelVersion]) -> str:
    """One line per version of a model: stage, aliases, run, metrics, who registered it."""
    rows = [
        [
            f"v{v.version}",
            str(v.stage),
            ", ".join(v.aliases),
            f"#{v.lineage.run_number}",
            _metrics(v.metrics),
            v.created_by,
            when(v.created),
        ]
        for v in versions
    ]
    return f"{name}\n" + table(
        ["version", "stage", "aliases", "run", "metrics", "registered by", "at"], rows
    )


def version_text(
    version: ModelVersion,
    periods: Sequence[StagePeriod] = (),
    decisions: Sequence[Decision] = (),
) -> str:
    """Everything about one version: stage, artifact, lineage, stage history, approvals."""
    lin = version.lineage
    git = lin.git_commit
    lines = [
        f"{version.model} v{version.version}  [{version.stage}]"
        + (f"  aliases: {', '.join(version.aliases)}" if version.aliases else ""),
        f"  ref:       {version.ref}",
        f"  artifact:  {version.artifact} ({version.kind}, {version.size:,} bytes, "
        f"hash {version.hash[:16]})",
        f"  run:       #{lin.run_number} {lin.run_name or ''} (id {lin.run_id[:12]})".rstrip(),
        f"  registered by {version.created_by} on {version.host} at {when(version.created)}",
    ]
    if lin.params:
        lines.append("  params:    " + ", ".join(f"{k}={v!r}" for k, v in lin.params.items()))
    if lin.seed is not None:
        lines.append(f"  seed:      {lin.seed}")
    if lin.metrics:
        lines.append("  metrics:   " + _metrics(lin.metrics, limit=12))
    if git:
        dirty = lin.git_dirty
        state = " (uncommitted edits)" if dirty else "" if dirty is False else " (state unknown)"
        lines.append(f"  git:       {git[:12]}{state}")
    if lin.env_hash:
        lines.append(f"  env:       {lin.env_hash[:16]}")
    if lin.code_hash:
        lines.append(f"  code:      {lin.code_hash[:16]}")
    for fp in lin.inputs:
        lines.append(f"  input:     {fp.get('name')} {str(fp.get('hash', ''))[:28]}")
    if periods:
        lines.append("  stages:")
        for p in periods:
            lines.append(
                f"    {str(p.stage):<12} {when(p.since)} -> {when(p.until) if p.until else 'now'}"
                + (f"  by {p.by}" if p.by else "")
                + (f"  ({p.reason})" if p.reason else "")
            )
    if decisions:
        lines.append("  decisions:")
        for d in decisions:
            verb = "approved" if d.approved else "REJECTED"
            lines.append(
                f"    {verb} for {d.stage} by {d.user} at {when(d.time)}"
                + (f": {d.comment}" if d.comment else "")
            )
    return "\n".join(lines)


def history_text(periods: Sequence[StagePeriod]) -> str:
    """Which version was in a stage when: a row per period."""
    if not periods:
        return "no version was ever there"
    rows = [
        [
            f"v{p.version}",
            str(p.stage),
            when(p.since),
            when(p.until) if p.until is not None else "now",
            p.by or "",
            p.reason or "",
        ]
        for p in periods
    ]
    return table(["version", "stage", "from", "until", "by", "why"], rows)


def audit_text(entries: Sequence[AuditEntry]) -> str:
    """One line per audit entry: when, who, from where, what, why."""
    if not entries:
        return "the audit log is empty"
    lines = []
    for e in entries:
        target = f"{e.model} v{e.version}" if e.model else ""
        if e.stage:
            target += f" -> {e.stage}"
        extra = ""
        if e.event == "alias":
            extra = f" @{e.data.get('alias')}"
        elif e.event == "gate":
            extra = " passed" if e.data.get("passed") else " FAILED"
        elif e.data.get("forced"):
            extra = " FORCED"
        lines.append(
            f"{e.seq:>5}  {when(e.time)}  {e.user}@{e.host}  {e.event:<8} {target}{extra}"
            + (f"  — {e.reason}" if e.reason else "")
        )
    return "\n".join(lines)


def audit_check_text(check: AuditCheck) -> str:
    """The verdict of ``nbtrack models audit --verify``: one line, then one per problem."""
    if check.ok:
        return f"audit log verified: {check.entries} entries, head {check.head[:16]}"
    return "\n".join(
        [
            f"audit log FAILED verification: {len(check.problems)} problem(s) in "
            f"{check.entries} entries; it was edited or entries were deleted",
            *(f"  {p}" for p in check.problems),
        ]
    )


def moved_text(plan: Promotion) -> str:
    """One line saying what a committed promotion, demotion, archive or rollback did."""
    label = f"{plan.model} v{plan.version}"
    if plan.event == Event.ROLLBACK:
        text = f"rolled back {plan.to_stage}: {label} is back (v{plan.step_down} stepped down)"
    else:
        verb = {Event.PROMOTE: "promoted to", Event.DEMOTE: "demoted to"}.get(
            Event(plan.event), "moved to"
        )
        text = f"{label} {verb} {plan.to_stage} (from {plan.from_stage})"
        if plan.step_down is not None:
            text += f"; v{plan.step_down} stepped down to {step_down_stage(plan.to_stage)}"
    if plan.forced:
        text += f"; FORCED past failed gates: {plan.reason}"
    return text


def version_html(version: ModelVersion) -> str:
    """A compact HTML card of one version, for notebooks."""
    colour = STAGE_COLOURS.get(str(version.stage), "#57606a")
    esc = html.escape
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{esc(k)}</th><td>{esc(v)}</td></tr>"
        for k, v in [
            ("ref", version.ref),
            ("artifact", f"{version.artifact} ({version.kind}, {version.size:,} bytes)"),
            ("run", f"#{version.lineage.run_number} {version.lineage.run_name or ''}"),
            ("metrics", _metrics(version.metrics, limit=8)),
            ("registered", f"{version.created_by} at {when(version.created)}"),
        ]
    )
    return (
        f"<div><b>{esc(version.model)} v{version.version}</b> "
        f"<span style='background:{colour};color:white;border-radius:3px;padding:0 4px'>"
        f"{esc(str(version.stage))}</span>"
        + "".join(f" <code>@{esc(a)}</code>" for a in version.aliases)
        + f"<table>{rows}</table></div>"
    )


__all__ = [
    "STAGE_COLOURS",
    "audit_check_text",
    "audit_text",
    "gate_text",
    "history_text",
    "models_text",
    "moved_text",
    "table",
    "version_html",
    "version_text",
    "versions_text",
    "when",
]
