// Frame floods (PROTOCOL §2, issue 10 finding 3): every client frame counts
// against FRAME_RATE_PER_SEC / FRAME_BURST before it is parsed, so join/leave
// churn and floods of large invalid frames get `rate_limited`, then 1008, and
// the other members of the node keep their latency. The server is a real
// process; the flood comes from another (test/tools/frame-flood.ts), so the
// probe's round trips here measure the server, not the flooder.
import t from 'tap'
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RATE_LIMIT_STRIKES_BEFORE_CLOSE } from '../../lib/limits.js'
import { NodeProcess } from '../helpers/node-process.js'
import { sleep } from '../helpers/wait.js'
import { TestClient } from '../helpers/ws-client.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** Round trips measured per phase, one every PROBE_INTERVAL_MS (under the frame rate of 50/s). */
const PROBES = 150
const PROBE_INTERVAL_MS = 25
/** Covers the head start and the loaded probe phase. */
const FLOOD_SECONDS = 7
/** Flooding connections open at once (a tenth of MAX_CONNECTIONS_PER_IP). */
const FLOOD_PARALLEL = 10

interface FloodSummary { connections: number, framesSent: number, rateLimited: number, closes: Record<string, number> }

function flood (wsUrl: string, kind: 'invalid' | 'churn'): { done: Promise<FloodSummary>, started: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/tools/frame-flood.ts', `--url=${wsUrl}`, `--kind=${kind}`, `--seconds=${FLOOD_SECONDS}`, `--parallel=${FLOOD_PARALLEL}`], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const done = new Promise<FloodSummary>((resolve, reject) => child.once('exit', (code) => {
    if (code === 0) resolve(JSON.parse(output) as FloodSummary)
    else reject(new Error(`frame-flood exited with ${code}: ${output}`))
  }))
  // tsx takes a moment to start: give the flood a head start before measuring.
  return { done, started: sleep(1500) }
}

/** Round trips of `send` → `ack` of the probe, in ms, sorted. */
async function probe (client: TestClient): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < PROBES; i++) {
    const started = performance.now()
    await client.sendAndAck('probe', `p${i}`)
    times.push(performance.now() - started)
    await sleep(PROBE_INTERVAL_MS)
  }
  return times.sort((a, b) => a - b)
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number

for (const kind of ['churn', 'invalid'] as const) {
  t.test(`a ${kind} flood gets rate_limited, then 1008, and the probe's latency holds`, async (t) => {
    const server = await NodeProcess.start(t, { RATE_LIMIT_PER_SEC: '100', RATE_LIMIT_BURST: '100' })
    const client = await TestClient.open(t, server.wsUrl, 'probe')
    await client.join('probe')
    const quiet = await probe(client)
    const running = flood(server.wsUrl, kind)
    await running.started
    const loaded = await probe(client)
    const summary = await running.done
    const line = (times: number[]) => ['p50', 'p90', 'p99'].map((name) => `${name} ${quantile(times, Number(name.slice(1)) / 100).toFixed(2)} ms`).join(', ')
    t.comment(`${kind} flood: ${JSON.stringify(summary)}`)
    t.comment(`probe round trip without the flood: ${line(quiet)}; during it: ${line(loaded)}`)

    t.ok(summary.rateLimited > 0, 'the flooder got rate_limited')
    t.ok(summary.connections > FLOOD_PARALLEL, 'its connections were closed, so it had to open new ones')
    t.equal(summary.closes['1008'], summary.connections, 'every flooding connection was closed with 1008')
    // Refusals stop at the strike count, give or take a token refilled while the burst is read.
    t.ok(summary.rateLimited <= summary.connections * 2 * RATE_LIMIT_STRIKES_BEFORE_CLOSE, 'the server stopped answering each flooder after about RATE_LIMIT_STRIKES_BEFORE_CLOSE refusals')
    // Generous bounds for a machine shared with other work: the median may at
    // most triple (or stay within 10 ms); the tail, which other processes on
    // the same cores move, only has to stay clear of a stalled node.
    t.ok(quantile(loaded, 0.5) <= Math.max(3 * quantile(quiet, 0.5), 10), `median round trip: ${line(loaded)} against ${line(quiet)}`)
    t.ok(quantile(loaded, 0.9) <= Math.max(5 * quantile(quiet, 0.9), 150), 'p90 round trip within bounds')
    t.equal(client.closeCode, undefined, 'the probe is still connected')
  })
}
