// Lint rules: recommended JS + typed TypeScript rules that catch real bugs
// (floating promises lose errors; misused promises hide them in callbacks).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.havre/**', 'web/dist/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through src/config only.' }],
    },
  },
  { files: ['src/config/**', 'src/cli/**', 'test/**', 'bench/**', 'vitest.config.ts'], rules: { 'no-restricted-properties': 'off' } },
  // Tests read dynamic JSON answers; `any` there keeps assertions short.
  { files: ['test/**', '**/*.test.ts', '**/*-fixtures.ts', '**/*-test-helpers.ts', 'bench/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  { files: ['bin/**/*.js'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
);
