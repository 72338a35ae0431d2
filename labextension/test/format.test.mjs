// Unit tests of the pure modules, run with node's own test runner on the compiled lib/.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  escapeHtml,
  formatBytes,
  formatDuration,
  formatValue,
  headlineMetrics,
  matchesFilter,
  runDuration,
  runTitle,
  statusClass
} from '../lib/format.js';

const run = (over = {}) => ({
  id: 'abc',
  number: 7,
  name: 'digits/mlp',
  status: 'finished',
  start_time: 100,
  end_time: 112.5,
  duration: 12.5,
  tags: ['baseline'],
  note: 'first try',
  params: { lr: 0.001, epochs: 5 },
  metrics: { acc: 0.91234, loss: 0.2 },
  error: null,
  execution_count: 3,
  code_hash: 'h1',
  ...over
});

test('formatDuration picks a unit a person reads at a glance', () => {
  assert.equal(formatDuration(null), '—');
  assert.equal(formatDuration(Number.NaN), '—');
  assert.equal(formatDuration(0.25), '250 ms');
  assert.equal(formatDuration(3.21), '3.2 s');
  assert.equal(formatDuration(42.4), '42 s');
  assert.equal(formatDuration(65), '1 min 05 s');
  assert.equal(formatDuration(7380), '2 h 03 min');
});

test('a running run counts its duration up to now', () => {
  assert.equal(runDuration(run({ status: 'running', duration: null, start_time: 90 }), 100), 10);
  assert.equal(runDuration(run(), 1e9), 12.5);
});

test('formatValue keeps four significant digits and marks missing values', () => {
  assert.equal(formatValue(0.91234), '0.9123');
  assert.equal(formatValue(3), '3');
  assert.equal(formatValue(1e-5), '1.00e-5');
  assert.equal(formatValue(12345678.9), '1.23e+7');
  assert.equal(formatValue(null), '—');
  assert.equal(formatValue([64, 32]), '[64,32]');
  assert.equal(formatValue('adam'), 'adam');
});

test('headline metrics are the first ones logged', () => {
  assert.deepEqual(headlineMetrics({ acc: 0.5, loss: 1.25, f1: 0.3 }), [
    ['acc', '0.5'],
    ['loss', '1.25']
  ]);
  assert.deepEqual(headlineMetrics({ acc: null }, 1), [['acc', '—']]);
  assert.deepEqual(headlineMetrics({}), []);
});

test('titles and status classes', () => {
  assert.equal(runTitle(run()), '#7 digits/mlp');
  assert.equal(runTitle(run({ name: null })), '#7');
  assert.equal(statusClass('failed'), 'nbtrack-status-failed');
  assert.equal(statusClass('weird'), 'nbtrack-status-other');
});

test('the filter matches every word against name, status, tags and key=value', () => {
  assert.ok(matchesFilter(run(), ''));
  assert.ok(matchesFilter(run(), 'mlp finished'));
  assert.ok(matchesFilter(run(), 'LR=0.001'));
  assert.ok(matchesFilter(run(), 'baseline #7'));
  assert.ok(matchesFilter(run(), 'acc=0.912'));
  assert.ok(!matchesFilter(run(), 'mlp failed'));
  assert.ok(!matchesFilter(run(), 'lr=0.1 '));
});

test('bytes and HTML escaping', () => {
  assert.equal(formatBytes(532), '532 B');
  assert.equal(formatBytes(2048), '2.0 KB');
  assert.equal(formatBytes(3.5 * 1024 * 1024), '3.5 MB');
  assert.equal(escapeHtml('<b a="1">&\'</b>'), '&lt;b a=&quot;1&quot;&gt;&amp;&#39;&lt;/b&gt;');
});
