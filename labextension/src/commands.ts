/**
 * The extension's commands: "Export notebook to script", "Export run to script",
 * "Compare runs", "Open run" and "Refresh runs"; for the model registry "Promote model…",
 * "Roll back model…" and "Approve model…", each showing what the registry says before it
 * acts; and where they appear (the command palette, the notebook context menu and the
 * notebook toolbar). Their ids live in tokens.ts.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification, ToolbarButton } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { DisposableDelegate } from '@lumino/disposable';

import {
  checkPromotion,
  checkRollback,
  decideModel,
  exportScript,
  fetchModel,
  promoteModel,
  rollbackModel
} from './api';
import { askDecision, confirmPromotion, confirmRollback } from './dialogs';
import { RunsModel } from './model';
import { ModelsSection } from './modelsSection';
import { RunsPanel } from './panel';
import { CommandIDs, IVersionDetail } from './tokens';

/** The cell the "Compare runs" command inserts and runs. */
export const COMPARE_SOURCE = 'import nbtrack\nnbtrack.compare()';

/** What the commands act on: the active notebook, the runs of it, the Runs panel and its
 * Models section. */
export interface ICommandContext {
  tracker: INotebookTracker;
  docManager: IDocumentManager;
  model: RunsModel;
  panel: RunsPanel;
  models: ModelsSection;
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
  addRegistryCommands(app, context);
}

/** A string argument of a command, or null. */
function textArg(args: Record<string, unknown>, key: string): string | null {
  const value = args[key];
  return typeof value === 'string' && value ? value : null;
}

/** Which model (and version) a registry command acts on: its arguments, else asked. */
async function pickVersion(
  path: string,
  args: Record<string, unknown>,
  context: ICommandContext,
  withVersion: boolean
): Promise<{ model: string; version: IVersionDetail | null; stages: string[] } | null> {
  let name = textArg(args, 'model');
  if (!name) {
    const names = context.models.reply?.models.map(m => m.name) ?? [];
    if (!names.length) {
      Notification.info("No registered models in this notebook's store yet.", { autoClose: 4000 });
      return null;
    }
    const chosen = await InputDialog.getItem({ title: 'Model', items: names });
    if (!chosen.button.accept || !chosen.value) {
      return null;
    }
    name = chosen.value;
  }
  const detail = await fetchModel(path, name);
  if (!withVersion) {
    return { model: name, version: null, stages: detail.stages };
  }
  let number = typeof args.version === 'number' ? args.version : null;
  if (number === null) {
    const asked = await InputDialog.getNumber({
      title: `Version of ${name}`,
      label: 'Version',
      value: detail.model.latest
    });
    if (!asked.button.accept || asked.value === null) {
      return null;
    }
    number = asked.value;
  }
  const version = detail.versions.find(v => v.version === number);
  if (!version) {
    throw new Error(`${name} has no version ${number} (versions 1..${detail.model.latest})`);
  }
  return { model: name, version, stages: detail.stages };
}

/** The registry commands: each shows the registry's answer first and acts on "yes". */
function addRegistryCommands(app: JupyterFrontEnd, context: ICommandContext): void {
  const { tracker, models } = context;
  const path = (): string | null => notebookPath(tracker.currentWidget);
  const hasNotebook = (): boolean => path() !== null;
  const done = (text: string) => {
    Notification.success(text, { autoClose: 5000 });
    void models.refresh(true);
  };
  const failed = (what: string, error: unknown) => {
    Notification.error(`${what}: ${message(error)}`, { autoClose: false });
    void models.refresh(true);
  };

  app.commands.addCommand(CommandIDs.promoteModel, {
    label: args =>
      args.model && args.version ? `Promote ${args.model} v${args.version}…` : 'Promote model…',
    caption: 'Show the gate results of promoting a model version, then promote it if you confirm',
    isEnabled: hasNotebook,
    execute: async args => {
      const nb = path();
      if (!nb) {
        return;
      }
      try {
        const picked = await pickVersion(nb, args, context, true);
        if (!picked || !picked.version) {
          return;
        }
        const { version } = picked;
        const stage = textArg(args, 'stage') ?? version.target ?? 'production';
        const dry = await checkPromotion(nb, picked.model, version.version, stage);
        const choice = await confirmPromotion(nb, dry, picked.stages);
        if (!choice) {
          return;
        }
        const outcome = await promoteModel(
          nb,
          picked.model,
          version.version,
          choice.stage,
          choice.reason,
          choice.force
        );
        done(outcome.message);
      } catch (error) {
        failed('nbtrack could not promote', error);
      }
    }
  });

  app.commands.addCommand(CommandIDs.rollbackModel, {
    label: args =>
      args.model ? `Roll back ${args.stage ?? 'production'} of ${args.model}…` : 'Roll back model…',
    caption: 'Show which version a rollback brings back, then roll back if you confirm',
    isEnabled: hasNotebook,
    execute: async args => {
      const nb = path();
      if (!nb) {
        return;
      }
      try {
        const picked = await pickVersion(nb, args, context, false);
        if (!picked) {
          return;
        }
        const stage = textArg(args, 'stage') ?? 'production';
        const dry = await checkRollback(nb, picked.model, stage);
        const choice = await confirmRollback(dry);
        if (!choice) {
          return;
        }
        done((await rollbackModel(nb, picked.model, stage, choice.reason)).message);
      } catch (error) {
        failed('nbtrack could not roll back', error);
      }
    }
  });

  app.commands.addCommand(CommandIDs.approveModel, {
    label: args =>
      args.model && args.version ? `Approve ${args.model} v${args.version}…` : 'Approve model…',
    caption: 'Approve or reject a model version for a stage, as you',
    isEnabled: hasNotebook,
    execute: async args => {
      const nb = path();
      if (!nb) {
        return;
      }
      try {
        const picked = await pickVersion(nb, args, context, true);
        if (!picked || !picked.version) {
          return;
        }
        const { version } = picked;
        const stage = textArg(args, 'stage') ?? version.target ?? 'production';
        const user = models.reply?.user ?? 'you';
        const choice = await askDecision(picked.model, version.version, stage, picked.stages, user);
        if (!choice) {
          return;
        }
        const reply = await decideModel(
          nb,
          picked.model,
          version.version,
          choice.stage,
          choice.decision,
          choice.comment
        );
        done(reply.message);
      } catch (error) {
        failed('nbtrack could not record the decision', error);
      }
    }
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
