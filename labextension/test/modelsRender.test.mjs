import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  gateVerdict,
  laterStages,
  promotionVerdict,
  renderAudit,
  renderGateTable,
  renderModelDetail,
  renderModelRow,
  renderPromoteSummary,
  renderRollbackSummary,
  stageBadge
} from '../lib/modelsRender.js';

const STAGES = ['development', 'staging', 'canary', 'production', 'archived'];

const lineage = (metrics, number = 12) => ({
  run_id: 'f'.repeat(32),
  run_number: number,
  run_name: 'digits/<mlp>',
  notebook: '/x/train.ipynb',
  params: { lr: 0.001 },
  seed: 42,
  rng_hash: null,
  env_hash: 'e'.repeat(20),
  git: { commit: '0123456789abcdef', dirty: false },
  inputs: [{ name: 'X_val', hash: 'xxh3_128:abcdef0123456789' }],
  code_hash: 'c'.repeat(20),
  metrics,
  goals: {}
});

const version = (n, stage, metrics, extra = {}) => ({
  model: 'digits',
  version: n,
  ref: `models:/digits/${n}`,
  stage,
  aliases: [],
  artifact: { name: 'model', kind: 'pickle', hash: 'a'.repeat(40), size: 10, meta: {} },
  lineage: lineage(metrics, 10 + n),
  created: 0,
  created_by: 'dev@example.org',
  host: 'box',
  ...extra
});

const report = (results, stage = 'production') => ({
  model: 'digits',
  version: 2,
  stage,
  passed: results.every(r => r.passed),
  policy_file: '/x/nbtrack.toml',
  results
});

const METRIC = {
  gate: 'val_acc >= 0.95',
  passed: true,
  detail: '0.97 (needs >= 0.95)',
  key: 'nbtrack.toml: registry.stages.production.metrics',
  kind: 'gate'
};
const APPROVALS = {
  gate: '2 approvals',
  passed: false,
  detail: '0/2: none yet',
  key: 'nbtrack.toml: registry.stages.production.approvals',
  kind: 'approvals'
};

test('stage badges carry their stage as a class; unknown stages share one look', () => {
  assert.equal(
    stageBadge('production', 'v3'),
    '<span class="nbtrack-stage nbtrack-stage-production" data-stage="production">production v3</span>'
  );
  assert.match(stageBadge('<x>'), /nbtrack-stage-other.*&lt;x&gt;/);
});

test('a version may be promoted into the later stages, never archived, never from archived', () => {
  assert.deepEqual(laterStages('development', STAGES), ['staging', 'canary', 'production']);
  assert.deepEqual(laterStages('canary', STAGES), ['production']);
  assert.deepEqual(laterStages('production', STAGES), []);
  assert.deepEqual(laterStages('archived', STAGES), []);
});

test('a model row shows who is in each stage, in stage order, and its aliases', () => {
  const html = renderModelRow(
    {
      name: 'digits<b>',
      description: null,
      versions: 3,
      latest: 3,
      stages: { production: [2], development: [3], staging: [1] },
      aliases: { champion: 2 },
      created: 0,
      updated: 0,
      production: 2
    },
    STAGES,
    false
  );
  assert.match(html, /digits&lt;b&gt;/);
  assert.match(html, /3 versions/);
  assert.match(html, /aria-expanded="false"/);
  const order = [...html.matchAll(/data-stage="(\w+)">([^<]*)</g)].map(m => m[2]);
  assert.deepEqual(order, ['development v3', 'staging v1', 'production v2']);
  assert.match(html, /@champion v2/);
});

test('the gate table marks each check and says where it is declared', () => {
  const html = renderGateTable(report([METRIC, APPROVALS]));
  assert.match(
    html,
    /<tr class="nbtrack-gate-passed" title="nbtrack.toml: registry.stages.production.metrics"><td class="nbtrack-gate-mark">✓<\/td><th>val_acc &gt;= 0.95<\/th>/
  );
  assert.match(html, /nbtrack-gate-failed.*✗.*2 approvals.*0\/2: none yet/);
  assert.equal(gateVerdict(report([METRIC, APPROVALS])), '1 of 2 checks failed');
  assert.equal(gateVerdict(report([METRIC])), 'passed');
  assert.match(renderGateTable(report([])), /No gates or approvals declared for production/);
  assert.equal(gateVerdict(report([])), 'no gates declared');
  // The narrow panel's variant: an item per check, what decided it below.
  const compact = renderGateTable(report([METRIC, APPROVALS]), true);
  assert.match(compact, /<ul class="nbtrack-gates-compact">/);
  assert.match(compact, /nbtrack-gate-failed.*✗.*2 approvals.*nbtrack-gate-detail">0\/2: none yet/);
  assert.equal(renderGateTable(report([]), true), '');
});

const dry = (stage, results, from = 'development') => ({
  dry_run: true,
  user: 'ana@example.org',
  version: version(2, from, { val_acc: 0.97 }),
  stage,
  holders: [1],
  replaces: stage === 'production' ? 1 : null,
  replaced_to: stage === 'production' ? 'staging' : null,
  report: report(results, stage)
});

test('the promote dialog goes ahead only when the registry would let it', () => {
  assert.deepEqual(promotionVerdict(dry('production', [METRIC]), false), {
    canAccept: true,
    acceptLabel: 'Promote',
    forceable: false,
    note: 'Every check passed.'
  });
  // Missing approvals: never forceable.
  const blocked = promotionVerdict(dry('production', [METRIC, APPROVALS]), true);
  assert.equal(blocked.canAccept, false);
  assert.equal(blocked.forceable, false);
  assert.match(blocked.note, /approvals cannot be forced/);
  // Only a validation gate failed: forceable, and only when the box is ticked.
  const gate = { ...METRIC, passed: false };
  assert.equal(promotionVerdict(dry('production', [gate]), false).canAccept, false);
  const forced = promotionVerdict(dry('production', [gate]), true);
  assert.deepEqual(
    [forced.canAccept, forced.forceable, forced.acceptLabel],
    [true, true, 'Force promote']
  );
  // Already there, or archived: nothing to do.
  assert.match(
    promotionVerdict(dry('production', [], 'production'), false).note,
    /already in production/
  );
  assert.equal(promotionVerdict(dry('production', [], 'archived'), false).canAccept, false);
});

test('the promote summary names the move and who steps down', () => {
  const html = renderPromoteSummary(dry('production', [METRIC]));
  assert.match(html, /digits v2<\/b>: .*development.* → .*production/);
  assert.match(html, /v1, in production now, steps down to staging/);
  assert.match(html, /Acting as ana@example.org/);
  assert.doesNotMatch(renderPromoteSummary(dry('staging', [METRIC])), /steps down/);
});

test('the rollback summary compares the version coming back with the one leaving', () => {
  const html = renderRollbackSummary({
    dry_run: true,
    user: 'ana@example.org',
    plan: {
      model: 'digits',
      version: 1,
      from: 'staging',
      to: 'production',
      event: 'rollback',
      step_down: 2
    },
    version: version(1, 'staging', { val_acc: 0.95 }),
    leaving: version(2, 'production', { val_acc: 0.97 }),
    report: report([{ ...METRIC, passed: false }]),
    gate_error: null
  });
  assert.match(html, /<b>v1<\/b> comes back, v2 steps down/);
  assert.match(html, /<th>val_acc<\/th><td>0.95<\/td><td>0.97<\/td>/);
  assert.match(html, /does not re-run them/);
  assert.match(html, /✗/);
});

test('an open model lists versions with a run link, gate results, actions and lineage', () => {
  const v2 = {
    ...version(2, 'development', { val_acc: 0.97 }, { aliases: ['champion'] }),
    run: { number: 12, id: 'f'.repeat(32), name: 'x', status: 'finished', verified_by: null },
    decisions: [
      {
        model: 'digits',
        version: 2,
        stage: 'production',
        user: 'ben',
        decision: 'reject',
        comment: 'drift',
        time: 0
      }
    ],
    periods: [
      {
        model: 'digits',
        version: 2,
        stage: 'development',
        since: 0,
        until: null,
        by: 'dev',
        reason: null
      }
    ],
    target: 'staging',
    gate: { report: report([METRIC], 'staging'), error: null }
  };
  const v1 = {
    ...version(1, 'production', { val_acc: 0.95 }),
    run: { number: 11, id: 'e'.repeat(32), name: 'x', status: null, verified_by: null },
    decisions: [],
    periods: [],
    target: null,
    gate: null
  };
  const html = renderModelDetail(
    {
      model: {
        name: 'digits',
        description: null,
        versions: 2,
        latest: 2,
        stages: { development: [2], production: [1] },
        aliases: { champion: 2 },
        created: 0,
        updated: 0,
        production: 1
      },
      versions: [v2, v1],
      user: 'dev',
      policy_file: null,
      policy_error: null,
      stages: STAGES
    },
    [
      {
        seq: 1,
        time: 0,
        user: 'dev',
        host: 'h',
        event: 'register',
        model: 'digits',
        version: 1,
        stage: 'development',
        reason: 'first',
        data: {},
        prev_hash: '',
        hash: 'x'
      }
    ]
  );
  assert.match(html, /class="[^"]*nbtrack-rollback" data-model="digits" data-stage="production"/);
  assert.match(html, /<a href="#" class="nbtrack-run-link" data-run="12"/);
  assert.match(html, /run #11 \(deleted\)/);
  assert.match(html, /→ staging: passed/);
  assert.match(html, /nbtrack-promote" data-model="digits" data-version="2" data-stage="staging"/);
  assert.match(html, /nbtrack-approve" data-model="digits" data-version="2"/);
  // v1 is in production: nothing to promote it to.
  const v1Html = html.slice(html.indexOf('data-version="1"'));
  assert.doesNotMatch(v1Html, /nbtrack-promote/);
  assert.match(html, /REJECTED for production by ben.*drift/);
  assert.match(html, /<th>input X_val<\/th><td><code>xxh3_128:abcdef0123456789<\/code>/);
  assert.match(html, /<th>run<\/th><td>#12 digits\/&lt;mlp&gt;<\/td>/);
  assert.match(html, /@champion/);
  assert.match(html, /audit log \(latest 1\)/);
});

test('the audit tail lists the newest first, with why', () => {
  const entry = (seq, event, extra = {}) => ({
    seq,
    time: 0,
    user: 'ana',
    host: 'h',
    event,
    model: 'digits',
    version: 2,
    stage: 'production',
    reason: null,
    data: {},
    prev_hash: '',
    hash: '',
    ...extra
  });
  const html = renderAudit([
    entry(1, 'gate', { data: { passed: false } }),
    entry(2, 'promote', { reason: 'beats v1', data: { forced: true } })
  ]);
  assert.ok(html.indexOf('#2') < html.indexOf('#1'));
  assert.match(html, /promote v2 → production FORCED<\/b> — beats v1/);
  assert.match(html, /gate v2 → production FAILED/);
});
