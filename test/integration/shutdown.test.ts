// Graceful shutdown of the real process (PROTOCOL §5): on SIGTERM/SIGINT
// readiness turns 503, upgrades are refused, every connection gets 1001 in
// batches spread over time, and the process exits 0 within the grace period.
import t from 'tap'
import { sleep } from '../helpers/wait.js'
import { NodeProcess } from '../helpers/node-process.js'
import { TestClient } from '../helpers/ws-client.js'

const SHUTDOWN_GRACE_MS = 2000
/**
 * Slack for a loaded machine (process teardown alone can take seconds when
 * CPUs are oversubscribed); it equals the server's own safety net, which
 * exits 1 at grace + 5 s, so a 0 within it is the server's clean exit.
 */
const EXIT_MARGIN_MS = 5000
const CLIENTS = 10
/**
 * Without tap's coverage hooks (inherited through NODE_OPTIONS): writing
 * coverage at exit takes seconds on a loaded machine and is not the server's
 * own shutdown time.
 */
const ENV = { SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS), NODE_OPTIONS: '' }

/** Rejects after `ms`; for racing against a promise that must settle in time. */
function deadline (ms: number, what: string): Promise<never> {
  return new Promise((_resolve, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms).unref())
}

t.test('SIGTERM: readiness 503, upgrades refused, 1001 to every client in spread batches, exit 0', async (t) => {
  const server = await NodeProcess.start(t, { ...ENV, NODE_ID: 'child' })
  const ready = await fetch(`${server.url}/health/ready`)
  t.equal(ready.status, 200, 'ready before the signal')

  const clients: TestClient[] = []
  const closedAt: number[] = []
  for (let i = 0; i < CLIENTS; i++) {
    const client = await TestClient.connect(`${server.wsUrl}?name=c${i}`)
    t.teardown(() => client.socket.terminate())
    client.closed.then(() => { closedAt.push(Date.now()) }, () => {})
    clients.push(client)
    await client.join('room')
  }
  const id = await clients[0]?.sendAndAck('room', 'before shutdown')
  t.type(id, 'string', 'the server is serving')

  // Readiness is watched from the signal on, as a load balancer would.
  const readiness: Array<{ at: number, status: number, check?: unknown }> = []
  const watch = { on: true }
  const watcher = (async () => {
    while (watch.on) {
      try {
        const response = await fetch(`${server.url}/health/ready`)
        const body = await response.json() as { check?: unknown }
        readiness.push({ at: Date.now(), status: response.status, check: body.check })
      } catch {
        return // the listener is gone: the process is exiting
      }
      await sleep(25)
    }
  })()

  const signalledAt = Date.now()
  server.kill('SIGTERM')

  // Draining: readiness 503 naming the shutdown, upgrades refused with 503.
  const first503 = await (async () => {
    for (let i = 0; i < 100; i++) {
      const found = readiness.find((r) => r.status === 503)
      if (found) return found
      await sleep(20)
    }
    throw new Error(`readiness did not turn 503: ${JSON.stringify(readiness)}`)
  })()
  t.equal(first503.check, 'shutdown', 'the 503 names the shutdown check')
  const refused = await TestClient.connect(`${server.wsUrl}?name=late`).then(
    (client) => { client.socket.terminate(); return 101 },
    (error: { statusCode?: number }) => error.statusCode)
  t.equal(refused, 503, 'a new upgrade during the drain is refused with 503')
  const live = await fetch(`${server.url}/health/live`)
  t.equal(live.status, 200, 'liveness still answers 200 during the drain')

  // Every client gets a real 1001 close frame.
  const results = await Promise.race([
    Promise.all(clients.map((client) => client.closed)),
    deadline(SHUTDOWN_GRACE_MS + EXIT_MARGIN_MS, 'every client closed')
  ])
  t.same(results.map((r) => r.code), Array(CLIENTS).fill(1001), 'every client got 1001')
  t.ok(results.every((r) => /shutting down/.test(r.reason)), 'with a reason')

  const firstClose = Math.min(...closedAt)
  const lastClose = Math.max(...closedAt)
  t.comment(`closes from +${firstClose - signalledAt} ms to +${lastClose - signalledAt} ms after SIGTERM`)
  t.ok(lastClose - firstClose >= 100, `closes are spread over time, not one instant (${lastClose - firstClose} ms apart)`)
  const buckets = new Set(closedAt.map((at) => Math.floor((at - firstClose) / 50)))
  t.ok(buckets.size >= 3, `in several batches (${buckets.size} distinct 50 ms slots)`)

  // The process leaves by itself, with 0, within the grace period (plus
  // slack). Waiting past the server's own safety net (exit 1 at grace + 5 s)
  // tells a slow exit from a hung one.
  const exit = await Promise.race([server.exited, deadline(SHUTDOWN_GRACE_MS + 10_000, 'process exit')])
  const exitedAfter = Date.now() - signalledAt
  watch.on = false
  await watcher
  t.same(exit, { code: 0, signal: null }, `exit code 0 (output: ${server.output.slice(-500)})`)
  t.ok(exitedAfter <= SHUTDOWN_GRACE_MS + EXIT_MARGIN_MS, `exited ${exitedAfter} ms after SIGTERM, within the grace period plus ${EXIT_MARGIN_MS} ms`)

  // Once readiness turned 503 it stayed so (a probe racing the signal itself
  // may still see 200), and it kept answering while connections were closed.
  const turned = readiness.indexOf(first503)
  t.same(readiness.slice(turned).filter((r) => r.status !== 503), [], 'readiness answered only 503 from then on')
  t.ok(readiness.some((r) => r.at > firstClose && r.at < lastClose), 'the listener answered between the first and the last close')
})

t.test('SIGINT drains the same way', async (t) => {
  const server = await NodeProcess.start(t, ENV)
  const client = await TestClient.connect(`${server.wsUrl}?name=solo`)
  t.teardown(() => client.socket.terminate())
  await client.join('room')
  server.kill('SIGINT')
  const closed = await client.waitClosed(SHUTDOWN_GRACE_MS + EXIT_MARGIN_MS)
  t.equal(closed.code, 1001)
  const exit = await Promise.race([server.exited, deadline(SHUTDOWN_GRACE_MS + 10_000, 'process exit')])
  t.same(exit, { code: 0, signal: null }, `exit code 0 (output: ${server.output.slice(-500)})`)
})
