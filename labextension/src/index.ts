/**
 * nbtrack in JupyterLab: the Runs panel with its Models section, tracked-cell badges, and the
 * commands of commands.ts. This module only wires them together when JupyterLab starts the
 * plugin.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { clearBadges, updateBadges } from './badges';
import { addCommandItems, addCommands, notebookPath } from './commands';
import { RunsModel } from './model';
import { ModelsSection } from './modelsSection';
import { RunsPanel } from './panel';
import { CommandIDs } from './tokens';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<path class="jp-icon3" fill="#616161" d="M3 3h2v16h16v2H3zm4 12l4-5 3 3 5-7 1.6 1.2-6.4 9-3-3-3.2 4z"/></svg>`;

export const nbtrackIcon = new LabIcon({ name: 'nbtrack:runs', svgstr: ICON_SVG });

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
    const registryCommands = {
      promote: CommandIDs.promoteModel,
      approve: CommandIDs.approveModel,
      rollback: CommandIDs.rollbackModel
    };
    const models = new ModelsSection({
      path: () => model.path,
      openRun: number => {
        app.shell.activateById(panel.id);
        panel.showRun(number);
      },
      execute: (command, args) => void app.commands.execute(registryCommands[command], args)
    });
    panel.addSection(models.node);
    // A new notebook, or a new run (which may have registered a model): read the models now.
    let seen = '';
    model.changed.connect(() => {
      const now = `${model.path}|${model.reply?.runs.length ?? -1}`;
      if (now !== seen) {
        seen = now;
        void models.refresh();
      }
    });
    models.start();

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

    addCommands(app, { tracker, docManager, model, panel, models });
    addCommandItems(app, palette);
  }
};

export default plugin;
