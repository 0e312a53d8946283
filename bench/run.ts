// `npm run bench [-- --quick --reps=N --only=a,c --wait-quiet=S --results=DIR --from=FILE]`:
// the fan-out benchmark of the service against a bare `ws` baseline, measured
// in the same run, product and baseline alternating. Prints a table, writes
// bench/results/latest.json (and latest.md). See docs/performance.md.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { integerOption, readCommandLine } from './lib/args.js'
import type { Job } from './lib/jobs.js'
import { clockTicksPerSecond, coreTicks, describeMachine, hasTaskset, loadAverage, type Machine, openFileLimit } from './lib/proc.js'
import { renderMarkdown, renderText, summarise, type Summary, TARGETS, type ScenarioRuns, type Target } from './lib/report.js'
import { connectionsNeeded, scenarios, type Scenario } from './lib/scenarios.js'
import { buildServers, type Child, Generator, killAllChildren, type Placement, PRODUCT_ENV, RedisProcess, startBaseline, startProduct } from './lib/servers.js'
import type { Test } from 'tap'
import { RedisCluster } from '../test/helpers/redis-cluster.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
/** Descriptors a process needs beyond its sockets (modules, pipes, epoll…). */
const SPARE_FILES = 256
/** The whole run stops starting new work after this. */
const RUN_BUDGET_MS = { quick: 3 * 60_000, full: 20 * 60_000 }

const USAGE = 'usage: npm run bench [-- --quick] [--reps=N] [--only=a,b,c,d,e,f,g] [--wait-quiet=SECONDS] [--results=DIR] [--from=results.json]'

interface Options {
  quick: boolean
  reps: number
  only: Set<string> | undefined
  /** Longest wait, before each run, for the machine to go quiet (0: do not wait). */
  waitQuietSec: number
  /** Where results go (default bench/results; the bench's own test writes to a temporary directory). */
  resultsDir: string
  /** `--from=FILE`: print the tables of a saved run again instead of running. */
  from: string | undefined
}

/** What the bare baseline is (bench/baseline-server.ts), for the report's header. */
const BASELINE_DESCRIPTION = 'ws, frame built once and written to each socket, one write per delivery'

/** A core busier than this (with our processes idle) means other work is running. */
const QUIET_BUSY_PCT = 30

function readOptions (argv: string[]): Options {
  const values = readCommandLine(argv, {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    only: { type: 'string' },
    'wait-quiet': { type: 'string' },
    results: { type: 'string' },
    from: { type: 'string' }
  }, USAGE)
  const quick = values.quick === true
  return {
    quick,
    // A smoke test runs each target once unless told otherwise.
    reps: integerOption(values.reps, 'reps', quick ? 1 : 2, 1, 9, USAGE),
    only: values.only === undefined ? undefined : new Set(values.only.split(',').map((id) => id.trim())),
    waitQuietSec: integerOption(values['wait-quiet'], 'wait-quiet', 0, 0, 600, USAGE),
    resultsDir: values.results === undefined || values.results === '' ? join(ROOT, 'bench', 'results') : resolve(values.results),
    from: values.from
  }
}

function log (message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

/** Server processes of one run: the nodes whose CPU counts, and the ones reported beside them. */
interface Servers {
  nodes: Child[]
  extraPids: Record<string, number>
}

function buildJob (scenario: Scenario, servers: Servers, placement: Placement, clkTck: number): Job {
  const urls = servers.nodes.map((node) => node.wsUrl)
  const serverPids = servers.nodes.map((node) => node.pid)
  switch (scenario.kind) {
    case 'fanout':
      return {
        kind: 'fanout',
        urls,
        publisherNode: 0,
        roomPrefix: `bench-${scenario.id}`,
        rooms: scenario.rooms,
        subscribersPerRoom: scenario.subscribersPerRoom,
        subscribersInEveryRoom: scenario.subscribersInEveryRoom,
        steps: scenario.steps,
        warmupMs: scenario.warmupMs,
        measureMs: scenario.measureMs,
        drainMs: scenario.drainMs,
        pauseMs: scenario.pauseMs,
        serverPids,
        extraPids: servers.extraPids,
        cores: { server: placement.serverCore, generator: placement.generatorCore },
        clkTck
      }
    case 'memory':
      return { kind: 'memory', urls, roomPrefix: `bench-${scenario.id}`, rooms: scenario.rooms, connections: scenario.connections, settleMs: scenario.settleMs, serverPid: serverPids[0] as number }
    case 'join-storm':
      return { kind: 'join-storm', urls, room: `bench-${scenario.id}`, clients: scenario.clients, timeoutMs: scenario.timeoutMs, serverPids, clkTck }
  }
}

function jobTimeoutMs (scenario: Scenario): number {
  switch (scenario.kind) {
    case 'fanout':
      return 150_000 + scenario.steps.length * (scenario.warmupMs + scenario.measureMs + scenario.drainMs + scenario.pauseMs + 10_000)
    case 'memory':
      return 120_000 + scenario.settleMs
    case 'join-storm':
      return 60_000 + scenario.timeoutMs
  }
}

/**
 * Starts (or, with `reuse`, hands out again) the servers of one run. The full
 * bench starts fresh processes for every run, so no run inherits another's
 * heap; `--quick` reuses them to stay a smoke test of a few seconds.
 */
class ServerPool {
  private readonly cache = new Map<string, Servers>()
  private redis: RedisProcess | undefined
  private redisCluster: RedisCluster | undefined
  /** What the Redis Cluster fixture (a test helper) asks to run at the end, as a test's teardown. */
  private readonly clusterTeardowns: Array<() => unknown> = []

  constructor (private readonly placement: Placement, private readonly reuse: boolean) {}

  async acquire (target: Target, cluster: boolean, redisCluster = false): Promise<Servers> {
    const key = target === 'product' && cluster ? (redisCluster ? 'redis-cluster' : 'cluster') : target
    const cached = this.cache.get(key)
    if (cached) return cached
    let servers: Servers
    if (key === 'redis-cluster') {
      this.redisCluster ??= await RedisCluster.start({ teardown: (fn: () => unknown) => this.clusterTeardowns.push(fn) } as unknown as Test)
      for (const master of await this.redisCluster.masters()) await this.redisCluster.command(master.port, 'FLUSHALL')
      const redisClusterNodes = this.redisCluster.seeds
      const nodes = await Promise.all(['bench-node-1', 'bench-node-2'].map((nodeId) => startProduct(ROOT, this.placement, { redisClusterNodes, nodeId })))
      // Every master and replica's CPU is reported beside the nodes'.
      const extraPids = Object.fromEntries(this.redisCluster.nodes.map((node) => [`redis-${node.port}`, node.process.pid as number]))
      servers = { nodes, extraPids }
    } else if (key === 'cluster') {
      this.redis ??= await RedisProcess.start(this.placement)
      // Every cluster run starts from an empty Redis.
      await this.redis.command('FLUSHALL')
      const redisUrl = this.redis.url
      const nodes = await Promise.all(['bench-node-1', 'bench-node-2'].map((nodeId) => startProduct(ROOT, this.placement, { redisUrl, nodeId })))
      servers = { nodes, extraPids: { redis: this.redis.child.pid } }
    } else if (key === 'product') {
      servers = { nodes: [await startProduct(ROOT, this.placement)], extraPids: {} }
    } else {
      servers = { nodes: [await startBaseline(ROOT, this.placement)], extraPids: {} }
    }
    if (this.reuse) this.cache.set(key, servers)
    return servers
  }

  async release (servers: Servers): Promise<void> {
    if (this.reuse) return
    await Promise.all(servers.nodes.map((node) => node.stop()))
  }

  async close (): Promise<void> {
    await Promise.all([...this.cache.values()].flatMap((servers) => servers.nodes.map((node) => node.stop())))
    this.cache.clear()
    await this.redis?.stop()
    this.redis = undefined
    for (const teardown of this.clusterTeardowns.splice(0)) await teardown()
    this.redisCluster = undefined
  }
}

/** Busy share (percent) of the busiest core over `sampleMs`. */
async function busiestCorePct (sampleMs: number): Promise<number> {
  const before = coreTicks()
  await sleep(sampleMs)
  const after = coreTicks()
  let busiest = 0
  after.forEach((ticks, core) => {
    const start = before[core]
    if (start !== undefined) busiest = Math.max(busiest, ((ticks.busy - start.busy) / clockTicks / (sampleMs / 1000)) * 100)
  })
  return busiest
}

const clockTicks = clockTicksPerSecond()

/** On a shared machine: waits (bounded) for the other work to pause. Returns the last busy share seen. */
async function waitForQuiet (maxWaitSec: number): Promise<number> {
  const deadline = Date.now() + maxWaitSec * 1000
  let busy = await busiestCorePct(1000)
  while (busy > QUIET_BUSY_PCT && Date.now() < deadline) busy = await busiestCorePct(1000)
  return busy
}

function gitRevision (): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' })
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'app.ts', 'server.ts', 'lib', 'plugins', 'routes'], { cwd: ROOT, encoding: 'utf8' })
  const changed = dirty.stdout?.trim().split('\n').filter(Boolean).length ?? 0
  return `${head.stdout?.trim() || 'unknown'}${changed > 0 ? ` (+${changed} uncommitted change(s) in the server source)` : ''}`
}

async function main (): Promise<void> {
  const options = readOptions(process.argv.slice(2))
  if (options.from !== undefined) {
    republish(options.from, options.resultsDir)
    return
  }
  const started = Date.now()
  const budgetEnds = started + (options.quick ? RUN_BUDGET_MS.quick : RUN_BUDGET_MS.full)
  const selected = scenarios(options.quick).filter((scenario) => options.only === undefined || options.only.has(scenario.id))
  const machine = describeMachine(ROOT)
  const clkTck = clockTicks

  // Servers on core 0, the generator (and this idle parent) on core 1.
  const pin = hasTaskset() && cpus().length >= 2
  const limit = openFileLimit()
  const needed = Math.max(...selected.map(connectionsNeeded)) + SPARE_FILES
  let fileLimit: number | undefined
  const fileNotes: string[] = []
  if (limit.soft < needed) {
    if (limit.hard > limit.soft) {
      fileLimit = Math.min(limit.hard, 65536)
      fileNotes.push(`raised ulimit -n from ${limit.soft} to ${fileLimit} in the spawned processes`)
    }
    if (Math.min(limit.hard, 65536) < needed) fileNotes.push(`ulimit -n hard limit ${limit.hard} is below the ${needed} descriptors a process needs: connections will fail`)
  }
  const placement: Placement = { serverCore: pin ? 0 : undefined, generatorCore: pin ? 1 : undefined, fileLimit }
  if (pin) spawnSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' })
  log(`${options.quick ? 'quick' : 'full'} run: scenarios ${selected.map((s) => s.id).join(',')}, ${options.reps} run(s) per target; ${pin ? 'servers on core 0, generator on core 1' : 'no pinning (taskset missing or one core)'}; ulimit -n ${limit.soft}/${limit.hard}`)
  for (const note of fileNotes) log(note)

  log('compiling the servers (tsc -p tsconfig.bench.json)')
  buildServers(ROOT)
  const generator = new Generator(ROOT, placement)
  const pool = new ServerPool(placement, options.quick)
  const all: ScenarioRuns[] = []
  let outOfTime = false
  const quietness: number[] = []
  try {
    for (const scenario of selected) {
      const runs: ScenarioRuns = { scenario, runs: { product: [], baseline: [] } }
      all.push(runs)
      for (let rep = 1; rep <= options.reps && !outOfTime; rep++) {
        for (const target of TARGETS) {
          if (Date.now() > budgetEnds) {
            outOfTime = true
            log('run budget spent: stopping early')
            break
          }
          if (options.waitQuietSec > 0) {
            const busy = await waitForQuiet(options.waitQuietSec)
            quietness.push(busy)
            if (busy > QUIET_BUSY_PCT) log(`the machine is still busy (${busy.toFixed(0)}% of a core used by other work): running anyway`)
          }
          log(`${scenario.id} run ${rep}/${options.reps} ${target}: ${scenario.title}`)
          let servers: Servers | undefined
          try {
            servers = await pool.acquire(target, scenario.kind === 'fanout' && scenario.cluster, scenario.kind === 'fanout' && scenario.redisCluster === true)
            const result = await generator.run(buildJob(scenario, servers, placement, clkTck), jobTimeoutMs(scenario))
            runs.runs[target].push({ rep, result })
            const dead = servers.nodes.filter((node) => !node.running)
            if (dead.length > 0) throw new Error(`${dead.map((node) => node.label).join(', ')} exited during the run:\n${dead.map((node) => node.output).join('\n')}`)
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error)
            log(`  failed: ${message.split('\n')[0] ?? ''}`)
            runs.runs[target].push({ rep, error: message })
          } finally {
            if (servers) await pool.release(servers)
          }
        }
      }
    }
  } finally {
    await generator.stop()
    await pool.close()
  }

  const durationSec = (Date.now() - started) / 1000
  const meta: RunMeta = {
    date: new Date(started).toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick: options.quick,
    only: options.only !== undefined,
    reps: options.reps,
    durationSec,
    revision: gitRevision(),
    machine: { ...machine, loadAverageAtEnd: loadAverage() },
    clkTck,
    pinning: pin ? { server: 'taskset -c 0', generator: 'taskset -c 1' } : 'none',
    openFiles: { soft: limit.soft, hard: limit.hard, neededPerProcess: needed, notes: fileNotes },
    productEnv: PRODUCT_ENV,
    baseline: { description: BASELINE_DESCRIPTION },
    waitQuiet: options.waitQuietSec > 0 ? { maxWaitSec: options.waitQuietSec, busiestCorePctBeforeRuns: quietness.map((v) => Math.round(v)) } : 'off',
    outOfTime
  }
  const summary = publish(meta, all, options.resultsDir)
  if (summary.errors.length > 0 || outOfTime) process.exitCode = 1
}

interface RunMeta {
  date: string
  command: string
  quick: boolean
  /** A partial run (`--only`). */
  only?: boolean
  reps: number
  durationSec: number
  revision: string
  machine: Machine & { loadAverageAtEnd: string }
  clkTck: number
  pinning: unknown
  openFiles: unknown
  productEnv: Record<string, string>
  /** Runs saved before the baseline modes were retired also have `mode`. */
  baseline: { mode?: string, description: string }
  waitQuiet: unknown
  outOfTime: boolean
}

/**
 * Prints the table and writes the results: bench/results/latest.{json,md}
 * for a full run, quick.{json,md} for `--quick`, only-<ids>.{json,md} for
 * `--only` (a smoke test or a partial run must not overwrite the figures of
 * the last full run).
 */
function publish (meta: RunMeta, all: ScenarioRuns[], resultsDir: string): Summary {
  const summary = summarise(all)
  // A smoke test's windows are too short to judge anything by.
  if (meta.quick) for (const check of summary.targets) check.pass = null
  const titles = new Map(all.map(({ scenario }) => [scenario.id, scenario.title]))
  const { machine } = meta
  const header = `${meta.command} — ${meta.date}, ${meta.durationSec.toFixed(0)} s; ${machine.cores} cores ${machine.model}, Node ${machine.node}, ws ${machine.ws}; load average ${machine.loadAverage} at start, ${machine.loadAverageAtEnd} at end; revision ${meta.revision}; baseline: ${meta.baseline.description}; ${meta.reps} run(s) per target`
  const caveat = meta.quick ? 'QUICK RUN: a smoke test of each scenario; windows this short (and CPU counted in 10 ms ticks) make its figures meaningless.\n\n' : ''
  process.stdout.write(`${header}\n\n${caveat}${renderText(summary, titles)}\n`)
  const ids = all.map(({ scenario }) => scenario.id).join('')
  const name = meta.quick ? 'quick' : meta.only ? `only-${ids}` : 'latest'
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify({ meta, scenarios: all, summary }, null, 2) + '\n')
  writeFileSync(join(resultsDir, `${name}.md`), `${header}\n\n${caveat}${renderMarkdown(summary, titles)}`)
  log(`wrote ${join(resultsDir, name)}.json and ${name}.md`)
  return summary
}

/** `--from=FILE`: the tables of a saved run again (after a change to the report), without running anything. */
function republish (file: string, resultsDir: string): void {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { meta: RunMeta, scenarios: ScenarioRuns[] }
  publish(saved.meta, saved.scenarios, resultsDir)
}

process.on('exit', killAllChildren)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllChildren()
    process.exit(130)
  })
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  killAllChildren()
  process.exit(1)
})
