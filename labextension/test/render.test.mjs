import { test } from 'node:test';
import assert from 'node:assert/strict';

import { diffLineClass, environmentRows, renderDiff, renderRunDetails } from '../lib/render.js';

const diff = {
  a: 3,
  b: 4,
  names: { a: 'train', b: 'train' },
  sections: {
    params: [{ key: 'lr', a: 0.1, b: 0.2 }],
    metrics: [{ key: 'acc', a: 0.8, b: null }],
    seeds: [],
    environment: [],
    data: [],
    code: []
  },
  code_diff: '--- run 3\n+++ run 4\n@@ -1 +1 @@\n-lr = 0.1\n+lr = <0.2>\n'
};

test('the diff shows one table per section that differs, and the code diff', () => {
  const html = renderDiff(diff);
  assert.match(html, /#3 train ↔ #4 train/);
  assert.match(html, /<h3>Params<\/h3>/);
  assert.match(
    html,
    /<th>lr<\/th><td class="nbtrack-diff-a">0.1<\/td><td class="nbtrack-diff-b">0.2<\/td>/
  );
  assert.match(html, /<td class="nbtrack-diff-b">—<\/td>/);
  assert.doesNotMatch(html, /<h3>Seeds<\/h3>/);
  assert.match(html, /<span class="nbtrack-diff-add">\+lr = &lt;0.2&gt;<\/span>/);
  assert.match(html, /<span class="nbtrack-diff-del">-lr = 0.1<\/span>/);
});

test('identical runs say so', () => {
  const html = renderDiff({ ...diff, sections: { params: [] }, code_diff: '' });
  assert.match(html, /differ in nothing/);
});

test('diff line classes', () => {
  assert.equal(diffLineClass('+++ b'), 'nbtrack-diff-file');
  assert.equal(diffLineClass('@@ -1 +1 @@'), 'nbtrack-diff-hunk');
  assert.equal(diffLineClass('+x'), 'nbtrack-diff-add');
  assert.equal(diffLineClass('-x'), 'nbtrack-diff-del');
  assert.equal(diffLineClass(' x'), 'nbtrack-diff-ctx');
});

const details = {
  id: 'f00d',
  number: 4,
  name: '<script>',
  status: 'failed',
  start_time: 0,
  end_time: 2,
  duration: 2,
  tags: ['t'],
  note: null,
  params: { lr: 0.2 },
  metrics: { acc: 0.5 },
  metric_points: { acc: 3 },
  execution_count: 4,
  kind: 'cell',
  notebook: '/x/train.ipynb',
  seed: 42,
  deterministic: false,
  seed_calls: [],
  git: { commit: '0123456789abcdef', dirty: true },
  environment: {
    python: { version: '3.11.2' },
    os: { system: 'Linux', release: '6.1' },
    hostname: 'box',
    packages: { numpy: '2.0', pandas: '2.2', foo: '1' }
  },
  inputs: [{ name: 'X', hash: 'abcdef0123456789', meta: { shape: [10, 2] } }],
  models: [],
  code: 'lr = 0.2',
  history: [1, 2],
  artifacts: [{ name: 'model', kind: 'pickle', hash: 'h', size: 2048, meta: {} }],
  error: { type: 'ValueError', message: 'bad <lr>' },
  warnings: ['seed not set'],
  extra: {},
  notice: 'run #4 was recorded by another notebook'
};

test('run details show every section, escaped', () => {
  const html = renderRunDetails(details);
  assert.match(html, /#4 &lt;script&gt;/);
  assert.doesNotMatch(html, /<script>/);
  assert.match(html, /ValueError: bad &lt;lr&gt;/);
  assert.match(html, /another notebook/);
  assert.match(html, /<th>acc<\/th><td>0.5 <span class="nbtrack-dim">\(3 steps\)<\/span>/);
  assert.match(html, /<th>seed<\/th><td>42<\/td>/);
  assert.match(html, /<th>git commit<\/th><td>0123456789<\/td>/);
  assert.match(html, /<th>X<\/th><td><code>abcdef012345<\/code> \[10,2\]/);
  assert.match(html, /<th>model<\/th><td>pickle, 2.0 KB<\/td>/);
  assert.match(html, /seed not set/);
});

test('environment summary', () => {
  assert.deepEqual(environmentRows(details.environment), [
    ['python', '3.11.2'],
    ['os', 'Linux 6.1'],
    ['host', 'box'],
    ['packages', '3 installed: numpy 2.0, pandas 2.2']
  ]);
  assert.deepEqual(environmentRows({}), []);
});

test('the gpu row names each device, whatever shape the environment gives it', () => {
  const gpuRow = gpu => environmentRows({ gpu }).find(([key]) => key === 'gpu');
  assert.deepEqual(gpuRow({ name: 'H100' }), ['gpu', 'H100']);
  assert.deepEqual(gpuRow({ devices: [{ name: 'A100' }, 'T4'] }), ['gpu', 'A100, T4']);
  assert.deepEqual(gpuRow({ count: 0 }), ['gpu', '{&quot;count&quot;:0}']);
  assert.equal(gpuRow({}), undefined);
});

test('run details show the project and the user when the run has them', () => {
  const html = renderRunDetails({ ...details, project: 'vision/<det>', user: 'ana@example.org' });
  assert.match(html, /<th>project<\/th><td>vision\/&lt;det&gt;<\/td>/);
  assert.match(html, /<th>user<\/th><td>ana@example.org<\/td>/);
  // A run from before projects and users (or without them) shows no empty rows.
  const plain = renderRunDetails({ ...details, project: null, user: null });
  assert.doesNotMatch(plain, /<th>project<\/th>/);
  assert.doesNotMatch(plain, /<th>user<\/th>/);
});
