"""Human-readable views of runs and diffs: plain text for terminals, HTML for notebooks.

Pure functions of records: nothing here opens the store. Deltas against the best earlier
run are computed by whoever shows the summary (:func:`nbtrack.query.metric_deltas`) and
passed in; without them the summary shows the values alone.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbtrack.records import MetricDelta, RunDiff, RunRecord

#: The deltas a summary may be given: metric -> change against the best earlier run.
Deltas = Mapping[str, "MetricDelta"] | None

STATUS_COLOURS = {
    "finished": "#1a7f37",
    "failed": "#cf222e",
    "interrupted": "#9a6700",
    "crashed": "#cf222e",
    "running": "#0969da",
}
VERDICT_COLOURS = {"better": "#1a7f37", "worse": "#cf222e", "same": "#57606a"}


def fmt_value(value: Any, width: int = 40) -> str:
    """A short display form of a param or metric value."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt_duration(seconds: float | None) -> str:
    """``0.42s``, ``3m 05s``, ``1h 02m``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _verdict(delta: MetricDelta) -> str:
    """``better`` / ``worse`` / ``same`` in the metric's own direction."""
    return "better" if delta.improved else "worse" if delta.worse else "same"


def _headline(record: RunRecord) -> str:
    name = record.name or "(unnamed)"
    return f"run #{record.number} {name} — {record.status} in {fmt_duration(record.duration)}"


def run_text(record: RunRecord, deltas: Deltas = None) -> str:
    """A compact plain-text summary of a run; ``deltas`` adds each metric's change against
    the best earlier run (``+0.02 vs best #3, better``)."""
    lines = [f"nbtrack: {_headline(record)}  (id {record.id[:12]})"]
    if record.user:
        lines.append(f"  user:    {record.user}")
    if record.project:
        lines.append(f"  project: {record.project}")
    if record.tags:
        lines.append("  tags:    " + ", ".join(record.tags))
    if record.note:
        lines.append(f"  note:    {_one_line(record.note)}")
    if record.params:
        lines.append(
            "  params:  " + ", ".join(f"{k}={fmt_value(v, 24)}" for k, v in record.params.items())
        )
    if record.seed is not None:
        lines.append(
            f"  seed:    {record.seed}" + (" (deterministic)" if record.deterministic else "")
        )
    if record.metrics:
        changes = deltas or {}
        parts = []
        for key, value in record.metrics.items():
            text = f"{key}={fmt_value(value)}"
            delta = changes.get(key)
            if delta is not None:
                text += f" ({delta.change:+.4g} vs best #{delta.best_number}, {_verdict(delta)})"
            parts.append(text)
        lines.append("  metrics: " + ", ".join(parts))
    if record.inputs:
        lines.append(
            "  inputs:  "
            + ", ".join(f"{i.name} {_shape(i)}{i.hash.split(':')[-1][:8]}" for i in record.inputs)
        )
    if record.artifacts:
        lines.append("  artifacts: " + ", ".join(a.name for a in record.artifacts))
    if record.error:
        lines.append(f"  error:   {record.error.get('type')}: {record.error.get('message')}")
    for warning in record.warnings:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def _one_line(text: str, width: int = 200) -> str:
    """``text`` on one line (whitespace runs folded), cut at ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _shape(fp: Any) -> str:
    shape = fp.meta.get("shape")
    return f"{tuple(shape)} " if shape else ""


def _table(rows: list[tuple[str, str]], title: str) -> str:
    body = "".join(
        f"<tr><td style='text-align:left;padding:1px 8px 1px 0'><code>{html.escape(k)}"
        f"</code></td><td style='text-align:left'>{v}</td></tr>"
        for k, v in rows
    )
    return (
        f"<div style='margin:4px 16px 4px 0'><b>{html.escape(title)}</b>"
        f"<table style='border-collapse:collapse;margin:0'>{body}</table></div>"
    )


def run_html(record: RunRecord, deltas: Deltas = None) -> str:
    """The run summary as an HTML snippet for notebooks (``deltas`` as for :func:`run_text`)."""
    colour = STATUS_COLOURS.get(record.status, "#57606a")
    parts = [
        "<div class='nbtrack-summary' style='font-family:var(--jp-ui-font-family,sans-serif);"
        "font-size:12px;border-left:3px solid " + colour + ";padding:4px 10px'>",
        f"<div><b>nbtrack</b> run <b>#{record.number}</b> "
        f"<code>{html.escape(record.name or '(unnamed)')}</code> "
        f"<span style='color:{colour}'>{html.escape(record.status)}</span> in "
        f"{fmt_duration(record.duration)} <span style='color:#57606a'>id {record.id[:12]}"
        + (f" · by {html.escape(record.user)}" if record.user else "")
        + (f" · project {html.escape(record.project)}" if record.project else "")
        + (f" · tags {html.escape(', '.join(record.tags))}" if record.tags else "")
        + "</span></div>",
        *(
            [f"<div style='color:#57606a'>{html.escape(_one_line(record.note, 500))}</div>"]
            if record.note
            else []
        ),
        "<div style='display:flex;flex-wrap:wrap'>",
    ]
    if record.params:
        parts.append(
            _table([(k, html.escape(fmt_value(v))) for k, v in record.params.items()], "params")
        )
    if record.metrics:
        changes = deltas or {}
        rows = []
        for key, value in record.metrics.items():
            cell = html.escape(fmt_value(value))
            delta = changes.get(key)
            if delta is not None:
                verdict = _verdict(delta)
                tint = VERDICT_COLOURS[verdict]
                cell += (
                    f" <span style='color:{tint}' title='{verdict}'>{delta.change:+.4g}</span>"
                    f" <span style='color:#57606a'>vs best #{delta.best_number}, {verdict}</span>"
                )
            rows.append((key, cell))
        parts.append(_table(rows, "metrics"))
    if record.inputs:
        parts.append(
            _table(
                [
                    (i.name, html.escape(f"{_shape(i)}{i.hash.split(':')[-1][:12]}"))
                    for i in record.inputs
                ],
                "inputs",
            )
        )
    if record.seed is not None:
        parts.append(
            _table(
                [("seed", str(record.seed)), ("deterministic", str(record.deterministic))], "seed"
            )
        )
    parts.append("</div>")
    if record.error:
        parts.append(
            f"<div style='color:#cf222e'>{html.escape(str(record.error.get('type')))}: "
            f"{html.escape(str(record.error.get('message')))}</div>"
        )
    for warning in record.warnings:
        parts.append(f"<div style='color:#9a6700'>warning: {html.escape(warning)}</div>")
    parts.append("</div>")
    return "".join(parts)


def diff_text(d: RunDiff) -> str:
    """A diff of two runs as plain text, section by section."""
    lines = [f"diff run #{d.a.number} → run #{d.b.number}"]
    for section, rows in d.sections.items():
        if not rows:
            continue
        lines.append(f"{section}:")
        width = max(len(k) for k, _, _ in rows)
        for key, va, vb in rows:
            lines.append(f"  {key.ljust(width)}  {fmt_value(va)}  →  {fmt_value(vb)}")
    if d.code_diff:
        lines.append("code:")
        lines.extend("  " + line for line in d.code_diff.rstrip("\n").splitlines())
    if len(lines) == 1:
        lines.append("  (no differences)")
    return "\n".join(lines)


def diff_html(d: RunDiff) -> str:
    """A diff of two runs as HTML, changed values highlighted."""
    parts = [f"<div class='nbtrack-diff'><b>diff run #{d.a.number} → run #{d.b.number}</b>"]
    for section, rows in d.sections.items():
        if not rows:
            continue
        body = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td>"
            f"<td style='background:#ffebe9'>{html.escape(fmt_value(va))}</td>"
            f"<td style='background:#dafbe1'>{html.escape(fmt_value(vb))}</td></tr>"
            for k, va, vb in rows
        )
        parts.append(f"<div><b>{section}</b><table>{body}</table></div>")
    if d.code_diff:
        parts.append(f"<div><b>code</b><pre>{html.escape(d.code_diff)}</pre></div>")
    if d.empty:
        parts.append("<div>(no differences)</div>")
    parts.append("</div>")
    return "".join(parts)
