"""HTML pieces of the compare view: table cells, the static run table, the run diff.

Pure functions of frames and :class:`nbtrack.query.RunDiff`; every user value is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbtrack.summary import STATUS_COLOURS, fmt_duration, fmt_value

if TYPE_CHECKING:
    import pandas

    from nbtrack.query import RunDiff

ADDED, REMOVED, CHANGED = "#dafbe1", "#ffebe9", "#fff8c5"
MUTED = "#57606a"
#: What :func:`nbtrack.diff` puts for a key that one of the two runs lacks.
ABSENT = "—"


def column_label(column: str) -> tuple[str, str]:
    """``(group, label)`` for a frame column: ``("params", "lr")`` for ``params.lr``."""
    for group in ("params", "metrics"):
        if column.startswith(group + "."):
            return group, column[len(group) + 1 :]
    labels = {"number": "#", "start_time": "started", "duration": "duration"}
    return "", labels.get(column, column)


def format_cell(column: str, value: Any) -> str:
    """The text a table cell shows for ``value`` in ``column`` (plain text, not HTML)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column == "duration":
        return fmt_duration(float(value))
    if column in ("start_time", "end_time"):
        try:
            return str(value.strftime("%Y-%m-%d %H:%M"))
        except (AttributeError, ValueError):
            return ""
    if column == "tags":
        return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    if column.startswith("metrics.") and isinstance(value, float):
        return f"{value:.4g}"
    return fmt_value(value, 28)


def table_rows(
    view: pandas.DataFrame, columns: Sequence[str], best: dict[str, int]
) -> list[dict[str, Any]]:
    """Rows for the table widget: the formatted cells and which cells hold a best value."""
    rows = []
    records = view[list(columns)].to_dict("list") if len(view) else {c: [] for c in columns}
    numbers = [int(n) for n in view["number"].tolist()] if len(view) else []
    statuses = view["status"].tolist() if len(view) else []
    for i, number in enumerate(numbers):
        cells = [format_cell(c, records[c][i]) for c in columns]
        rows.append(
            {
                "number": number,
                "cells": cells,
                "status": str(statuses[i]),
                "best": [j for j, c in enumerate(columns) if best.get(c) == number],
            }
        )
    return rows


def static_table(
    view: pandas.DataFrame,
    columns: Sequence[str],
    best: dict[str, int],
    selected: Sequence[int] = (),
) -> str:
    """The filtered runs as one HTML table (for ``save_html``), best values in bold green."""
    head = "".join(f"<th>{html.escape(column_label(c)[1])}</th>" for c in columns)
    names = [column_label(c)[0] for c in columns]
    groups = "".join(
        f"<th>{html.escape(g if i == 0 or names[i - 1] != g else '')}</th>"
        for i, g in enumerate(names)
    )
    chosen = set(selected)
    body = []
    for row in table_rows(view, columns, best):
        cells = []
        for j, text in enumerate(row["cells"]):
            style = " class='best'" if j in row["best"] else ""
            cells.append(f"<td{style}>{html.escape(text)}</td>")
        cls = " class='selected'" if row["number"] in chosen else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f"<table class='nbtrack-runs'><thead><tr class='groups'>{groups}</tr>"
        f"<tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _diff_row(key: str, a: Any, b: Any, changed: bool) -> str:
    if not changed:
        return (
            f"<tr class='same'><td><code>{html.escape(key)}</code></td>"
            f"<td colspan='2' style='color:{MUTED}'>{html.escape(fmt_value(a, 60))}</td></tr>"
        )
    left = REMOVED if a != ABSENT else CHANGED
    right = ADDED if b != ABSENT else CHANGED
    return (
        f"<tr class='changed'><td><code>{html.escape(key)}</code></td>"
        f"<td style='background:{left}'>{html.escape(fmt_value(a, 60))}</td>"
        f"<td style='background:{right}'>{html.escape(fmt_value(b, 60))}</td></tr>"
    )


def diff_html(d: RunDiff, *, show_unchanged: bool = False) -> str:
    """Two runs side by side, section by section; changed values highlighted.

    By default only differences are listed (what :func:`nbtrack.diff` found); with
    ``show_unchanged`` params, metrics and seeds that agree are listed too, greyed.
    """
    a, b = d.a, d.b
    parts = [
        "<div class='nbtrack-diff'>",
        f"<table class='nbtrack-difftable'><thead><tr><th></th>"
        f"<th>{html.escape(_label(a))}</th><th>{html.escape(_label(b))}</th></tr></thead>",
    ]
    unchanged: dict[str, dict[str, Any]] = {}
    if show_unchanged:
        unchanged = {
            "params": {
                k: a.params[k] for k in a.params if k in b.params and a.params[k] == b.params[k]
            },
            "metrics": {
                k: a.metrics[k]
                for k in a.metrics
                if k in b.metrics and a.metrics[k] == b.metrics[k]
            },
            "seeds": {
                k: v
                for k, v in (("seed", a.seed), ("deterministic", a.deterministic))
                if v == (b.seed if k == "seed" else b.deterministic)
            },
        }
    any_rows = False
    for section, rows in d.sections.items():
        same = unchanged.get(section, {})
        if not rows and not same:
            continue
        any_rows = True
        parts.append(
            f"<tbody><tr><th colspan='3' class='section'>{html.escape(section)}"
            f"{'' if rows else ' (no differences)'}</th></tr>"
        )
        merged = [(k, va, vb, True) for k, va, vb in rows]
        merged += [(k, v, v, False) for k, v in same.items()]
        merged.sort(key=lambda r: str(r[0]))
        parts.extend(_diff_row(k, va, vb, changed) for k, va, vb, changed in merged)
        parts.append("</tbody>")
    parts.append("</table>")
    if d.code_diff:
        any_rows = True
        lines = []
        for line in d.code_diff.splitlines():
            colour = (
                ADDED
                if line.startswith("+") and not line.startswith("+++")
                else REMOVED
                if line.startswith("-") and not line.startswith("---")
                else ""
            )
            style = f" style='background:{colour}'" if colour else ""
            lines.append(f"<div{style}>{html.escape(line) or '&nbsp;'}</div>")
        parts.append(
            "<div class='section'><b>code</b></div>"
            f"<pre class='nbtrack-codediff'>{''.join(lines)}</pre>"
        )
    if not any_rows:
        parts.append(
            f"<div style='color:{MUTED}'>runs #{a.number} and #{b.number} differ in "
            "nothing compared (params, seeds, environment, inputs, code)</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def _label(record: Any) -> str:
    return f"#{record.number} {record.name or ''}".strip()


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, MUTED)


CSS = """
.nbtrack-compare { font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px; }
.nbtrack-error { color: #cf222e; font-weight: 600; }
.nbtrack-diff table { border-collapse: collapse; }
.nbtrack-diff td, .nbtrack-diff th { padding: 2px 10px 2px 2px; text-align: left;
  vertical-align: top; font-size: 12px; }
.nbtrack-diff th.section { padding-top: 8px; border-bottom: 1px solid #d0d7de; }
.nbtrack-codediff { font-size: 11px; line-height: 1.35; max-height: 320px; overflow: auto;
  background: #f6f8fa; padding: 6px; }
table.nbtrack-runs { border-collapse: collapse; font-size: 12px; }
table.nbtrack-runs th, table.nbtrack-runs td { padding: 2px 8px; border-bottom: 1px solid #eaeef2;
  text-align: left; white-space: nowrap; }
table.nbtrack-runs tr.groups th { color: #57606a; font-weight: normal; font-size: 10px; }
table.nbtrack-runs td.best { background: #dafbe1; font-weight: 700; }
table.nbtrack-runs tr.selected td { background: #ddf4ff; }
"""
