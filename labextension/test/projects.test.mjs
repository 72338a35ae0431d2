// The Runs panel's project filter: which projects, which runs a choice keeps, and its HTML.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ALL_PROJECTS,
  NO_PROJECT,
  effectiveProject,
  matchesProject,
  noMatchText,
  projectChip,
  projectOptions,
  projectOptionsHtml,
  runProjects
} from '../lib/projects.js';

const runs = [
  { number: 4, project: 'vision' },
  { number: 3, project: 'nlp' },
  { number: 2, project: null },
  { number: 1, project: 'vision' }
];

test('the projects are the distinct ones present, sorted', () => {
  assert.deepEqual(runProjects(runs), ['nlp', 'vision']);
  assert.deepEqual(runProjects([{ project: null }, {}]), []);
});

test('no project anywhere: no options, so the select stays hidden', () => {
  assert.deepEqual(projectOptions([{ project: null }, { project: undefined }]), []);
  assert.deepEqual(projectOptions([]), []);
});

test('options: all projects, each project, and "No project" only when some run lacks one', () => {
  assert.deepEqual(projectOptions(runs), [
    { value: ALL_PROJECTS, label: 'All projects' },
    { value: 'nlp', label: 'nlp' },
    { value: 'vision', label: 'vision' },
    { value: NO_PROJECT, label: 'No project' }
  ]);
  assert.deepEqual(
    projectOptions([{ project: 'vision' }]).map(o => o.label),
    ['All projects', 'vision']
  );
});

test('a choice filters the runs', () => {
  const kept = choice => runs.filter(run => matchesProject(run, choice)).map(r => r.number);
  assert.deepEqual(kept(ALL_PROJECTS), [4, 3, 2, 1]);
  assert.deepEqual(kept('vision'), [4, 1]);
  assert.deepEqual(kept('nlp'), [3]);
  assert.deepEqual(kept(NO_PROJECT), [2]);
  assert.deepEqual(kept('vision/detection'), []);
});

test('a choice this notebook has no run of shows every run (the choice itself is kept)', () => {
  assert.equal(effectiveProject('vision', runs), 'vision');
  assert.equal(effectiveProject('audio', runs), ALL_PROJECTS);
  assert.equal(effectiveProject('vision', [{ project: null }]), ALL_PROJECTS);
  assert.equal(effectiveProject(NO_PROJECT, [{ project: null }]), ALL_PROJECTS);
  assert.equal(effectiveProject(NO_PROJECT, runs), NO_PROJECT);
});

test('chip and options are escaped; a run without a project has no chip', () => {
  assert.equal(projectChip(null), '');
  assert.equal(projectChip(undefined), '');
  assert.equal(
    projectChip('a<b'),
    '<span class="nbtrack-project" title="project a&lt;b">a&lt;b</span>'
  );
  const html = projectOptionsHtml(projectOptions(runs), 'nlp');
  assert.match(html, /^<option value="">All projects<\/option>/);
  assert.match(html, /<option value="nlp" selected>nlp<\/option>/);
  assert.equal((html.match(/selected/g) ?? []).length, 1);
  assert.match(html, /<option value="\(none\)">No project<\/option>$/);
});

test('the empty list says which filter left nothing', () => {
  assert.equal(noMatchText('lr=9', ALL_PROJECTS), 'No run matches “lr=9”.');
  assert.equal(noMatchText('lr=9', 'vision'), 'No run in project vision matches “lr=9”.');
  assert.equal(noMatchText('', NO_PROJECT), 'No run without a project.');
});
