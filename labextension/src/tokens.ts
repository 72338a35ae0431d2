/**
 * The extension's names, each defined once: the command ids, and the JSON the nbtrack server
 * extension answers, mirrored from nbtrack/server/payloads.py.
 * Keep the payloads in step with Python: a field added there is added here.
 */

/**
 * The ids of the extension's commands. Palette entries, menus, toolbar buttons and keyboard
 * shortcuts in user settings all name a command by its id, so an id never changes.
 */
export const CommandIDs = {
  exportNotebook: 'nbtrack:export-notebook',
  exportRun: 'nbtrack:export-run',
  compareRuns: 'nbtrack:compare-runs',
  openRun: 'nbtrack:open-run',
  refresh: 'nbtrack:refresh'
} as const;

export type RunStatus = 'running' | 'finished' | 'failed' | 'crashed' | 'interrupted' | string;

/** One run in `GET /nbtrack/runs`. */
export interface IRunSummary {
  id: string;
  number: number;
  name: string | null;
  status: RunStatus;
  start_time: number;
  end_time: number | null;
  duration: number | null;
  tags: string[];
  note: string | null;
  params: Record<string, unknown>;
  metrics: Record<string, number | null>;
  error: string | null;
  execution_count: number | null;
  code_hash: string | null;
}

/** `GET /nbtrack/runs?path=NB` */
export interface IRunsReply {
  store: string;
  store_exists: boolean;
  runs: IRunSummary[];
  /** code text by hash, once per distinct cell body */
  codes: Record<string, string>;
  other_runs: number;
  message: string | null;
}

export interface IFingerprint {
  name: string;
  hash?: string;
  kind?: string;
  meta?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface IArtifact {
  name: string;
  kind: string;
  hash: string;
  size: number;
  meta: Record<string, unknown>;
}

/** `GET /nbtrack/run?path=NB&run=REF` */
export interface IRunDetails extends Omit<IRunSummary, 'error' | 'code_hash'> {
  kind: string;
  notebook: string | null;
  metric_points: Record<string, number>;
  seed: number | null;
  deterministic: boolean;
  seed_calls: unknown[];
  environment: Record<string, unknown>;
  git: Record<string, unknown>;
  inputs: IFingerprint[];
  models: Record<string, unknown>[];
  code: string;
  history: number[];
  artifacts: IArtifact[];
  error: { type?: string; message?: string; traceback?: string } | null;
  warnings: string[];
  extra: Record<string, unknown>;
  notice: string | null;
}

export interface IDiffRow {
  key: string;
  a: unknown;
  b: unknown;
}

/** `GET /nbtrack/diff?path=NB&a=REF&b=REF` */
export interface IDiffReply {
  a: number;
  b: number;
  names: { a: string | null; b: string | null };
  sections: Record<string, IDiffRow[]>;
  code_diff: string;
}

/** `POST /nbtrack/export` */
export interface IExportReply {
  path: string | null;
  file: string;
  run: number | null;
  /** what the exporter wants the user to know (cells dropped, checks added…) */
  notes: string[];
}

/** Every error the server extension answers. */
export interface IErrorReply {
  message: string;
  reason: string;
}
