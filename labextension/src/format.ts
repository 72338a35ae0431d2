/**
 * Pure formatting for the Runs panel and the cell badges: no JupyterLab imports here, so
 * `node --test` runs these functions on the compiled JavaScript.
 */
import type { IRunSummary } from './tokens';

/** Seconds as `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`; `—` when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return '—';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  }
  const total = Math.round(seconds);
  if (total < 3600) {
    const s = total % 60;
    return `${Math.floor(total / 60)} min ${String(s).padStart(2, '0')} s`;
  }
  const minutes = Math.floor(total / 60) % 60;
  return `${Math.floor(total / 3600)} h ${String(minutes).padStart(2, '0')} min`;
}

/** A run's duration; a running run counts up to `now` (seconds since the epoch). */
export function runDuration(
  run: Pick<IRunSummary, 'status' | 'start_time' | 'duration'>,
  now: number
): number | null {
  if (run.status === 'running' && run.duration === null) {
    return Math.max(0, now - run.start_time);
  }
  return run.duration;
}

/** A metric or param value, short: 4 significant digits for numbers, `—` for missing. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      return String(value);
    }
    if (Number.isInteger(value) && Math.abs(value) < 1e6) {
      return String(value);
    }
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
      return value.toExponential(2);
    }
    return String(Number(value.toPrecision(4)));
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}

/** The first `count` metrics as `[name, formatted value]`, in the order they were logged. */
export function headlineMetrics(
  metrics: Record<string, number | null>,
  count = 2
): Array<[string, string]> {
  return Object.entries(metrics)
    .slice(0, count)
    .map(([key, value]) => [key, formatValue(value)]);
}

/** `#12 train` or `#12` for an unnamed run. */
export function runTitle(run: Pick<IRunSummary, 'number' | 'name'>): string {
  return run.name ? `#${run.number} ${run.name}` : `#${run.number}`;
}

/** The CSS modifier of a status; unknown statuses share one look. */
export function statusClass(status: string): string {
  const known = ['running', 'finished', 'failed', 'crashed', 'interrupted'];
  return `nbtrack-status-${known.includes(status) ? status : 'other'}`;
}

/**
 * Whether `run` matches the filter box: every whitespace-separated word must appear in the
 * run's number, name, status, tags, note, or a `key=value` of its params or metrics.
 */
export function matchesFilter(run: IRunSummary, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    return true;
  }
  const haystack = [
    `#${run.number}`,
    run.name ?? '',
    run.status,
    ...(run.tags ?? []),
    run.note ?? '',
    ...Object.entries(run.params ?? {}).map(([k, v]) => `${k}=${formatValue(v)}`),
    ...Object.entries(run.metrics ?? {}).map(([k, v]) => `${k}=${formatValue(v)}`)
  ]
    .join(' ')
    .toLowerCase();
  return words.every(word => haystack.includes(word));
}

/** Bytes as `532 B`, `1.2 KB`, `3.4 MB`. */
export function formatBytes(size: number | null | undefined): string {
  if (size === null || size === undefined || !Number.isFinite(size)) {
    return '—';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Escape text for use inside HTML. */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
