/**
 * nbtrack in JupyterLab: the Runs panel, tracked-cell badges, and the commands
 * "Export notebook to script", "Export run to script", "Compare runs" and "Open run".
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification, ToolbarButton } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { exportScript } from './api';
import { clearBadges, updateBadges } from './badges';
import { RunsModel } from './model';
import { RunsPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<path class="jp-icon3" fill="#616161" d="M3 3h2v16h16v2H3zm4 12l4-5 3 3 5-7 1.6 1.2-6.4 9-3-3-3.2 4z"/></svg>`;

export const nbtrackIcon = new LabIcon({ name: 'nbtrack:runs', svgstr: ICON_SVG });

export namespace CommandIDs {
  export const exportNotebook = 'nbtrack:export-notebook';
  export const exportRun = 'nbtrack:export-run';
  export const compareRuns = 'nbtrack:compare-runs';
  export const openRun = 'nbtrack:open-run';
  export const refresh = 'nbtrack:refresh';
}

/** The cell the "Compare runs" command inserts and runs. */
export const COMPARE_SOURCE = 'import nbtrack\nnbtrack.compare()';

function notebookPath(panel: NotebookPanel | null): string | null {
  if (!panel) {
    return null;
  }
  const context = panel.context as { localPath?: string; path: string };
  return context.localPath ?? context.path;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbtrack:plugin',
  description: 'nbtrack: Runs panel, tracked-cell badges, export and compare commands.',
  autoStart: true,
  requires: [INotebookTracker, IDocumentManager],
  optional: [ICommandPalette, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    docManager: IDocumentManager,
    palette: ICommandPalette | null
  ) => {
    const model = new RunsModel();
    const panel = new RunsPanel(model);
    panel.title.icon = nbtrackIcon;
    app.shell.add(panel, 'left', { rank: 650 });

    const current = (): NotebookPanel | null => tracker.currentWidget;
    const redrawBadges = () => {
      const nb = current();
      if (!nb) {
        return;
      }
      if (model.error) {
        clearBadges(nb);
      } else {
        updateBadges(nb, model.reply, number => {
          app.shell.activateById(panel.id);
          panel.showRun(number);
        });
      }
    };
    model.changed.connect(redrawBadges);
    tracker.currentChanged.connect(() => model.setPath(notebookPath(current())));
    // A renamed notebook keeps its panel but changes its path.
    tracker.widgetUpdated.connect((_, nb) => {
      if (nb === current()) {
        model.setPath(notebookPath(nb));
      }
    });
    model.setPath(notebookPath(current()));
    model.start();

    // A tracked cell's run is recorded when the cell ends: read the runs right away instead
    // of waiting for the next poll (twice, as the kernel may still be writing).
    NotebookActions.executed.connect((_, { notebook }) => {
      if (current()?.content === notebook) {
        window.setTimeout(() => void model.refresh(), 250);
        window.setTimeout(() => void model.refresh(), 1200);
      }
    });
    NotebookActions.executionScheduled.connect((_, { notebook }) => {
      if (current()?.content === notebook) {
        window.setTimeout(() => void model.refresh(), 600);
      }
    });

    const hasNotebook = () => current() !== null;
    const openScript = async (run?: number) => {
      const path = notebookPath(current());
      if (!path) {
        return;
      }
      try {
        await current()!.context.save();
        const reply = await exportScript(path, run);
        if (reply.path) {
          await docManager.openOrReveal(reply.path);
        }
        Notification.success(`nbtrack wrote ${reply.path ?? reply.file}`, { autoClose: 4000 });
      } catch (error) {
        Notification.error(`nbtrack could not export: ${message(error)}`, { autoClose: false });
      }
    };
    const askRun = async (label: string): Promise<number | null> => {
      const preset = panel.openRun ?? model.reply?.runs[0]?.number;
      const result = await InputDialog.getNumber({
        title: label,
        label: 'Run number',
        value: preset ?? 1
      });
      return result.button.accept && result.value !== null ? result.value : null;
    };

    app.commands.addCommand(CommandIDs.exportNotebook, {
      label: 'Export notebook to script',
      caption: 'Write the notebook as a Python script next to it and open it',
      isEnabled: hasNotebook,
      execute: () => openScript()
    });
    app.commands.addCommand(CommandIDs.exportRun, {
      label: args =>
        args.number ? `Export run #${args.number} to script` : 'Export run to script',
      caption: 'Write what one run needs as a Python script next to the notebook and open it',
      isEnabled: hasNotebook,
      execute: async args => {
        const number =
          typeof args.number === 'number' ? args.number : await askRun('Export run to script');
        if (number !== null) {
          await openScript(number);
        }
      }
    });
    app.commands.addCommand(CommandIDs.compareRuns, {
      label: 'Compare runs',
      caption: 'Insert and run a cell with nbtrack.compare()',
      isEnabled: hasNotebook,
      execute: async () => {
        const nb = current();
        if (!nb) {
          return;
        }
        NotebookActions.insertBelow(nb.content);
        const cell = nb.content.activeCell;
        if (!cell) {
          return;
        }
        cell.model.sharedModel.setSource(COMPARE_SOURCE);
        await NotebookActions.run(nb.content, nb.sessionContext);
      }
    });
    app.commands.addCommand(CommandIDs.openRun, {
      label: args => (args.number ? `Open run #${args.number}` : 'Open run'),
      caption: 'Show one run of this notebook in the nbtrack Runs panel',
      isEnabled: hasNotebook,
      execute: async args => {
        const number = typeof args.number === 'number' ? args.number : await askRun('Open run');
        if (number !== null) {
          app.shell.activateById(panel.id);
          panel.showRun(number);
        }
      }
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh runs',
      execute: () => model.refresh()
    });

    if (palette) {
      for (const command of [
        CommandIDs.exportNotebook,
        CommandIDs.exportRun,
        CommandIDs.compareRuns,
        CommandIDs.openRun,
        CommandIDs.refresh
      ]) {
        palette.addItem({ command, category: 'nbtrack' });
      }
    }
    [
      CommandIDs.exportNotebook,
      CommandIDs.exportRun,
      CommandIDs.compareRuns,
      CommandIDs.openRun
    ].forEach((command, index) =>
      app.contextMenu.addItem({ command, selector: '.jp-Notebook', rank: 60 + index })
    );
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (nb: NotebookPanel) => {
        const buttons = [
          new ToolbarButton({
            className: 'nbtrack-toolbar-export',
            label: 'Export',
            tooltip: 'nbtrack: export notebook to script',
            onClick: () => void app.commands.execute(CommandIDs.exportNotebook)
          }),
          new ToolbarButton({
            className: 'nbtrack-toolbar-compare',
            label: 'Compare',
            tooltip: 'nbtrack: compare runs',
            onClick: () => void app.commands.execute(CommandIDs.compareRuns)
          })
        ];
        buttons.forEach((button, i) => nb.toolbar.insertItem(10 + i, `nbtrack-${i}`, button));
        return {
          dispose: () => buttons.forEach(b => b.dispose()),
          isDisposed: false
        } as any;
      }
    });
  }
};

export default plugin;
