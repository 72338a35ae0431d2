/**
 * The extension's commands: "Export notebook to script", "Export run to script",
 * "Compare runs", "Open run" and "Refresh runs", and where they appear (the command
 * palette, the notebook context menu and the notebook toolbar). Their ids live in tokens.ts.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification, ToolbarButton } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { DisposableDelegate } from '@lumino/disposable';

import { exportScript } from './api';
import { RunsModel } from './model';
import { RunsPanel } from './panel';
import { CommandIDs } from './tokens';

/** The cell the "Compare runs" command inserts and runs. */
export const COMPARE_SOURCE = 'import nbtrack\nnbtrack.compare()';

/** What the commands act on: the active notebook, the runs of it, and the Runs panel. */
export interface ICommandContext {
  tracker: INotebookTracker;
  docManager: IDocumentManager;
  model: RunsModel;
  panel: RunsPanel;
}

/** The contents path the server knows a notebook by, or null when there is no notebook. */
export function notebookPath(panel: NotebookPanel | null): string | null {
  if (!panel) {
    return null;
  }
  const context = panel.context as { localPath?: string; path: string };
  return context.localPath ?? context.path;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Register every nbtrack command with the application. */
export function addCommands(app: JupyterFrontEnd, context: ICommandContext): void {
  const { tracker, docManager, model, panel } = context;
  const current = (): NotebookPanel | null => tracker.currentWidget;
  const hasNotebook = (): boolean => current() !== null;

  const openScript = async (run?: number): Promise<void> => {
    const nb = current();
    const path = notebookPath(nb);
    if (!nb || !path) {
      return;
    }
    try {
      // The exporter reads the notebook file, so unsaved edits must reach it first.
      await nb.context.save();
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
    label: args => (args.number ? `Export run #${args.number} to script` : 'Export run to script'),
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
}

/** Show the commands in the palette (when there is one), the notebook context menu and toolbar. */
export function addCommandItems(app: JupyterFrontEnd, palette: ICommandPalette | null): void {
  if (palette) {
    for (const command of Object.values(CommandIDs)) {
      palette.addItem({ command, category: 'nbtrack' });
    }
  }
  const inContextMenu = [
    CommandIDs.exportNotebook,
    CommandIDs.exportRun,
    CommandIDs.compareRuns,
    CommandIDs.openRun
  ];
  inContextMenu.forEach((command, index) =>
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
      return new DisposableDelegate(() => buttons.forEach(button => button.dispose()));
    }
  });
}
