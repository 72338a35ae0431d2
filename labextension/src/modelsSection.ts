/**
 * The Models section of the Runs panel: the registered models of the active notebook's
 * store with their stage badges; a click on a model opens its versions (gate results for
 * the next stage, approvals, lineage back to the run, stage history, the latest audit
 * events) with "Promote…", "Approve…" and "Rollback…" buttons that run the commands of
 * commands.ts. Hidden while the store holds no model.
 */
import { fetchAudit, fetchModel, fetchModels } from './api';
import { escapeHtml } from './format';
import { renderModelDetail, renderModelRow } from './modelsRender';
import type { IAuditEntry, IModelDetailReply, IModelsReply } from './tokens';

/** How often the models are read while a notebook is active (milliseconds). */
export const MODELS_POLL_INTERVAL = 5000;

/** Audit events shown under an open model. */
const AUDIT_TAIL = 8;

/** What the section needs from its surroundings. */
export interface IModelsSectionOptions {
  /** the active notebook's path, or null */
  path: () => string | null;
  /** show run `number` in the Runs panel */
  openRun: (number: number) => void;
  /** run an nbtrack command with arguments */
  execute: (
    command: 'promote' | 'approve' | 'rollback',
    args: Record<string, string | number>
  ) => void;
}

interface IOpenModel {
  detail: IModelDetailReply | null;
  audit: IAuditEntry[];
  error: string | null;
  key: string;
}

export class ModelsSection {
  readonly node: HTMLElement;
  private _reply: IModelsReply | null = null;
  private _error: string | null = null;
  private _path: string | null = null;
  private _open = new Map<string, IOpenModel>();
  private _timer: number | null = null;
  private _request = 0;

  constructor(private readonly options: IModelsSectionOptions) {
    this.node = document.createElement('section');
    this.node.className = 'nbtrack-models-section';
    this.node.setAttribute('aria-label', 'Registered models');
    this.node.addEventListener('click', event => this.onClick(event));
    this.node.addEventListener('keydown', event => {
      if (
        (event.key === 'Enter' || event.key === ' ') &&
        (event.target as HTMLElement).closest('.nbtrack-model-head')
      ) {
        event.preventDefault();
        this.onClick(event);
      }
    });
    this.render();
  }

  /** The last reply, for commands that ask which model to act on. */
  get reply(): IModelsReply | null {
    return this._reply;
  }

  /** Start polling every MODELS_POLL_INTERVAL while the page is visible. */
  start(): void {
    if (this._timer === null) {
      this._timer = window.setInterval(() => {
        if (document.visibilityState === 'visible') {
          void this.refresh();
        }
      }, MODELS_POLL_INTERVAL);
    }
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  /** Open (or close) a model's versions. */
  toggle(name: string, open?: boolean): void {
    const isOpen = this._open.has(name);
    const want = open ?? !isOpen;
    if (want && !isOpen) {
      this._open.set(name, { detail: null, audit: [], error: null, key: '' });
      this.render();
      void this.loadDetail(name, true);
    } else if (!want && isOpen) {
      this._open.delete(name);
      this.render();
    }
  }

  /** Read the models now; `force` re-reads every open model's versions too (after an action,
   * whose effect on gates and approvals the summary does not show). */
  async refresh(force = false): Promise<void> {
    const path = this.options.path();
    if (path !== this._path) {
      this._path = path;
      this._reply = null;
      this._error = null;
      this._open.clear();
      this.render();
    }
    if (!path) {
      return;
    }
    const request = ++this._request;
    try {
      const reply = await fetchModels(path);
      if (request !== this._request || path !== this.options.path()) {
        return;
      }
      const before = JSON.stringify(this._reply);
      this._reply = reply;
      this._error = null;
      if (before !== JSON.stringify(reply)) {
        this.render();
      }
      for (const name of [...this._open.keys()]) {
        if (!reply.models.some(m => m.name === name)) {
          this._open.delete(name);
        } else {
          void this.loadDetail(name, force);
        }
      }
    } catch (error) {
      if (request === this._request) {
        this._error = error instanceof Error ? error.message : String(error);
        this.render();
      }
    }
  }

  /** Fetch an open model's versions and audit tail, again only when its summary changed. */
  private async loadDetail(name: string, force: boolean): Promise<void> {
    const path = this._path;
    const state = this._open.get(name);
    if (!path || !state) {
      return;
    }
    const summary = this._reply?.models.find(m => m.name === name);
    const key = JSON.stringify(summary ?? null);
    if (!force && key === state.key && state.detail) {
      return;
    }
    state.key = key;
    try {
      const [detail, audit] = await Promise.all([
        fetchModel(path, name),
        fetchAudit(path, name, AUDIT_TAIL)
      ]);
      const now = this._open.get(name);
      if (now && path === this._path) {
        now.detail = detail;
        now.audit = audit.entries;
        now.error = null;
        this.render();
      }
    } catch (error) {
      const now = this._open.get(name);
      if (now) {
        now.error = error instanceof Error ? error.message : String(error);
        now.key = ''; // try again on the next poll
        this.render();
      }
    }
  }

  private render(): void {
    const reply = this._reply;
    const models = reply?.models ?? [];
    // No models and nothing wrong: the section stays out of the way.
    this.node.hidden = !this._error && models.length === 0;
    if (this.node.hidden) {
      this.node.innerHTML = '';
      return;
    }
    const stages = reply?.stages ?? [];
    const parts = [
      '<div class="nbtrack-header"><h2>Models</h2>' +
        (reply
          ? `<div class="nbtrack-dim" title="who the registry acts as">acting as ${escapeHtml(reply.user)}</div>`
          : '') +
        '</div>'
    ];
    if (this._error) {
      parts.push(
        `<p class="nbtrack-error-text nbtrack-models-message">Cannot read the models: ${escapeHtml(this._error)}</p>`
      );
    }
    if (reply?.policy_error) {
      parts.push(
        `<p class="nbtrack-error-text nbtrack-models-message">${escapeHtml(reply.policy_error)}</p>`
      );
    }
    const items = models.map(model => {
      const open = this._open.get(model.name);
      let body = '';
      if (open) {
        if (open.error) {
          body = `<p class="nbtrack-error-text">${escapeHtml(open.error)}</p>`;
        } else if (!open.detail) {
          body = '<p class="nbtrack-dim">Loading versions…</p>';
        } else {
          body = renderModelDetail(open.detail, open.audit);
        }
      }
      return (
        `<li class="nbtrack-model${open ? ' nbtrack-open' : ''}" data-model="${escapeHtml(model.name)}">` +
        renderModelRow(model, stages, Boolean(open)) +
        (open ? `<div class="nbtrack-model-body">${body}</div>` : '') +
        '</li>'
      );
    });
    parts.push(`<ul class="nbtrack-models">${items.join('')}</ul>`);
    // Keep what the user opened ("approvals, lineage, history") open across redraws.
    const kept = new Set(
      Array.from(this.node.querySelectorAll('details[open]')).map(d =>
        this.detailsKey(d as HTMLElement)
      )
    );
    this.node.innerHTML = parts.join('');
    this.node.querySelectorAll('details').forEach(d => {
      if (kept.has(this.detailsKey(d))) {
        d.open = true;
      }
    });
  }

  private detailsKey(node: HTMLElement): string {
    const version = node.closest('.nbtrack-version') as HTMLElement | null;
    const model = node.closest('.nbtrack-model') as HTMLElement | null;
    return `${model?.dataset.model}/${version?.dataset.version ?? ''}/${node.className}`;
  }

  private onClick(event: Event): void {
    const target = event.target as HTMLElement;
    const link = target.closest('.nbtrack-run-link') as HTMLElement | null;
    if (link) {
      event.preventDefault();
      this.options.openRun(Number(link.dataset.run));
      return;
    }
    const action = target.closest('.nbtrack-model-action') as HTMLElement | null;
    if (action) {
      const data = action.dataset;
      const args: Record<string, string | number> = {
        model: data.model ?? '',
        stage: data.stage ?? ''
      };
      if (data.version) {
        args.version = Number(data.version);
      }
      const command = action.classList.contains('nbtrack-promote')
        ? 'promote'
        : action.classList.contains('nbtrack-approve')
          ? 'approve'
          : 'rollback';
      this.options.execute(command, args);
      return;
    }
    const head = target.closest('.nbtrack-model-head');
    if (head) {
      const item = head.closest('.nbtrack-model') as HTMLElement;
      this.toggle(item.dataset.model ?? '');
    }
  }
}
