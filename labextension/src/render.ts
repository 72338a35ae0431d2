/**
 * HTML for the run details and the diff of two runs. Pure string building (every value is
 * escaped), tested with `node --test`; the panel puts the result into its DOM.
 */
import {
  escapeHtml,
  formatBytes,
  formatDuration,
  formatValue,
  runTitle,
  statusClass
} from './format.js';
import type { IDiffReply, IRunDetails } from './tokens';

function table(rows: Array<[string, string]>, cls = 'nbtrack-kv'): string {
  if (rows.length === 0) {
    return '<p class="nbtrack-empty">none</p>';
  }
  const body = rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`).join('');
  return `<table class="${cls}"><tbody>${body}</tbody></table>`;
}

function section(title: string, html: string): string {
  return `<section class="nbtrack-section"><h3>${escapeHtml(title)}</h3>${html}</section>`;
}

function text(value: unknown): string {
  return escapeHtml(formatValue(value));
}

/** A JSON object whose fields are read one by one: the environment's shape varies by machine. */
type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object';
}

/** A short environment summary: Python, OS, host, CPU/GPU, package count. */
export function environmentRows(env: JsonObject): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  const python = env.python;
  if (isObject(python)) {
    rows.push(['python', text(python.version ?? python.implementation ?? JSON.stringify(python))]);
  } else if (python) {
    rows.push(['python', text(python)]);
  }
  const os = env.os;
  if (isObject(os)) {
    rows.push([
      'os',
      text([os.system, os.release].filter(Boolean).join(' ') || JSON.stringify(os))
    ]);
  } else if (os) {
    rows.push(['os', text(os)]);
  }
  if (env.hostname) {
    rows.push(['host', text(env.hostname)]);
  }
  const gpu = env.gpu;
  if (isObject(gpu) && Object.keys(gpu).length) {
    const devices = gpu.devices;
    const name =
      gpu.name ??
      (Array.isArray(devices)
        ? devices.map((d: unknown) => (isObject(d) ? d.name : undefined) ?? d).join(', ')
        : '');
    rows.push(['gpu', text(name || JSON.stringify(gpu))]);
  }
  const packages = env.packages;
  if (isObject(packages)) {
    const names = Object.keys(packages);
    const notable = ['numpy', 'pandas', 'torch', 'scikit-learn', 'tensorflow', 'jax']
      .filter(n => n in packages)
      .map(n => `${n} ${packages[n]}`);
    rows.push([
      'packages',
      text(`${names.length} installed${notable.length ? ': ' + notable.join(', ') : ''}`)
    ]);
  }
  return rows;
}

/** The details view of one run. */
export function renderRunDetails(run: IRunDetails): string {
  const parts: string[] = [];
  parts.push(
    `<h2 class="nbtrack-details-title">${escapeHtml(runTitle(run))} ` +
      `<span class="nbtrack-status ${statusClass(run.status)}">${escapeHtml(run.status)}</span></h2>`
  );
  if (run.notice) {
    parts.push(`<p class="nbtrack-notice">${escapeHtml(run.notice)}</p>`);
  }
  if (run.error) {
    parts.push(
      `<p class="nbtrack-error-text">${escapeHtml(`${run.error.type ?? 'Error'}: ${run.error.message ?? ''}`)}</p>`
    );
  }
  const facts: Array<[string, string]> = [
    ['started', escapeHtml(new Date(run.start_time * 1000).toLocaleString())],
    ['duration', escapeHtml(formatDuration(run.duration))],
    ['id', `<code>${escapeHtml(run.id)}</code>`]
  ];
  if (run.execution_count !== null && run.execution_count !== undefined) {
    facts.push(['cell', escapeHtml(`In [${run.execution_count}]`)]);
  }
  // Who ran it and for which project: what a team store's runs differ by (docs/team.md).
  if (run.project) {
    facts.push(['project', escapeHtml(run.project)]);
  }
  if (run.user) {
    facts.push(['user', escapeHtml(run.user)]);
  }
  if (run.tags.length) {
    facts.push(['tags', escapeHtml(run.tags.join(', '))]);
  }
  if (run.note) {
    facts.push(['note', escapeHtml(run.note)]);
  }
  parts.push(table(facts));
  parts.push(
    section(
      'Metrics',
      table(
        Object.entries(run.metrics).map(([k, v]) => {
          const points = run.metric_points[k] ?? 0;
          return [
            k,
            text(v) + (points > 1 ? ` <span class="nbtrack-dim">(${points} steps)</span>` : '')
          ];
        })
      )
    )
  );
  parts.push(section('Params', table(Object.entries(run.params).map(([k, v]) => [k, text(v)]))));
  const seed: Array<[string, string]> = [
    ['seed', text(run.seed)],
    ['deterministic', text(run.deterministic ? 'yes' : 'no')]
  ];
  if (run.seed_calls.length) {
    seed.push(['seed calls', text(run.seed_calls.length)]);
  }
  parts.push(section('Seed', table(seed)));
  const gitRows: Array<[string, string]> = [];
  for (const key of ['commit', 'branch', 'dirty']) {
    if (key in run.git) {
      gitRows.push([
        `git ${key}`,
        text(key === 'commit' ? String(run.git[key]).slice(0, 10) : run.git[key])
      ]);
    }
  }
  parts.push(section('Environment', table([...environmentRows(run.environment), ...gitRows])));
  parts.push(
    section(
      'Inputs',
      table(
        run.inputs.map(input => {
          const shape =
            input.meta && 'shape' in input.meta ? ` ${JSON.stringify(input.meta.shape)}` : '';
          return [
            input.name,
            `<code>${escapeHtml(String(input.hash ?? '').slice(0, 12))}</code>${escapeHtml(shape)}`
          ];
        })
      )
    )
  );
  parts.push(
    section(
      'Artifacts',
      table(run.artifacts.map(a => [a.name, escapeHtml(`${a.kind}, ${formatBytes(a.size)}`)]))
    )
  );
  if (run.warnings.length) {
    parts.push(
      section('Warnings', `<ul>${run.warnings.map(w => `<li>${escapeHtml(w)}</li>`).join('')}</ul>`)
    );
  }
  parts.push(section('Code', `<pre class="nbtrack-code">${escapeHtml(run.code)}</pre>`));
  return parts.join('');
}

const SECTION_TITLES: Record<string, string> = {
  params: 'Params',
  metrics: 'Metrics',
  seeds: 'Seeds',
  environment: 'Environment',
  data: 'Data',
  code: 'Code',
  history: 'History'
};

/** Classes for each line of a unified diff: added, removed, hunk header or context. */
export function diffLineClass(line: string): string {
  if (line.startsWith('+++') || line.startsWith('---')) {
    return 'nbtrack-diff-file';
  }
  if (line.startsWith('@@')) {
    return 'nbtrack-diff-hunk';
  }
  if (line.startsWith('+')) {
    return 'nbtrack-diff-add';
  }
  if (line.startsWith('-')) {
    return 'nbtrack-diff-del';
  }
  return 'nbtrack-diff-ctx';
}

/** The diff of two runs: one table per section that differs, then the code diff. */
export function renderDiff(diff: IDiffReply): string {
  const head = (n: number, name: string | null) => escapeHtml(name ? `#${n} ${name}` : `#${n}`);
  const parts: string[] = [
    `<h2 class="nbtrack-details-title">${head(diff.a, diff.names?.a ?? null)} ↔ ${head(diff.b, diff.names?.b ?? null)}</h2>`
  ];
  let differences = 0;
  for (const [key, rows] of Object.entries(diff.sections)) {
    if (!rows.length) {
      continue;
    }
    differences += rows.length;
    const body = rows
      .map(
        row =>
          `<tr><th>${escapeHtml(row.key)}</th><td class="nbtrack-diff-a">${text(row.a)}</td>` +
          `<td class="nbtrack-diff-b">${text(row.b)}</td></tr>`
      )
      .join('');
    parts.push(
      section(
        SECTION_TITLES[key] ?? key,
        `<table class="nbtrack-diff"><thead><tr><th></th><th>#${diff.a}</th><th>#${diff.b}</th></tr></thead><tbody>${body}</tbody></table>`
      )
    );
  }
  if (diff.code_diff) {
    const lines = diff.code_diff
      .replace(/\n$/, '')
      .split('\n')
      .map(line => `<span class="${diffLineClass(line)}">${escapeHtml(line)}</span>`)
      .join('\n');
    parts.push(section('Code diff', `<pre class="nbtrack-code">${lines}</pre>`));
  }
  if (differences === 0 && !diff.code_diff) {
    parts.push('<p class="nbtrack-empty">These runs differ in nothing nbtrack compares.</p>');
  }
  return parts.join('');
}
