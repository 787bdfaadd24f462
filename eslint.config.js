// Lint: typescript-eslint with type information (floating promises are bugs in a durable system), Node
// built-ins kept out of workflow code (it must stay deterministic), and no line over 120 columns.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const NOT_IN_WORKFLOWS = [
  ...builtinModules.flatMap((m) => [m, `node:${m}`]),
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/worker',
  'pg',
  'express',
];

export default tseslint.config(
  { ignores: ['node_modules/', '.hourglass/', '.images/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: NOT_IN_WORKFLOWS.map((name) => ({
            name,
            message: 'workflow code must stay deterministic: no Node or I/O modules',
          })),
        },
      ],
    },
  },
  { files: ['**/*.{js,mjs}'], ...tseslint.configs.disableTypeChecked },
  prettier,
  // Also after prettier's config, which turns curly off: a body on its own line gets braces.
  { rules: { curly: ['error', 'multi-line', 'consistent'] } },
  // After prettier's config, which turns max-len off: Prettier wraps code, this catches long strings and comments.
  { rules: { 'max-len': ['error', { code: 120, ignoreUrls: true }] } },
);
