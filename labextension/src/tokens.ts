/**
 * The extension's names, each defined once: the command ids, and the JSON the nbtrack server
 * extension answers, mirrored from nbtrack/server/payloads.py (runs) and
 * nbtrack/server/registry.py (models; the records' `to_dict()` in nbtrack/registry/records.py).
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
  refresh: 'nbtrack:refresh',
  promoteModel: 'nbtrack:promote-model',
  rollbackModel: 'nbtrack:rollback-model',
  approveModel: 'nbtrack:approve-model'
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
  /** the project that scopes the run (docs/team.md#projects), or null */
  project?: string | null;
}

/** `GET /nbtrack/runs?path=NB[&project=NAME]` */
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
  /** who ran it (NBTRACK_USER, git, the database role or login), or null before schema v5 */
  user?: string | null;
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

/** A stage of a model version, in promotion order; `archived` is the end. */
export type Stage = 'development' | 'staging' | 'canary' | 'production' | 'archived' | string;

/** One model in `GET /nbtrack/models` (`ModelSummary.to_dict()` and `production`). */
export interface IModelSummary {
  name: string;
  description: string | null;
  versions: number;
  latest: number;
  /** stage -> versions in it now (archived left out) */
  stages: Record<string, number[]>;
  aliases: Record<string, number>;
  created: number;
  updated: number;
  production: number | null;
}

/** `GET /nbtrack/models?path=NB` */
export interface IModelsReply {
  store: string;
  store_exists: boolean;
  models: IModelSummary[];
  /** every stage, in promotion order */
  stages: Stage[];
  /** who the registry acts as for this server */
  user: string;
  policy_file: string | null;
  /** the one line saying why the policy file cannot be read */
  policy_error: string | null;
  message: string | null;
}

/** What a version copied from its run when it was registered (`Lineage.to_dict()`). */
export interface ILineage {
  run_id: string;
  run_number: number;
  run_name: string | null;
  notebook: string | null;
  params: Record<string, unknown>;
  seed: number | null;
  rng_hash: string | null;
  env_hash: string | null;
  git: Record<string, unknown>;
  inputs: IFingerprint[];
  code_hash: string | null;
  metrics: Record<string, number | null>;
  goals: Record<string, { direction?: string; source?: string }>;
}

/** `ModelVersion.to_dict()` */
export interface IModelVersion {
  model: string;
  version: number;
  ref: string;
  stage: Stage;
  aliases: string[];
  artifact: IArtifact;
  lineage: ILineage;
  created: number;
  created_by: string;
  host: string;
}

/** One check of a promotion (`GateResult.to_dict()`). */
export interface IGateResult {
  gate: string;
  passed: boolean;
  detail: string;
  /** where it is declared: `nbtrack.toml: registry.stages.production.metrics` */
  key: string;
  /** `gate` (validation: a forced promotion may override it) or `approvals` */
  kind: 'gate' | 'approvals' | string;
}

/** `GateReport.to_dict()` */
export interface IGateReport {
  model: string;
  version: number;
  stage: Stage;
  passed: boolean;
  policy_file: string | null;
  results: IGateResult[];
}

/** `Decision.to_dict()` */
export interface IDecision {
  model: string;
  version: number;
  stage: Stage;
  user: string;
  decision: 'approve' | 'reject';
  comment: string | null;
  time: number;
}

/** `StagePeriod.to_dict()`: a version's time in one stage (`until` null: still there). */
export interface IStagePeriod {
  model: string;
  version: number;
  stage: Stage;
  since: number;
  until: number | null;
  by: string | null;
  reason: string | null;
}

/** A version in `GET /nbtrack/models?path=NB&model=NAME`. */
export interface IVersionDetail extends IModelVersion {
  /** the run it came from, as it is now (`status` null: deleted; the version stays) */
  run: {
    number: number;
    id: string;
    name: string | null;
    status: string | null;
    verified_by: number | null;
  };
  decisions: IDecision[];
  periods: IStagePeriod[];
  /** the stage its gates were evaluated for (null: none to go to) */
  target: Stage | null;
  gate: { report: IGateReport | null; error: string | null } | null;
}

/** `GET /nbtrack/models?path=NB&model=NAME[&stage=S]` */
export interface IModelDetailReply {
  model: IModelSummary;
  /** newest first */
  versions: IVersionDetail[];
  user: string;
  policy_file: string | null;
  policy_error: string | null;
  /** every stage, in promotion order */
  stages: Stage[];
}

/** `AuditEntry.to_dict()` */
export interface IAuditEntry {
  seq: number;
  time: number;
  user: string;
  host: string;
  event: string;
  model: string | null;
  version: number | null;
  stage: Stage | null;
  reason: string | null;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/** What a registry action did (`Outcome.to_dict()`). */
export interface IOutcome {
  message: string;
  entry: IAuditEntry | null;
  version: IModelVersion | null;
  report: IGateReport | null;
  user: string;
}

/** `POST /nbtrack/models/promote` with `dry_run: true`: nothing was written. */
export interface IPromoteDryRun {
  dry_run: true;
  user: string;
  version: IModelVersion;
  stage: Stage;
  /** the versions in the target stage now */
  holders: number[];
  /** the version that steps down to make room (production holds one), and where to */
  replaces: number | null;
  replaced_to: Stage | null;
  report: IGateReport;
}

/** `POST /nbtrack/models/rollback` with `dry_run: true`: nothing was written. */
export interface IRollbackDryRun {
  dry_run: true;
  user: string;
  plan: {
    model: string;
    version: number;
    from: Stage;
    to: Stage;
    event: string;
    step_down: number | null;
  };
  /** the version that comes back */
  version: IModelVersion;
  /** the version that steps down */
  leaving: IModelVersion | null;
  /** the gates as they stand now for the one coming back: information only */
  report: IGateReport | null;
  gate_error: string | null;
}

/** `POST /nbtrack/models/approve` */
export interface IDecideReply extends IOutcome {
  /** the gate report for the stage after the decision */
  report_after: IGateReport | null;
  gate_error: string | null;
}

/** `GET /nbtrack/models/audit?path=NB[&model=NAME][&limit=N][&verify=1]` */
export interface IAuditReply {
  model: string | null;
  total: number;
  /** the newest `limit`, oldest first */
  entries: IAuditEntry[];
  check: { ok: boolean; entries: number; head: string; problems: string[] } | null;
}
