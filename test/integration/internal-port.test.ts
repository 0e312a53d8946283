// INTERNAL_PORT (PROTOCOL §4, issue 10 finding 9): /metrics leaves the public
// port for an internal listener, as Centrifugo's internal port does; health
// stays public; a shutdown closes both listeners.
import t from 'tap'
import { freePort } from '../helpers/free-port.js'
import { NodeProcess } from '../helpers/node-process.js'
import { buildTestApp } from '../helpers/inject.js'
import { TestClient } from '../helpers/ws-client.js'

/** The status of GET `url`, or 'refused' when nothing listens there. */
async function statusOf (url: string): Promise<number | 'refused'> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) })
    await response.arrayBuffer()
    return response.status
  } catch {
    return 'refused'
  }
}

t.test('with INTERNAL_PORT, /metrics answers there only; health stays public; SIGTERM closes both', async (t) => {
  const internalPort = await freePort()
  const internalUrl = `http://127.0.0.1:${internalPort}`
  const server = await NodeProcess.start(t, { INTERNAL_PORT: String(internalPort), NODE_OPTIONS: '', SHUTDOWN_GRACE_MS: '500' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')

  const publicMetrics = await fetch(`${server.url}/metrics`)
  t.equal(publicMetrics.status, 404, 'the public port answers 404 for /metrics')
  t.notMatch(await publicMetrics.text(), /chat_connections/, 'and shows no metric')
  const internal = await fetch(`${internalUrl}/metrics`)
  t.equal(internal.status, 200, 'the internal port serves /metrics')
  t.match(await internal.text(), /^chat_connections\{node="[^"]+"\} 1$/m, 'the node\'s own metrics, counting the open connection')
  t.equal(await statusOf(`${server.url}/health/live`), 200, 'liveness on the public port')
  t.equal(await statusOf(`${server.url}/health/ready`), 200, 'readiness on the public port')
  t.equal(await statusOf(`${internalUrl}/health/live`), 404, 'the internal port serves nothing else')
  t.equal(await statusOf(`${internalUrl}/`), 404, 'not the page either')

  server.kill('SIGTERM')
  t.equal((await client.waitClosed()).code, 1001, 'the drain runs as usual')
  t.same(await server.exited, { code: 0, signal: null }, 'exit 0')
  t.equal(await statusOf(`${internalUrl}/metrics`), 'refused', 'the internal listener is closed')
  t.equal(await statusOf(`${server.url}/health/live`), 'refused', 'the public one too')
})

t.test('without INTERNAL_PORT, /metrics stays on the public port', async (t) => {
  const app = await buildTestApp(t)
  t.equal((await app.inject('/metrics')).statusCode, 200)
  const internalOnly = await buildTestApp(t, { INTERNAL_PORT: '9999' })
  t.equal((await internalOnly.inject('/metrics')).statusCode, 404, 'with it, the public app has no /metrics route')
  t.equal((await internalOnly.inject('/health/live')).statusCode, 200)
})
