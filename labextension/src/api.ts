/**
 * Talking to the nbtrack server extension; ServerConnection adds the token and XSRF header.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { IDiffReply, IExportReply, IRunDetails, IRunsReply } from './tokens';

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
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (data && typeof data.message === 'string') {
      throw new NbtrackRequestError(data.message, response.status, data.reason ?? '');
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
