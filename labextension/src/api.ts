/**
 * Talking to the nbtrack server extension; ServerConnection adds the token and XSRF header.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  IAuditReply,
  IDecideReply,
  IDiffReply,
  IErrorReply,
  IExportReply,
  IModelDetailReply,
  IModelsReply,
  IOutcome,
  IPromoteDryRun,
  IRollbackDryRun,
  IRunDetails,
  IRunsReply
} from './tokens';

/** An answer from the server that is not a success, with the server's own words. */
export class NbtrackRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string
  ) {
    super(message);
  }
}

/** The body as JSON, or null when it is empty or not JSON (a proxy's HTML error page, say). */
function parseJson(text: string): unknown {
  if (!text) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The server extension's own error answer, if that is what `data` is. */
function errorReply(data: unknown): IErrorReply | null {
  if (data === null || typeof data !== 'object') {
    return null;
  }
  const { message, reason } = data as Partial<Record<keyof IErrorReply, unknown>>;
  if (typeof message !== 'string') {
    return null;
  }
  return { message, reason: typeof reason === 'string' ? reason : '' };
}

async function request<T>(
  endpoint: string,
  query: Record<string, string>,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const search = new URLSearchParams(query).toString();
  const url = URLExt.join(settings.baseUrl, 'nbtrack', endpoint) + (search ? `?${search}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new NbtrackRequestError(
      `cannot reach the Jupyter server (${String(error)})`,
      0,
      'network-error'
    );
  }
  const data = parseJson(await response.text());
  if (!response.ok) {
    const error = errorReply(data);
    if (error) {
      throw new NbtrackRequestError(error.message, response.status, error.reason);
    }
    const hint =
      response.status === 404
        ? 'the nbtrack server extension is not enabled; run `jupyter server extension enable nbtrack.server` and restart JupyterLab'
        : `the server answered ${response.status} ${response.statusText}`;
    throw new NbtrackRequestError(hint, response.status, 'http-error');
  }
  return data as T;
}

export function fetchRuns(path: string): Promise<IRunsReply> {
  return request<IRunsReply>('runs', { path });
}

export function fetchRun(path: string, run: string | number): Promise<IRunDetails> {
  return request<IRunDetails>('run', { path, run: String(run) });
}

export function fetchDiff(
  path: string,
  a: string | number,
  b: string | number
): Promise<IDiffReply> {
  return request<IDiffReply>('diff', { path, a: String(a), b: String(b) });
}

export function exportScript(path: string, run?: number): Promise<IExportReply> {
  const body: Record<string, unknown> = { path };
  if (run !== undefined) {
    body.run = run;
  }
  return request<IExportReply>('export', {}, { method: 'POST', body: JSON.stringify(body) });
}

function post<T>(endpoint: string, body: Record<string, unknown>): Promise<T> {
  return request<T>(endpoint, {}, { method: 'POST', body: JSON.stringify(body) });
}

export function fetchModels(path: string): Promise<IModelsReply> {
  return request<IModelsReply>('models', { path });
}

/** One model in full; gates for `stage`, or each version's next stage when left out. */
export function fetchModel(
  path: string,
  model: string,
  stage?: string
): Promise<IModelDetailReply> {
  return request<IModelDetailReply>('models', stage ? { path, model, stage } : { path, model });
}

export function fetchAudit(path: string, model?: string, limit = 50): Promise<IAuditReply> {
  const query: Record<string, string> = { path, limit: String(limit) };
  if (model) {
    query.model = model;
  }
  return request<IAuditReply>('models/audit', query);
}

/** What promoting `model` v`version` to `stage` would meet: gate results, nothing written. */
export function checkPromotion(
  path: string,
  model: string,
  version: number,
  stage: string
): Promise<IPromoteDryRun> {
  return post<IPromoteDryRun>('models/promote', { path, model, version, stage, dry_run: true });
}

export function promoteModel(
  path: string,
  model: string,
  version: number,
  stage: string,
  reason: string | null,
  force = false
): Promise<IOutcome> {
  return post<IOutcome>('models/promote', { path, model, version, stage, reason, force });
}

/** Which version a rollback of `stage` would bring back, nothing written. */
export function checkRollback(
  path: string,
  model: string,
  stage: string
): Promise<IRollbackDryRun> {
  return post<IRollbackDryRun>('models/rollback', { path, model, stage, dry_run: true });
}

export function rollbackModel(
  path: string,
  model: string,
  stage: string,
  reason: string | null
): Promise<IOutcome> {
  return post<IOutcome>('models/rollback', { path, model, stage, reason });
}

export function decideModel(
  path: string,
  model: string,
  version: number,
  stage: string,
  decision: 'approve' | 'reject',
  comment: string | null
): Promise<IDecideReply> {
  return post<IDecideReply>('models/approve', { path, model, version, stage, decision, comment });
}
