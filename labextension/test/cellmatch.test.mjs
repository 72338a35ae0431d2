import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isTrackedCell, runForCell, trackedBody } from '../lib/cellmatch.js';

const runs = [
  { number: 5, execution_count: 9, code_hash: 'new' },
  { number: 4, execution_count: 4, code_hash: 'old' },
  { number: 3, execution_count: 2, code_hash: 'old' },
  { number: 2, execution_count: 7, code_hash: 'other' }
];
const codes = { new: 'lr = 0.2\nfit(lr)\n', old: 'lr = 0.1\nfit(lr)\n', other: 'x = 1' };

test('tracked cells are the ones whose first line is %%track', () => {
  assert.ok(isTrackedCell('%%track --name a\nx = 1'));
  assert.ok(isTrackedCell('  %%track\nx = 1'));
  assert.ok(!isTrackedCell('x = 1\n%%track'));
  assert.ok(!isTrackedCell('%%tracking\nx'));
  assert.equal(trackedBody('%%track --name a\nx = 1\n'), 'x = 1\n');
  assert.equal(trackedBody('%%track'), '');
});

test('a cell shows the newest run whose code is its body', () => {
  assert.equal(runForCell('%%track --name a\nlr = 0.1\nfit(lr)', 4, runs, codes).number, 4);
  assert.equal(runForCell('%%track\nlr = 0.2\nfit(lr)   \n\n', null, runs, codes).number, 5);
});

test('an edited cell falls back to its execution count', () => {
  assert.equal(runForCell('%%track\nlr = 0.3\nfit(lr)', 7, runs, codes).number, 2);
  assert.equal(runForCell('%%track\nlr = 0.3\nfit(lr)', 99, runs, codes), null);
  assert.equal(runForCell('%%track\nlr = 0.3', null, runs, codes), null);
});

test('untracked cells never get a run', () => {
  assert.equal(runForCell('lr = 0.1\nfit(lr)', 4, runs, codes), null);
});
