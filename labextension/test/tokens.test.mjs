import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CommandIDs } from '../lib/tokens.js';

test('command ids stay what user settings and other extensions already name', () => {
  assert.deepEqual(CommandIDs, {
    exportNotebook: 'nbtrack:export-notebook',
    exportRun: 'nbtrack:export-run',
    compareRuns: 'nbtrack:compare-runs',
    openRun: 'nbtrack:open-run',
    refresh: 'nbtrack:refresh',
    promoteModel: 'nbtrack:promote-model',
    rollbackModel: 'nbtrack:rollback-model',
    approveModel: 'nbtrack:approve-model'
  });
});
