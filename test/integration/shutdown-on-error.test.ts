// An unexpected error in the real process (PROTOCOL §5): an uncaught
// exception or an unhandled rejection is logged, every connection is still
// closed with 1001, and the process exits 1 within the grace period. The
// fault comes from a preloaded test script (test/fixtures), not from the server.
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { NodeProcess } from '../helpers/node-process.js'
import { TestClient } from '../helpers/ws-client.js'

const SHUTDOWN_GRACE_MS = 2000
/** Slack for a loaded machine; equal to the server's safety net (grace + 5 s), as in shutdown.test.ts. */
const EXIT_MARGIN_MS = 5000
const CLIENTS = 4
const FAULT_SCRIPT = fileURLToPath(new URL('../fixtures/fault-on-sigwinch.js', import.meta.url))

function deadline (ms: number, what: string): Promise<never> {
  return new Promise((_resolve, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms).unref())
}

for (const [fault, logged] of [['exception', 'injected uncaught exception'], ['rejection', 'injected unhandled rejection']] as const) {
  t.test(`an unhandled ${fault}: logged, 1001 to every client, exit 1`, async (t) => {
    const server = await NodeProcess.start(t, {
      SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
      // Replaces the helper's empty NODE_OPTIONS (no tap coverage hooks in the child).
      NODE_OPTIONS: `--import=${FAULT_SCRIPT}`,
      CHAT_TEST_FAULT: fault
    })
    const clients: TestClient[] = []
    for (let i = 0; i < CLIENTS; i++) {
      const client = await TestClient.connect(`${server.wsUrl}?name=c${i}`)
      t.teardown(() => client.socket.terminate())
      await client.join('room')
      clients.push(client)
    }
    t.type(await clients[0]?.sendAndAck('room', 'before the fault'), 'string', 'the server is serving')

    const faultAt = Date.now()
    server.kill('SIGWINCH')

    const results = await Promise.race([
      Promise.all(clients.map((client) => client.closed)),
      deadline(SHUTDOWN_GRACE_MS + EXIT_MARGIN_MS, 'every client closed')
    ])
    t.same(results.map((r) => r.code), Array(CLIENTS).fill(1001), 'every client got 1001, not a dropped socket')
    t.ok(results.every((r) => /shutting down/.test(r.reason)), 'with the shutdown reason')

    const exit = await Promise.race([server.exited, deadline(SHUTDOWN_GRACE_MS + 10_000, 'process exit')])
    const exitedAfter = Date.now() - faultAt
    t.same(exit, { code: 1, signal: null }, `exit code 1 (output: ${server.output.slice(-800)})`)
    t.ok(exitedAfter <= SHUTDOWN_GRACE_MS + EXIT_MARGIN_MS, `exited ${exitedAfter} ms after the fault, within the grace period plus ${EXIT_MARGIN_MS} ms`)
    t.match(server.output, 'unexpected error', 'the error is logged as unexpected')
    t.match(server.output, logged, 'with its message')
    t.notMatch(server.output, 'took too long', 'the drain finished; the safety net did not fire')
  })
}
