/**
 * The Runs panel's project filter and chips (docs/team.md#projects): which projects a
 * notebook's runs belong to, which runs a choice keeps, and the HTML of the chip and of the
 * `<select>`. Pure (no JupyterLab imports), so `node --test` runs it on the compiled lib/.
 */
import { escapeHtml } from './format.js';
import type { IRunSummary } from './tokens';

/** The choice that keeps every run. */
export const ALL_PROJECTS = '';
/**
 * The choice that keeps the runs that name no project. Not a valid project name (those
 * start with a letter or digit), so it cannot collide with one.
 */
export const NO_PROJECT = '(none)';

/** The distinct projects of `runs`, sorted; runs without a project add nothing. */
export function runProjects(runs: ReadonlyArray<Pick<IRunSummary, 'project'>>): string[] {
  const names = new Set<string>();
  for (const run of runs) {
    if (run.project) {
      names.add(run.project);
    }
  }
  return [...names].sort((a, b) => a.localeCompare(b));
}

/** One option of the project `<select>`: its value and what it says. */
export interface IProjectOption {
  value: string;
  label: string;
}

/**
 * The options of the project `<select>`: "All projects", each project present, and "No
 * project" when some runs have one and others not. Empty when no run has a project: the
 * select is then hidden, so a user who never names a project sees no change.
 */
export function projectOptions(
  runs: ReadonlyArray<Pick<IRunSummary, 'project'>>
): IProjectOption[] {
  const projects = runProjects(runs);
  if (projects.length === 0) {
    return [];
  }
  const options: IProjectOption[] = [
    { value: ALL_PROJECTS, label: 'All projects' },
    ...projects.map(name => ({ value: name, label: name }))
  ];
  if (runs.some(run => !run.project)) {
    options.push({ value: NO_PROJECT, label: 'No project' });
  }
  return options;
}

/**
 * The choice in effect for these runs: the user's `choice` when it is one of the options,
 * else all projects. The choice itself is kept (it outlives a notebook whose runs lack that
 * project), so opening a notebook that has it filters by it again.
 */
export function effectiveProject(
  choice: string,
  runs: ReadonlyArray<Pick<IRunSummary, 'project'>>
): string {
  return projectOptions(runs).some(option => option.value === choice) ? choice : ALL_PROJECTS;
}

/** Whether `run` is kept by the project choice `project` (an effective one). */
export function matchesProject(run: Pick<IRunSummary, 'project'>, project: string): boolean {
  if (project === ALL_PROJECTS) {
    return true;
  }
  if (project === NO_PROJECT) {
    return !run.project;
  }
  return run.project === project;
}

/** The chip a run row shows for its project; nothing for a run without one. */
export function projectChip(project: string | null | undefined): string {
  if (!project) {
    return '';
  }
  return `<span class="nbtrack-project" title="project ${escapeHtml(project)}">${escapeHtml(project)}</span>`;
}

/** The `<option>`s of the project select, `selected` marked. */
export function projectOptionsHtml(options: IProjectOption[], selected: string): string {
  return options
    .map(
      option =>
        `<option value="${escapeHtml(option.value)}"${option.value === selected ? ' selected' : ''}>` +
        `${escapeHtml(option.label)}</option>`
    )
    .join('');
}

/** What the list says when the text filter and the project choice leave no run. */
export function noMatchText(filter: string, project: string): string {
  const where =
    project === ALL_PROJECTS
      ? ''
      : project === NO_PROJECT
        ? ' without a project'
        : ` in project ${project}`;
  const what = filter.trim() ? ` matches “${filter}”` : '';
  return `No run${where}${what}.`;
}
