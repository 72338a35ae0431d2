/**
 * Which run a tracked cell shows in its badge. Pure, tested with `node --test`.
 */
import type { IRunSummary } from './tokens';

const TRACK_LINE = /^\s*%%track\b/;

/** Whether a cell's source is a `%%track` cell. */
export function isTrackedCell(source: string): boolean {
  return TRACK_LINE.test(source);
}

/** The body the kernel records as the run's code: the source without its `%%track` line. */
export function trackedBody(source: string): string {
  const newline = source.indexOf('\n');
  return newline < 0 ? '' : source.slice(newline + 1);
}

function normalise(code: string): string {
  return code.replace(/\s+$/g, '').replace(/[ \t]+\n/g, '\n');
}

/**
 * The latest run of a tracked cell. `runs` is newest first.
 *
 * A run whose recorded code equals the cell's body wins (the newest such run); a cell edited
 * since its last run falls back to the newest run with the cell's execution count.
 */
export function runForCell(
  source: string,
  executionCount: number | null,
  runs: IRunSummary[],
  codes: Record<string, string>
): IRunSummary | null {
  if (!isTrackedCell(source)) {
    return null;
  }
  const body = normalise(trackedBody(source));
  for (const run of runs) {
    const code = run.code_hash ? codes[run.code_hash] : undefined;
    if (code !== undefined && normalise(code) === body) {
      return run;
    }
  }
  if (executionCount !== null) {
    for (const run of runs) {
      if (run.execution_count === executionCount) {
        return run;
      }
    }
  }
  return null;
}
