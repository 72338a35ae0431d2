/**
 * A badge under each `%%track` cell: its latest run's number, status and headline metric.
 * Clicking the badge opens that run in the Runs panel.
 */
import type { ICodeCellModel } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';

import { runForCell } from './cellmatch';
import { escapeHtml, formatDuration, headlineMetrics, runDuration, statusClass } from './format';
import type { IRunsReply } from './tokens';

const BADGE = 'nbtrack-badge';

/** Put, update or remove the badge of every code cell of `panel`. */
export function updateBadges(
  panel: NotebookPanel,
  reply: IRunsReply | null,
  open: (number: number) => void
): void {
  const runs = reply?.runs ?? [];
  const codes = reply?.codes ?? {};
  const now = Date.now() / 1000;
  for (const cell of panel.content.widgets) {
    let badge = cell.node.querySelector(`:scope > .${BADGE}`) as HTMLElement | null;
    const run =
      cell.model.type === 'code'
        ? runForCell(
            cell.model.sharedModel.getSource(),
            (cell.model as ICodeCellModel).executionCount ?? null,
            runs,
            codes
          )
        : null;
    if (!run) {
      badge?.remove();
      continue;
    }
    if (!badge) {
      badge = document.createElement('button');
      badge.className = BADGE;
      badge.addEventListener('click', () => open(Number(badge!.dataset.number)));
      const input = cell.node.querySelector(':scope > .jp-Cell-inputWrapper');
      if (input) {
        input.insertAdjacentElement('afterend', badge);
      } else {
        cell.node.appendChild(badge);
      }
    }
    const [metric] = headlineMetrics(run.metrics, 1);
    const html =
      `<span class="nbtrack-badge-label">nbtrack</span> <b>#${run.number}</b> ` +
      `<span class="nbtrack-status ${statusClass(run.status)}">${escapeHtml(run.status)}</span>` +
      (metric
        ? ` <span class="nbtrack-metric">${escapeHtml(metric[0])} <b>${escapeHtml(metric[1])}</b></span>`
        : '') +
      ` <span class="nbtrack-duration">${escapeHtml(formatDuration(runDuration(run, now)))}</span>`;
    if (badge.innerHTML !== html) {
      badge.innerHTML = html;
    }
    badge.dataset.number = String(run.number);
    badge.title = `Open run #${run.number} in the nbtrack Runs panel`;
  }
}

/** Remove every badge of `panel` (its runs are unknown, e.g. the server failed). */
export function clearBadges(panel: NotebookPanel): void {
  panel.content.node.querySelectorAll(`.${BADGE}`).forEach(node => node.remove());
}
