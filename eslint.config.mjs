// Lints the extension's TypeScript (client/).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    { ignores: ['dist/', 'node_modules/', '.e2e/', '.venv/', 'bundled/'] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        files: ['client/**/*.ts'],
        rules: {
            eqeqeq: 'error',
            curly: 'error',
            '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
            '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
        },
    },
    {
        files: ['client/**/*.mjs', 'client/**/*.js'],
        languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    },
);
