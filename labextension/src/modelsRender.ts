/**
 * HTML for the Models section and the registry dialogs. Pure string building (every value is
 * escaped), tested with `node --test`: no JupyterLab imports. What a gate says, whether a
 * promotion may go ahead, which version a rollback brings back: all of it comes from the
 * server (the registry decides); these functions only show it.
 */
import { escapeHtml, formatValue, headlineMetrics } from './format.js';
import type {
  IAuditEntry,
  IGateReport,
  IModelDetailReply,
  IModelSummary,
  IModelVersion,
  IPromoteDryRun,
  IRollbackDryRun,
  IVersionDetail,
  Stage
} from './tokens';

/** Stages that have their own badge colour (the others share one look). */
const KNOWN_STAGES = ['development', 'staging', 'canary', 'production', 'archived'];

/** The CSS class of a stage badge. */
export function stageClass(stage: Stage): string {
  return `nbtrack-stage-${KNOWN_STAGES.includes(stage) ? stage : 'other'}`;
}

/** A stage badge, optionally with text after the stage's name (`production v3`). */
export function stageBadge(stage: Stage, suffix = ''): string {
  const text = suffix ? `${stage} ${suffix}` : stage;
  return `<span class="nbtrack-stage ${stageClass(stage)}" data-stage="${escapeHtml(stage)}">${escapeHtml(text)}</span>`;
}

/** `2024-05-01 14:02` in local time; `—` when unknown. */
export function formatTime(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '—';
  }
  const d = new Date(seconds * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`
  );
}

/** The stages a version in `stage` may be promoted into, from the server's ordered list. */
export function laterStages(stage: Stage, stages: Stage[]): Stage[] {
  const at = stages.indexOf(stage);
  if (at < 0 || stage === 'archived') {
    return [];
  }
  return stages.slice(at + 1).filter(s => s !== 'archived');
}

/** One row of the model list: its name, the versions in each stage, its aliases. */
export function renderModelRow(model: IModelSummary, stages: Stage[], open: boolean): string {
  const badges = stages
    .filter(s => (model.stages[s] ?? []).length > 0)
    .map(s => stageBadge(s, model.stages[s].map(v => `v${v}`).join(' ')))
    .join('');
  const aliases = Object.entries(model.aliases)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([a, v]) => `<span class="nbtrack-alias">@${escapeHtml(a)} v${v}</span>`)
    .join('');
  const count = `${model.versions} version${model.versions === 1 ? '' : 's'}`;
  return (
    `<div class="nbtrack-model-head" role="button" tabindex="0" aria-expanded="${open}">` +
    `<span class="nbtrack-model-toggle">${open ? '▾' : '▸'}</span>` +
    `<span class="nbtrack-model-name">${escapeHtml(model.name)}</span>` +
    `<span class="nbtrack-dim">${escapeHtml(count)}</span>` +
    `<span class="nbtrack-model-badges">${badges}${aliases}</span>` +
    '</div>'
  );
}

/** The gate results as a table: a mark, the check, what decided it; hover: where declared.
 * `compact` (the narrow side panel): one item per check, what decided it below. */
export function renderGateTable(report: IGateReport, compact = false): string {
  if (report.results.length === 0) {
    if (compact) {
      return '';
    }
    const where = report.policy_file ? escapeHtml(report.policy_file) : 'no registry policy';
    return `<p class="nbtrack-empty">No gates or approvals declared for ${escapeHtml(report.stage)} (${where}).</p>`;
  }
  const cls = (passed: boolean) => (passed ? 'nbtrack-gate-passed' : 'nbtrack-gate-failed');
  if (compact) {
    const items = report.results
      .map(
        r =>
          `<li class="${cls(r.passed)}" title="${escapeHtml(r.key)}">` +
          `<span class="nbtrack-gate-mark">${r.passed ? '✓' : '✗'}</span>` +
          `<span class="nbtrack-gate-name">${escapeHtml(r.gate)}</span> ` +
          `<span class="nbtrack-gate-detail">${escapeHtml(r.detail)}</span></li>`
      )
      .join('');
    return `<ul class="nbtrack-gates-compact">${items}</ul>`;
  }
  const rows = report.results
    .map(
      r =>
        `<tr class="${cls(r.passed)}" title="${escapeHtml(r.key)}">` +
        `<td class="nbtrack-gate-mark">${r.passed ? '✓' : '✗'}</td>` +
        `<th>${escapeHtml(r.gate)}</th><td>${escapeHtml(r.detail)}</td></tr>`
    )
    .join('');
  return `<table class="nbtrack-gates"><tbody>${rows}</tbody></table>`;
}

/** `passed` or `2 of 5 checks failed`. */
export function gateVerdict(report: IGateReport): string {
  if (report.results.length === 0) {
    return 'no gates declared';
  }
  const failed = report.results.filter(r => !r.passed).length;
  return failed === 0 ? 'passed' : `${failed} of ${report.results.length} checks failed`;
}

function versionHead(v: IVersionDetail): string {
  const aliases = v.aliases
    .map(a => `<span class="nbtrack-alias">@${escapeHtml(a)}</span>`)
    .join('');
  const run =
    v.run.status === null
      ? `<span class="nbtrack-dim" title="the run was deleted; the version keeps its lineage">run #${v.run.number} (deleted)</span>`
      : `<a href="#" class="nbtrack-run-link" data-run="${v.run.number}" title="open run #${v.run.number} in the Runs panel">run #${v.run.number}</a>`;
  const metrics = headlineMetrics(v.lineage.metrics)
    .map(
      ([k, val]) => `<span class="nbtrack-metric">${escapeHtml(k)} <b>${escapeHtml(val)}</b></span>`
    )
    .join('');
  return (
    `<div class="nbtrack-version-head"><span class="nbtrack-version-number">v${v.version}</span>` +
    `${stageBadge(v.stage)}${aliases}${run}</div>` +
    `<div class="nbtrack-version-metrics">${metrics}</div>`
  );
}

function gateLine(v: IVersionDetail): string {
  if (!v.gate || !v.target) {
    return '';
  }
  if (v.gate.error || !v.gate.report) {
    return `<div class="nbtrack-error-text">→ ${escapeHtml(v.target)}: ${escapeHtml(v.gate.error ?? 'cannot be checked')}</div>`;
  }
  const report = v.gate.report;
  const cls = report.passed ? 'nbtrack-gate-ok' : 'nbtrack-gate-bad';
  return (
    `<div class="nbtrack-gate-line ${cls}">→ ${escapeHtml(v.target)}: ${escapeHtml(gateVerdict(report))}</div>` +
    renderGateTable(report, true)
  );
}

function lineageRows(v: IModelVersion): Array<[string, string]> {
  const lin = v.lineage;
  const code = (text: string | null | undefined, n = 12) =>
    text ? `<code>${escapeHtml(String(text).slice(0, n))}</code>` : '—';
  const rows: Array<[string, string]> = [
    ['run', escapeHtml(`#${lin.run_number} ${lin.run_name ?? ''}`.trim())],
    [
      'params',
      escapeHtml(
        Object.entries(lin.params)
          .map(([k, val]) => `${k}=${formatValue(val)}`)
          .join(', ') || '—'
      )
    ],
    [
      'metrics',
      escapeHtml(
        Object.entries(lin.metrics)
          .map(([k, val]) => `${k}=${formatValue(val)}`)
          .join(', ') || '—'
      )
    ],
    ['seed', escapeHtml(formatValue(lin.seed))]
  ];
  if (lin.git && lin.git.commit) {
    const dirty =
      lin.git.dirty === true ? ' (uncommitted edits)' : lin.git.dirty === false ? ' (clean)' : '';
    rows.push(['git', `${code(String(lin.git.commit))}${escapeHtml(dirty)}`]);
  }
  for (const input of lin.inputs) {
    rows.push([`input ${input.name}`, code(input.hash as string | undefined, 28)]);
  }
  rows.push(['code', code(lin.code_hash)]);
  rows.push(['environment', code(lin.env_hash)]);
  rows.push(['artifact', `${escapeHtml(v.artifact.name)} ${code(v.artifact.hash, 20)}`]);
  rows.push(['registered', escapeHtml(`${v.created_by} at ${formatTime(v.created)}`)]);
  return rows;
}

function kv(rows: Array<[string, string]>): string {
  const body = rows.map(([k, val]) => `<tr><th>${escapeHtml(k)}</th><td>${val}</td></tr>`).join('');
  return `<table class="nbtrack-kv"><tbody>${body}</tbody></table>`;
}

function decisionsHtml(v: IVersionDetail): string {
  if (!v.decisions.length) {
    return '<p class="nbtrack-empty">no approvals yet</p>';
  }
  const items = v.decisions
    .map(
      d =>
        `<li class="nbtrack-decision-${d.decision}">${d.decision === 'approve' ? 'approved' : 'REJECTED'} ` +
        `for ${escapeHtml(d.stage)} by ${escapeHtml(d.user)} ` +
        `<span class="nbtrack-dim">${escapeHtml(formatTime(d.time))}</span>` +
        (d.comment ? `: ${escapeHtml(d.comment)}` : '') +
        '</li>'
    )
    .join('');
  return `<ul class="nbtrack-decisions">${items}</ul>`;
}

function periodsHtml(v: IVersionDetail): string {
  const items = v.periods
    .map(
      p =>
        `<li>${stageBadge(p.stage)} ${escapeHtml(formatTime(p.since))} → ` +
        `${p.until === null ? 'now' : escapeHtml(formatTime(p.until))}` +
        (p.by ? ` <span class="nbtrack-dim">by ${escapeHtml(p.by)}</span>` : '') +
        (p.reason ? ` <span class="nbtrack-dim">(${escapeHtml(p.reason)})</span>` : '') +
        '</li>'
    )
    .join('');
  return `<ul class="nbtrack-periods">${items}</ul>`;
}

function button(
  cls: string,
  label: string,
  data: Record<string, string | number>,
  title: string
): string {
  const attrs = Object.entries(data)
    .map(([k, val]) => ` data-${k}="${escapeHtml(String(val))}"`)
    .join('');
  return `<button class="jp-Button jp-mod-styled nbtrack-model-action ${cls}"${attrs} title="${escapeHtml(title)}">${escapeHtml(label)}</button>`;
}

/** One version: head line, gate results for its next stage, actions, and on demand its
 * approvals, lineage and stage history. */
export function renderVersion(v: IVersionDetail, stages: Stage[]): string {
  const actions: string[] = [];
  if (laterStages(v.stage, stages).length) {
    actions.push(
      button(
        'nbtrack-promote',
        'Promote…',
        { model: v.model, version: v.version, stage: v.target ?? laterStages(v.stage, stages)[0] },
        `check the gates, then promote v${v.version}`
      )
    );
  }
  if (v.stage !== 'archived' && v.target) {
    actions.push(
      button(
        'nbtrack-approve',
        'Approve…',
        { model: v.model, version: v.version, stage: v.target },
        `approve or reject v${v.version} for a stage`
      )
    );
  }
  return (
    `<li class="nbtrack-version" data-model="${escapeHtml(v.model)}" data-version="${v.version}">` +
    versionHead(v) +
    gateLine(v) +
    (actions.length ? `<div class="nbtrack-model-actions">${actions.join('')}</div>` : '') +
    '<details class="nbtrack-version-more"><summary>approvals, lineage, history</summary>' +
    `<h4>Approvals</h4>${decisionsHtml(v)}` +
    `<h4>Lineage</h4>${kv(lineageRows(v))}` +
    `<h4>Stages</h4>${periodsHtml(v)}` +
    '</details></li>'
  );
}

/** A model's versions (newest first), its rollback actions, and its latest audit events. */
export function renderModelDetail(detail: IModelDetailReply, audit: IAuditEntry[] = []): string {
  const parts: string[] = [];
  if (detail.policy_error) {
    parts.push(`<p class="nbtrack-error-text">${escapeHtml(detail.policy_error)}</p>`);
  }
  const rollbacks = detail.stages
    .filter(s => s !== 'development' && s !== 'archived' && (detail.model.stages[s] ?? []).length)
    .map(s =>
      button(
        'nbtrack-rollback',
        `Roll back ${s}…`,
        { model: detail.model.name, stage: s },
        `put back the version that was in ${s} before`
      )
    );
  if (rollbacks.length) {
    parts.push(`<div class="nbtrack-model-actions">${rollbacks.join('')}</div>`);
  }
  parts.push(
    `<ul class="nbtrack-versions">${detail.versions.map(v => renderVersion(v, detail.stages)).join('')}</ul>`
  );
  if (audit.length) {
    parts.push(
      `<details class="nbtrack-audit"><summary>audit log (latest ${audit.length})</summary>${renderAudit(audit)}</details>`
    );
  }
  return parts.join('');
}

/** Audit entries, newest first: when, who, what, why. */
export function renderAudit(entries: IAuditEntry[]): string {
  const items = [...entries]
    .reverse()
    .map(e => {
      const what = [
        e.event,
        e.version !== null ? `v${e.version}` : '',
        e.stage ? `→ ${e.stage}` : ''
      ]
        .filter(Boolean)
        .join(' ');
      const extra =
        e.event === 'gate'
          ? e.data.passed
            ? ' passed'
            : ' FAILED'
          : e.data.forced
            ? ' FORCED'
            : '';
      return (
        `<li><span class="nbtrack-dim">#${e.seq} ${escapeHtml(formatTime(e.time))}</span> ` +
        `${escapeHtml(e.user)}: <b>${escapeHtml(what + extra)}</b>` +
        (e.reason ? ` — ${escapeHtml(e.reason)}` : '') +
        '</li>'
      );
    })
    .join('');
  return `<ul class="nbtrack-audit-entries">${items}</ul>`;
}

/** Whether the Promote dialog may go ahead, what its button says, and what to tell the user. */
export interface IPromotionVerdict {
  canAccept: boolean;
  acceptLabel: string;
  /** only validation gates failed: a forced promotion (with a reason) is possible */
  forceable: boolean;
  note: string;
}

/** What the dry run says for the dialog; `force` is the dialog's "force" box. */
export function promotionVerdict(dry: IPromoteDryRun, force: boolean): IPromotionVerdict {
  const v = dry.version;
  if (v.stage === dry.stage) {
    return {
      canAccept: false,
      acceptLabel: 'Promote',
      forceable: false,
      note: `v${v.version} is already in ${dry.stage}.`
    };
  }
  if (v.stage === 'archived') {
    return {
      canAccept: false,
      acceptLabel: 'Promote',
      forceable: false,
      note: `v${v.version} is archived, and an archived version cannot move again.`
    };
  }
  const failed = dry.report.results.filter(r => !r.passed);
  if (failed.length === 0) {
    return {
      canAccept: true,
      acceptLabel: 'Promote',
      forceable: false,
      note: 'Every check passed.'
    };
  }
  const blocking = failed.filter(r => r.kind !== 'gate');
  if (blocking.length) {
    return {
      canAccept: false,
      acceptLabel: 'Promote',
      forceable: false,
      note: `${failed.length} of ${dry.report.results.length} checks failed; approvals cannot be forced.`
    };
  }
  return {
    canAccept: force,
    acceptLabel: force ? 'Force promote' : 'Promote',
    forceable: true,
    note: `${failed.length} of ${dry.report.results.length} checks failed. Forcing past failed gates needs a reason, which is recorded.`
  };
}

/** The top of the Promote dialog: the move, and who steps down to make room. */
export function renderPromoteSummary(dry: IPromoteDryRun): string {
  const v = dry.version;
  const lines = [
    `<p><b>${escapeHtml(v.model)} v${v.version}</b>: ${stageBadge(v.stage)} → ${stageBadge(dry.stage)}</p>`
  ];
  if (dry.replaces !== null && dry.replaces !== undefined) {
    lines.push(
      `<p class="nbtrack-dim">v${dry.replaces}, in ${escapeHtml(dry.stage)} now, steps down to ${escapeHtml(dry.replaced_to ?? '')}.</p>`
    );
  }
  lines.push(`<p class="nbtrack-dim">Acting as ${escapeHtml(dry.user)}.</p>`);
  return lines.join('');
}

/** The Rollback dialog's body: which version comes back, which leaves, their metrics, and the
 * gates as they stand now (information only: a rollback does not re-run them). */
export function renderRollbackSummary(dry: IRollbackDryRun): string {
  const back = dry.version;
  const leaving = dry.leaving;
  const parts = [
    `<p>${stageBadge(dry.plan.to)} of <b>${escapeHtml(back.model)}</b>: ` +
      `<b>v${back.version}</b> comes back` +
      (leaving ? `, v${leaving.version} steps down.` : '.') +
      '</p>'
  ];
  const keys = [
    ...new Set([
      ...Object.keys(back.lineage.metrics),
      ...Object.keys(leaving?.lineage.metrics ?? {})
    ])
  ];
  if (keys.length) {
    const head = `<tr><th></th><th>v${back.version} (back)</th>${leaving ? `<th>v${leaving.version} (now)</th>` : ''}</tr>`;
    const rows = keys
      .map(
        k =>
          `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(formatValue(back.lineage.metrics[k]))}</td>` +
          (leaving ? `<td>${escapeHtml(formatValue(leaving.lineage.metrics[k]))}</td>` : '') +
          '</tr>'
      )
      .join('');
    parts.push(
      `<table class="nbtrack-diff nbtrack-rollback-metrics"><thead>${head}</thead><tbody>${rows}</tbody></table>`
    );
  }
  if (dry.report) {
    parts.push(
      `<p class="nbtrack-dim">The gates for ${escapeHtml(dry.plan.to)} as they stand now (a rollback does not re-run them; v${back.version} passed them when it first entered):</p>` +
        renderGateTable(dry.report)
    );
  } else if (dry.gate_error) {
    parts.push(`<p class="nbtrack-error-text">${escapeHtml(dry.gate_error)}</p>`);
  }
  parts.push(`<p class="nbtrack-dim">Acting as ${escapeHtml(dry.user)}.</p>`);
  return parts.join('');
}
