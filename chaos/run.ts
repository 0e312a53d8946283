// `npm run chaos [-- --short --only=a,b --topologies=single,… --out=FILE|-]`:
// the fault scenarios against real nodes and real Redis processes, on every
// topology they apply to; writes the table of what every client saw to
// docs/guarantees.md (see chaos/lib/report.ts for what the columns mean).
// Exits 1 when a verdict fails (the table is written all the same).
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readOptions } from './lib/options.js'
import { PLANS } from './lib/plan.js'
import { provenance } from './lib/provenance.js'
import { failures, renderMarkdown, type Report } from './lib/report.js'
import { runScenario, type Result } from './lib/runner.js'
import { matrix } from './lib/scenarios.js'
import { TOPOLOGIES } from './lib/topologies/index.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

function log (message: string): void {
  process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

async function main (): Promise<number> {
  const argv = process.argv.slice(2)
  const options = readOptions(argv, ROOT)
  const planName = options.short ? 'short' : 'full'
  const plan = PLANS[planName]
  const origin = provenance(ROOT, argv, options.out)
  const skipped: Report['skipped'] = []
  const topologies = TOPOLOGIES.filter((topology) => options.topologies.includes(topology.name)).filter((topology) => {
    const reason = topology.unavailable()
    if (reason !== undefined) skipped.push({ topology: topology.name, reason })
    return reason === undefined
  })
  const results: Result[] = []
  for (const { scenario, topology } of matrix(options.scenarios, topologies, options.short)) {
    log(`${scenario.id} on ${topology.name}…`)
    const result = await runScenario(scenario, topology, plan, log)
    const failed = failures(result)
    log(`${scenario.id} on ${topology.name}: ${failed.length === 0 ? 'pass' : `FAIL (${failed.join(', ')})`} in ${(result.durationMs / 1000).toFixed(1)} s — ${result.error ?? result.evidence.note}`)
    results.push(result)
  }
  const markdown = renderMarkdown({ provenance: origin, plan, planName, scenarios: options.scenarios, topologies, skipped, results })
  if (options.out === undefined) process.stdout.write(markdown)
  else {
    writeFileSync(options.out, markdown)
    log(`wrote ${options.out}`)
  }
  const failedRuns = results.filter((result) => failures(result).length > 0).length
  if (options.topologiesAsked && skipped.length > 0) {
    log(`asked-for topologies could not run: ${skipped.map(({ topology, reason }) => `${topology} (${reason})`).join('; ')}`)
    return 1
  }
  if (results.length === 0) {
    log('no scenario ran')
    return 1
  }
  return failedRuns > 0 ? 1 : 0
}

// Exit explicitly: a socket a killed process left half-open must not keep the run alive.
main().then((code) => process.exit(code), (error: unknown) => {
  log(`chaos run failed: ${(error as Error).stack ?? String(error)}`)
  process.exit(1)
})
