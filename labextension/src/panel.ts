/**
 * The Runs panel in the left sidebar: the registered models of the notebook's store (the
 * Models section of modelsSection.ts, when there are any), the active notebook's runs newest
 * first with their project chips, a filter box and a project select (projects.ts), the
 * details of a clicked run, and the diff of two checked runs.
 */
import { Widget } from '@lumino/widgets';

import { fetchDiff, fetchRun } from './api';
import {
  escapeHtml,
  formatDuration,
  headlineMetrics,
  matchesFilter,
  runDuration,
  statusClass
} from './format';
import { RunsModel } from './model';
import {
  effectiveProject,
  matchesProject,
  noMatchText,
  projectChip,
  projectOptions,
  projectOptionsHtml
} from './projects';
import { renderDiff, renderRunDetails } from './render';
import type { IRunSummary } from './tokens';

type Detail = { kind: 'run'; number: number } | { kind: 'diff'; a: number; b: number };

/**
 * Where the project choice is kept between page loads: the browser's localStorage (one
 * choice for every notebook, as a user usually works in one project at a time).
 */
const PROJECT_KEY = 'nbtrack:runs-panel:project';

function loadProjectChoice(): string {
  try {
    return window.localStorage.getItem(PROJECT_KEY) ?? '';
  } catch {
    return ''; // storage disabled (a private window, a sandboxed frame): the panel still works
  }
}

function saveProjectChoice(choice: string): void {
  try {
    window.localStorage.setItem(PROJECT_KEY, choice);
  } catch {
    // Not kept across reloads then; the panel keeps it while it lives.
  }
}

export class RunsPanel extends Widget {
  private _filter = '';
  /** The project the user chose ('' = all); kept even while the notebook has no such run. */
  private _project = loadProjectChoice();
  /** The select's options as last drawn: redrawn only when they change, not on every poll. */
  private _projectOptionsKey = '';
  private _checked: number[] = [];
  private _detail: Detail | null = null;
  private _detailKey = '';
  private _detailRequest = 0;
  private _header: HTMLElement;
  private _message: HTMLElement;
  private _list: HTMLElement;
  private _details: HTMLElement;
  private _filterBox: HTMLInputElement;
  private _projectBox: HTMLSelectElement;

  constructor(readonly model: RunsModel) {
    super();
    this.id = 'nbtrack-runs-panel';
    this.addClass('nbtrack-panel');
    this.title.caption = 'nbtrack runs';
    this.node.innerHTML = `
      <div class="nbtrack-models-slot"></div>
      <div class="nbtrack-header"><h2>Runs</h2><div class="nbtrack-notebook"></div></div>
      <div class="nbtrack-filters">
        <input class="nbtrack-filter jp-mod-styled" type="search"
          placeholder="Filter: name, status, tag, lr=0.01" aria-label="Filter runs">
        <select class="nbtrack-project-filter" aria-label="Show the runs of one project" hidden></select>
      </div>
      <div class="nbtrack-message" role="status"></div>
      <ul class="nbtrack-runs" aria-label="Runs of this notebook"></ul>
      <div class="nbtrack-hint">Click a run for details; tick two to compare them.</div>
      <div class="nbtrack-details"></div>`;
    this._header = this.node.querySelector('.nbtrack-notebook') as HTMLElement;
    this._message = this.node.querySelector('.nbtrack-message') as HTMLElement;
    this._list = this.node.querySelector('.nbtrack-runs') as HTMLElement;
    this._details = this.node.querySelector('.nbtrack-details') as HTMLElement;
    this._filterBox = this.node.querySelector('.nbtrack-filter') as HTMLInputElement;
    this._projectBox = this.node.querySelector('.nbtrack-project-filter') as HTMLSelectElement;
    this._projectBox.addEventListener('change', () => {
      this._project = this._projectBox.value;
      saveProjectChoice(this._project);
      this.renderList();
    });
    this._filterBox.addEventListener('input', () => {
      this._filter = this._filterBox.value;
      this.renderList();
    });
    this._list.addEventListener('click', event => this.onListClick(event));
    model.changed.connect(this.onModelChanged, this);
    this.onModelChanged();
  }

  /** The checked runs, oldest first (at most two). */
  get checked(): number[] {
    return [...this._checked].sort((x, y) => x - y);
  }

  /** The run whose details are open, if any. */
  get openRun(): number | null {
    return this._detail?.kind === 'run' ? this._detail.number : null;
  }

  /** The project choice in effect for the shown notebook's runs ('' = all projects). */
  get project(): string {
    return effectiveProject(this._project, this.model.reply?.runs ?? []);
  }

  /** Put a section (the Models section) above the runs. */
  addSection(node: HTMLElement): void {
    (this.node.querySelector('.nbtrack-models-slot') as HTMLElement).appendChild(node);
  }

  /** Show run `number` of the active notebook. */
  showRun(number: number): void {
    this._detail = { kind: 'run', number };
    this._detailKey = '';
    this.renderList();
    void this.loadDetail();
  }

  /** Show the diff of runs `a` and `b`. */
  showDiff(a: number, b: number): void {
    this._checked = [a, b];
    this._detail = { kind: 'diff', a, b };
    this._detailKey = '';
    this.renderList();
    void this.loadDetail();
  }

  dispose(): void {
    this.model.changed.disconnect(this.onModelChanged, this);
    super.dispose();
  }

  private onModelChanged(): void {
    const path = this.model.path;
    this._header.textContent = path ?? '';
    this._header.title = path ?? '';
    if (!this.model.reply || path === null) {
      // A different notebook (or none): what was open belonged to the previous one.
      if (!this.model.error) {
        this._detail = null;
        this._checked = [];
        this._details.innerHTML = '';
      }
    }
    this.renderList();
    void this.loadDetail();
  }

  private renderMessage(): void {
    const model = this.model;
    let text = '';
    let cls = '';
    if (model.path === null) {
      text = 'Open a notebook to see its runs.';
    } else if (model.error) {
      text = `Cannot read this notebook's runs: ${model.error}`;
      cls = 'nbtrack-error-text';
    } else if (!model.reply) {
      text = 'Loading runs…';
    } else if (!model.reply.store_exists) {
      text = 'No runs yet: run a %%track cell in this notebook and its runs appear here.';
    } else if (model.reply.runs.length === 0) {
      text = 'No runs of this notebook yet: run a %%track cell.';
      if (model.reply.other_runs) {
        text += ` (The store next to it holds ${model.reply.other_runs} run(s) of other notebooks.)`;
      }
    }
    this._message.textContent = text;
    this._message.className = `nbtrack-message ${cls}`;
  }

  /** Show the project select only when some run has a project; keep its choice in step. */
  private renderProjectSelect(runs: IRunSummary[], project: string): void {
    const options = projectOptions(runs);
    const key = JSON.stringify(options);
    if (key !== this._projectOptionsKey) {
      // Rebuilt only when the projects change: a poll must not close an open dropdown.
      this._projectOptionsKey = key;
      this._projectBox.innerHTML = projectOptionsHtml(options, project);
    }
    this._projectBox.hidden = options.length === 0;
    if (this._projectBox.value !== project && options.length) {
      this._projectBox.value = project;
    }
  }

  private renderList(): void {
    this.renderMessage();
    const runs = this.model.reply?.runs ?? [];
    const project = this.project;
    this.renderProjectSelect(runs, project);
    const now = Date.now() / 1000;
    const shown = runs.filter(
      run => matchesProject(run, project) && matchesFilter(run, this._filter)
    );
    const open = this.openRun;
    const items = shown.map(run => this.itemHtml(run, now, open === run.number));
    if (runs.length && !shown.length) {
      items.push(
        `<li class="nbtrack-empty">${escapeHtml(noMatchText(this._filter, project))}</li>`
      );
    }
    this._list.innerHTML = items.join('');
    this.toggleClass('nbtrack-mod-norun', runs.length === 0);
  }

  private itemHtml(run: IRunSummary, now: number, open: boolean): string {
    const metrics = headlineMetrics(run.metrics)
      .map(
        ([k, v]) => `<span class="nbtrack-metric">${escapeHtml(k)} <b>${escapeHtml(v)}</b></span>`
      )
      .join('');
    const checked = this._checked.includes(run.number) ? 'checked' : '';
    return (
      `<li class="nbtrack-run${open ? ' nbtrack-open' : ''}" data-number="${run.number}" title="${escapeHtml(run.error ?? '')}">` +
      `<input type="checkbox" class="nbtrack-check" aria-label="Select run ${run.number} to compare" ${checked}>` +
      `<span class="nbtrack-number">#${run.number}</span>` +
      `<span class="nbtrack-name">${escapeHtml(run.name ?? '')}</span>` +
      projectChip(run.project) +
      `<span class="nbtrack-status ${statusClass(run.status)}">${escapeHtml(run.status)}</span>` +
      `<span class="nbtrack-duration">${escapeHtml(formatDuration(runDuration(run, now)))}</span>` +
      `<span class="nbtrack-metrics">${metrics}</span>` +
      '</li>'
    );
  }

  private onListClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const item = target.closest('.nbtrack-run') as HTMLElement | null;
    if (!item) {
      return;
    }
    const number = Number(item.dataset.number);
    if (target.classList.contains('nbtrack-check')) {
      const box = target as HTMLInputElement;
      this._checked = this._checked.filter(n => n !== number);
      if (box.checked) {
        this._checked.push(number);
        if (this._checked.length > 2) {
          this._checked.shift();
        }
      }
      if (this._checked.length === 2) {
        const [a, b] = this.checked;
        this.showDiff(a, b);
      } else {
        this.renderList();
      }
      return;
    }
    this.showRun(number);
  }

  /** Fetch what the details area shows, again only when the runs involved changed. */
  private async loadDetail(): Promise<void> {
    const detail = this._detail;
    const path = this.model.path;
    if (!detail || !path) {
      return;
    }
    const numbers = detail.kind === 'run' ? [detail.number] : [detail.a, detail.b];
    const runs = this.model.reply?.runs ?? [];
    const key =
      path + JSON.stringify(detail) + JSON.stringify(runs.filter(r => numbers.includes(r.number)));
    if (key === this._detailKey) {
      return;
    }
    this._detailKey = key;
    const request = ++this._detailRequest;
    try {
      const html =
        detail.kind === 'run'
          ? renderRunDetails(await fetchRun(path, detail.number))
          : renderDiff(await fetchDiff(path, detail.a, detail.b));
      if (request === this._detailRequest) {
        this._details.innerHTML = html;
      }
    } catch (error) {
      if (request === this._detailRequest) {
        const what =
          detail.kind === 'run'
            ? `run #${detail.number}`
            : `the diff of #${detail.a} and #${detail.b}`;
        const message = error instanceof Error ? error.message : String(error);
        this._details.innerHTML = `<p class="nbtrack-error-text">Cannot show ${escapeHtml(what)}: ${escapeHtml(message)}</p>`;
        this._detailKey = ''; // try again on the next poll
      }
    }
  }
}
