// Where a table came from: when, which commit, which machine, which command.
import { spawnSync } from 'node:child_process'
import { relative } from 'node:path'
import { describeMachine } from '../../bench/lib/proc.js'

export interface Provenance {
  date: string
  /** `git rev-parse --short HEAD`, plus ` (dirty)` when the tree has changes other than the output file. */
  commit: string
  machine: string
  command: string
}

function git (root: string, args: string[]): string {
  const run = spawnSync('git', args, { cwd: root, encoding: 'utf8' })
  return run.status === 0 ? run.stdout.trim() : ''
}

/** `outFile` is left out of the dirty check: an earlier run's table is what this run replaces. */
export function provenance (root: string, argv: string[], outFile: string | undefined): Provenance {
  const head = git(root, ['rev-parse', '--short', 'HEAD']) || 'unknown'
  const ignored = outFile === undefined ? undefined : relative(root, outFile)
  const changes = git(root, ['status', '--porcelain']).split('\n').filter((line) => line !== '' && line.slice(3) !== ignored)
  const machine = describeMachine(root)
  const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.match(/v=(\S+)/)?.[1] ?? 'unknown'
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: changes.length > 0 ? `${head} (dirty)` : head,
    machine: `${machine.cores} × ${machine.model}, Linux ${machine.kernel}, Node ${machine.node}, Redis ${redis}`,
    command: ['npm run chaos', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' ')
  }
}
