// ESLint flat config for the nbtrack JupyterLab extension.
// Formatting is prettier's job: eslint-config-prettier comes last so that no rule here
// argues with it, and `jlpm lint` runs both.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig([
  globalIgnores(['lib/', 'node_modules/', '.yarn/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['src/**/*.ts'],
    languageOptions: { globals: globals.browser }
  },
  {
    // The unit tests and this file run in node, as ES modules.
    files: ['test/**/*.mjs', '*.mjs'],
    languageOptions: { globals: globals.node }
  },
  prettier
]);
