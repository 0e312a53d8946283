// The command line of `npm run chaos`, read by node:util's parseArgs (as the
// bench reads its own): a bad option stops the run with exit code 2 before
// anything starts.
import { resolve } from 'node:path'
import { readCommandLine, refuse } from '../../bench/lib/args.js'
import { SCENARIOS, type Scenario } from './scenarios.js'
import { TOPOLOGY_NAMES, type TopologyName } from './topology.js'

export const USAGE = 'usage: npm run chaos [-- --short] [--only=scenario,…] [--topologies=single,sentinel,cluster] [--out=FILE|-]'

export interface Options {
  short: boolean
  scenarios: Scenario[]
  topologies: TopologyName[]
  /** Whether --topologies was given: then a topology that cannot run is an error, not a note. */
  topologiesAsked: boolean
  /** Where the table goes; undefined: printed only (`--out=-`). */
  out: string | undefined
}

function list (value: string): string[] {
  return value.split(',').map((item) => item.trim()).filter((item) => item !== '')
}

export function readOptions (argv: string[], root: string): Options {
  const values = readCommandLine(argv, {
    short: { type: 'boolean', default: false },
    only: { type: 'string' },
    topologies: { type: 'string' },
    out: { type: 'string' }
  }, USAGE)
  const known = new Map(SCENARIOS.map((scenario) => [scenario.id, scenario]))
  let scenarios = SCENARIOS
  if (values.only !== undefined) {
    const ids = list(values.only)
    const unknown = ids.filter((id) => !known.has(id))
    if (ids.length === 0 || unknown.length > 0) refuse(`--only: unknown scenario ${unknown.join(', ') || '(none given)'}; known: ${[...known.keys()].join(', ')}`, USAGE)
    scenarios = SCENARIOS.filter((scenario) => ids.includes(scenario.id))
  }
  let topologies: TopologyName[] = [...TOPOLOGY_NAMES]
  if (values.topologies !== undefined) {
    const names = list(values.topologies)
    const unknown = names.filter((name) => !(TOPOLOGY_NAMES as readonly string[]).includes(name))
    if (names.length === 0 || unknown.length > 0) refuse(`--topologies: unknown topology ${unknown.join(', ') || '(none given)'}; known: ${TOPOLOGY_NAMES.join(', ')}`, USAGE)
    topologies = TOPOLOGY_NAMES.filter((name) => names.includes(name))
  }
  const out = values.out ?? 'docs/guarantees.md'
  return { short: values.short === true, scenarios, topologies, topologiesAsked: values.topologies !== undefined, out: out === '-' ? undefined : resolve(root, out) }
}
