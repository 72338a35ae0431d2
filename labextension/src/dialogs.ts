/**
 * The registry's confirm dialogs: each shows what the registry says first (the gate results
 * of a dry run, or which version a rollback brings back) and acts only on the user's "yes".
 * The HTML comes from modelsRender.ts; the decisions from the server.
 */
import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { checkPromotion } from './api';
import { escapeHtml } from './format';
import {
  laterStages,
  promotionVerdict,
  renderGateTable,
  renderPromoteSummary,
  renderRollbackSummary
} from './modelsRender';
import type { IPromoteDryRun, IRollbackDryRun, Stage } from './tokens';

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A reason (or comment) box: what the audit log records as "why". */
function reasonBox(label: string, placeholder: string): HTMLLabelElement {
  const wrap = document.createElement('label');
  wrap.className = 'nbtrack-dialog-field';
  wrap.innerHTML = `<span>${escapeHtml(label)}</span><input type="text" class="jp-mod-styled nbtrack-reason" placeholder="${escapeHtml(placeholder)}">`;
  return wrap;
}

/** What the user chose in the Promote dialog. */
export interface IPromoteChoice {
  stage: Stage;
  reason: string | null;
  force: boolean;
}

/**
 * The Promote dialog's body: a stage picker, the gate results for the picked stage (a new
 * dry run on each change), a reason, and a "force" box when only validation gates failed.
 * The accept button is enabled only when the registry would let the promotion through.
 */
class PromoteBody extends Widget implements Dialog.IBodyWidget<IPromoteChoice> {
  private _dry: IPromoteDryRun;
  private _stage: HTMLSelectElement;
  private _summary: HTMLElement;
  private _gates: HTMLElement;
  private _note: HTMLElement;
  private _force: HTMLInputElement;
  private _forceRow: HTMLElement;
  private _reason: HTMLInputElement;
  private _loading = 0;
  accept: HTMLButtonElement | null = null;

  constructor(
    private readonly path: string,
    dry: IPromoteDryRun,
    stages: Stage[]
  ) {
    super();
    this._dry = dry;
    this.addClass('nbtrack-dialog');
    this.addClass('nbtrack-promote-dialog');
    const choices = laterStages(dry.version.stage, stages);
    const options = (choices.length ? choices : [dry.stage])
      .map(
        s =>
          `<option value="${escapeHtml(s)}"${s === dry.stage ? ' selected' : ''}>${escapeHtml(s)}</option>`
      )
      .join('');
    this.node.innerHTML =
      '<div class="nbtrack-promote-summary"></div>' +
      `<label class="nbtrack-dialog-field"><span>Stage</span><select class="nbtrack-stage-select">${options}</select></label>` +
      '<div class="nbtrack-dialog-gates" aria-live="polite"></div>' +
      '<p class="nbtrack-dialog-note"></p>' +
      '<label class="nbtrack-dialog-force"><input type="checkbox" class="nbtrack-force"> Force past the failed gates (the reason is recorded)</label>';
    this._summary = this.node.querySelector('.nbtrack-promote-summary') as HTMLElement;
    this._stage = this.node.querySelector('.nbtrack-stage-select') as HTMLSelectElement;
    this._gates = this.node.querySelector('.nbtrack-dialog-gates') as HTMLElement;
    this._note = this.node.querySelector('.nbtrack-dialog-note') as HTMLElement;
    this._force = this.node.querySelector('.nbtrack-force') as HTMLInputElement;
    this._forceRow = this.node.querySelector('.nbtrack-dialog-force') as HTMLElement;
    const reason = reasonBox('Reason', 'why (recorded in the audit log)');
    this.node.appendChild(reason);
    this._reason = reason.querySelector('input') as HTMLInputElement;
    this._stage.addEventListener('change', () => void this.load(this._stage.value));
    this._force.addEventListener('change', () => this.update());
    this._reason.addEventListener('input', () => this.update());
    this.draw();
  }

  getValue(): IPromoteChoice {
    return {
      stage: this._dry.stage,
      reason: this._reason.value.trim() || null,
      force: this._force.checked && promotionVerdict(this._dry, true).forceable
    };
  }

  private async load(stage: Stage): Promise<void> {
    const request = ++this._loading;
    this._gates.innerHTML = '<p class="nbtrack-dim">Checking the gates…</p>';
    this.setAccept(false);
    try {
      const dry = await checkPromotion(
        this.path,
        this._dry.version.model,
        this._dry.version.version,
        stage
      );
      if (request === this._loading) {
        this._dry = dry;
        this.draw();
      }
    } catch (error) {
      if (request === this._loading) {
        this._gates.innerHTML = `<p class="nbtrack-error-text">${escapeHtml(message(error))}</p>`;
      }
    }
  }

  private draw(): void {
    this._summary.innerHTML = renderPromoteSummary(this._dry);
    this._gates.innerHTML = renderGateTable(this._dry.report);
    this.update();
  }

  /** Whether the registry would let the choice through (Enter accepts a dialog even when its
   * button is disabled, so the caller asks again). */
  canAccept(): boolean {
    const verdict = promotionVerdict(this._dry, this._force.checked);
    return verdict.canAccept && !(this._force.checked && !this._reason.value.trim());
  }

  /** Enable the accept button only when the promotion can go through. */
  update(): void {
    const verdict = promotionVerdict(this._dry, this._force.checked);
    this._forceRow.hidden = !verdict.forceable;
    const needsReason = verdict.forceable && this._force.checked && !this._reason.value.trim();
    this._note.textContent = needsReason ? 'Give a reason to force the promotion.' : verdict.note;
    this._note.className = `nbtrack-dialog-note ${verdict.canAccept && !needsReason ? 'nbtrack-gate-ok' : 'nbtrack-gate-bad'}`;
    if (this.accept) {
      this.accept.textContent = verdict.acceptLabel;
    }
    this.setAccept(verdict.canAccept && !needsReason);
  }

  private setAccept(enabled: boolean): void {
    if (this.accept) {
      this.accept.disabled = !enabled;
    }
  }
}

/**
 * Show the gate results of promoting `dry.version` (to `dry.stage`, or another later stage
 * the user picks) and return the user's choice, or null when they cancel.
 */
export async function confirmPromotion(
  path: string,
  dry: IPromoteDryRun,
  stages: Stage[]
): Promise<IPromoteChoice | null> {
  const body = new PromoteBody(path, dry, stages);
  const dialog = new Dialog<IPromoteChoice>({
    title: `Promote ${dry.version.model} v${dry.version.version}`,
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: 'Promote', className: 'nbtrack-confirm' })
    ],
    focusNodeSelector: '.nbtrack-reason'
  });
  dialog.addClass('nbtrack-registry-dialog');
  body.accept = dialog.node.querySelector('.jp-Dialog-footer .jp-mod-accept');
  body.update();
  const accepted = () => body.canAccept();
  const result = await dialog.launch();
  return result.button.accept && result.value && accepted() ? result.value : null;
}

/** Show which version a rollback brings back (and the gates, for information); the reason,
 * or null when the user cancels. */
export async function confirmRollback(
  dry: IRollbackDryRun
): Promise<{ reason: string | null } | null> {
  const body = new Widget();
  body.addClass('nbtrack-dialog');
  body.addClass('nbtrack-rollback-dialog');
  body.node.innerHTML = renderRollbackSummary(dry);
  const reason = reasonBox('Reason', 'why (recorded in the audit log)');
  body.node.appendChild(reason);
  const input = reason.querySelector('input') as HTMLInputElement;
  const result = await new Dialog({
    title: `Roll back ${dry.plan.to} of ${dry.plan.model}`,
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({
        label: `Roll back to v${dry.plan.version}`,
        className: 'nbtrack-confirm'
      })
    ],
    focusNodeSelector: '.nbtrack-reason'
  }).launch();
  return result.button.accept ? { reason: input.value.trim() || null } : null;
}

/** What the user decided in the Approve dialog. */
export interface IDecisionChoice {
  decision: 'approve' | 'reject';
  stage: Stage;
  comment: string | null;
}

/** Ask to approve or reject `model` v`version` for a stage (`stage` preselected). */
export async function askDecision(
  model: string,
  version: number,
  stage: Stage,
  stages: Stage[],
  user: string
): Promise<IDecisionChoice | null> {
  const body = new Widget();
  body.addClass('nbtrack-dialog');
  const choices = stages.filter(s => s !== 'development' && s !== 'archived');
  const options = choices
    .map(
      s =>
        `<option value="${escapeHtml(s)}"${s === stage ? ' selected' : ''}>${escapeHtml(s)}</option>`
    )
    .join('');
  body.node.innerHTML =
    `<p>Your decision on <b>${escapeHtml(model)} v${version}</b>, as ${escapeHtml(user)}.</p>` +
    `<label class="nbtrack-dialog-field"><span>Stage</span><select class="nbtrack-stage-select">${options}</select></label>`;
  const comment = reasonBox('Comment', 'what you checked (recorded in the audit log)');
  body.node.appendChild(comment);
  const select = body.node.querySelector('select') as HTMLSelectElement;
  const input = comment.querySelector('input') as HTMLInputElement;
  const result = await new Dialog({
    title: `Approve ${model} v${version}`,
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: 'Reject', actions: ['reject'] }),
      Dialog.okButton({ label: 'Approve' })
    ],
    focusNodeSelector: '.nbtrack-reason'
  }).launch();
  if (!result.button.accept) {
    return null;
  }
  const decision = result.button.actions.includes('reject') ? 'reject' : 'approve';
  return { decision, stage: select.value, comment: input.value.trim() || null };
}
