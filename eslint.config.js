import neostandard from 'neostandard'
import globals from 'globals'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', '.tap/**', 'test-artifacts/**']
  }),
  {
    // A zod schema and its inferred type share a name (STYLE.md); TypeScript
    // itself reports real redeclarations.
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  },
  {
    // The chat page runs in the browser.
    files: ['public/**/*.js'],
    languageOptions: { globals: globals.browser }
  }
]
