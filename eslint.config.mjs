// @ts-check
import eslint from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** service/src's folders, and what each may not import (service/README.md "Layout" says why). */
const serviceLayers = [
  // The network path knows nothing of HTTP or of the labels store.
  { target: './service/src/inference', from: ['./service/src/http', './service/src/labels'] },
  // Outside labels/, the store is reached through labels/index.ts only.
  {
    target: [
      './service/src/http',
      './service/src/inference',
      './service/src/process',
      './service/src/main.ts',
    ],
    from: './service/src/labels',
    except: ['./index.ts'],
  },
];

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      '.cache/**',
      'test-artifacts/**',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    plugins: { 'import-x': importX },
    settings: {
      // no-cycle parses each imported file itself: without these it reads no .ts file and sees no circle.
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      // Shown in the editor as it is written; `npm run cycles` (part of `npm run lint`) also counts the type-only
      // imports this rule skips.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': ['error', { zones: serviceLayers }],
    },
  },
);
