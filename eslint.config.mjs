import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tools/**', '.data/**', '**/*.js', '*.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O libraries, no Node built-ins.
    files: ['workflows/**/*.ts'],
    ignores: ['workflows/*-main.ts', 'workflows/workflow-worker.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'path', 'os', 'crypto', 'http', 'net', 'child_process'], message: 'No Node built-ins in workflow code.' },
          { group: ['pino', 'undici', 'prom-client', 'fastify', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'], message: 'No I/O libraries in workflow code.' },
          { group: ['../api/*', '../gpu-workers/*', '../activities/*'], allowTypeImports: true, message: 'Workflows import only core/ and types.' },
        ],
      }],
    },
  },
  {
    // jest's asymmetric matchers (expect.any, expect.objectContaining) are typed `any`.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // core/ imports nothing else of ours: dependencies point inward.
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../api/*', '../workflows/*', '../activities/*', '../gpu-workers/*', '../policy/*', '../cli/*'], message: 'core/ imports nothing else of ours.' }] }],
    },
  },
);
