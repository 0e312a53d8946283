// Connection caps and HTTP timeouts (PROTOCOL §1, issue 10 finding 4), as an
// attacker would try them, bounded: one client opening more connections than
// MAX_CONNECTIONS_PER_IP (429) or than the node takes (503), a forged
// X-Forwarded-For, upgrades abandoned mid-way, and bodies dripped byte by byte.
// Clients get distinct addresses by binding 127.0.0.x (all loopback on Linux).
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { CONNECTIONS_CHECK_INTERVAL_MS, HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../../lib/limits.js'
import { metric } from '../helpers/http.js'
import { startServer, TEST_TOKEN } from '../helpers/server.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { TestClient } from '../helpers/ws-client.js'
import { rawUpgrade } from '../helpers/ws-upgrade.js'

/** Opens a WebSocket from `localAddress` (with extra headers); its status: 101, or the refusal's. */
async function open (t: Test, wsUrl: string, localAddress: string, headers: Record<string, string> = {}): Promise<{ status: number, client?: TestClient }> {
  try {
    const client = await TestClient.connect(wsUrl, { localAddress, headers })
    t.teardown(() => client.socket.terminate())
    await client.next((frame) => frame.type === 'welcome', 'welcome')
    return { status: 101, client }
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode
    if (status === undefined) throw error
    return { status }
  }
}

t.test('one address beyond MAX_CONNECTIONS_PER_IP gets 429, beyond MAX_CONNECTIONS 503; others still connect; health answers', async (t) => {
  const server = await startServer(t, { MAX_CONNECTIONS_PER_IP: '3', MAX_CONNECTIONS: '5' })
  const mine: TestClient[] = []
  for (let i = 0; i < 3; i++) {
    const { status, client } = await open(t, server.wsUrl, '127.0.0.1')
    t.equal(status, 101, `connection ${i + 1} of 127.0.0.1`)
    if (client) mine.push(client)
  }
  t.equal((await fetch(`${server.url}/health/live`)).status, 200, '/health/live answers')
  for (let i = 0; i < 5; i++) t.equal((await open(t, server.wsUrl, '127.0.0.1')).status, 429, `127.0.0.1 again (${i + 1}): 429`)
  t.equal((await open(t, server.wsUrl, '127.0.0.2')).status, 101, 'another address still connects')
  t.equal((await open(t, server.wsUrl, '127.0.0.2')).status, 101, 'twice')
  t.equal((await open(t, server.wsUrl, '127.0.0.3')).status, 503, 'the node is full (5): 503 for anyone')
  t.equal((await open(t, server.wsUrl, '127.0.0.1')).status, 503, 'node full comes before the address cap')
  t.equal((await fetch(`${server.url}/health/live`)).status, 200, '/health/live still answers')
  t.equal(await metric(server.url, 'chat_connections_refused_total', { reason: 'address_full' }), 5)
  t.equal(await metric(server.url, 'chat_connections_refused_total', { reason: 'node_full' }), 2)

  // A connection counts until its socket closes, then its place is free again.
  mine[0]?.socket.terminate()
  await waitFor(async () => (await metric(server.url, 'chat_connections')) === 4, 'the closed connection to be gone')
  t.equal((await open(t, server.wsUrl, '127.0.0.1')).status, 101, 'a freed place is taken again')
})

t.test('the refusals say why in JSON', async (t) => {
  const server = await startServer(t, { MAX_CONNECTIONS_PER_IP: '1', MAX_CONNECTIONS: '2' })
  await open(t, server.wsUrl, '127.0.0.1')
  const perAddress = await rawUpgrade(server.wsUrl, { localAddress: '127.0.0.1' })
  t.equal(perAddress.status, 429)
  t.match(perAddress.body, { error: 'Too Many Requests', message: /MAX_CONNECTIONS_PER_IP/ })
  await open(t, server.wsUrl, '127.0.0.2')
  const full = await rawUpgrade(server.wsUrl, { localAddress: '127.0.0.3' })
  t.equal(full.status, 503)
  t.match(full.body, { error: 'Service Unavailable', message: /full/ })
})

t.test('upgrades abandoned before they complete leave no place taken', async (t) => {
  const server = await startServer(t, { MAX_CONNECTIONS_PER_IP: '3', MAX_CONNECTIONS: '3' })
  const port = Number(new URL(server.url).port)
  // Each sends a full upgrade request and hangs up at once, 30 times over.
  await Promise.all(Array.from({ length: 30 }, () => new Promise<void>((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' }, () => {
      socket.end(upgradeRequest(port))
      socket.destroy()
    })
    socket.on('close', () => resolve())
    socket.on('error', () => {})
  })))
  await sleep(200)
  for (let i = 0; i < 3; i++) {
    t.equal((await open(t, server.wsUrl, '127.0.0.1')).status, 101, `place ${i + 1} of 3 is free`)
  }
})

t.test('TRUST_PROXY: X-Forwarded-For from a trusted peer decides the address; from another peer it is ignored', async (t) => {
  const server = await startServer(t, { TRUST_PROXY: '127.0.0.1', MAX_CONNECTIONS_PER_IP: '2' })
  const xff = (value: string) => ({ 'x-forwarded-for': value })
  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('203.0.113.5'))).status, 101)
  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('203.0.113.5'))).status, 101)
  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('203.0.113.5'))).status, 429, 'the third from one client behind the proxy: 429')
  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('198.51.100.1, 203.0.113.5'))).status, 429,
    'an address the client prepends is not believed: the proxy appended the real one')
  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('203.0.113.6'))).status, 101, 'another client behind the same proxy connects')
  t.equal((await open(t, server.wsUrl, '127.0.0.1')).status, 101, 'the proxy itself (no header) is a client of its own')

  t.equal((await open(t, server.wsUrl, '127.0.0.2', xff('192.0.2.1'))).status, 101, 'an untrusted peer...')
  t.equal((await open(t, server.wsUrl, '127.0.0.2', xff('192.0.2.2'))).status, 101)
  t.equal((await open(t, server.wsUrl, '127.0.0.2', xff('192.0.2.3'))).status, 429, '...is counted by its own address, whatever it forwards')

  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('2001:db8::1'))).status, 101, 'IPv6 clients...')
  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('2001:db8::2'))).status, 101)
  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('2001:db8::ffff:3'))).status, 429, '...count per /64')
  t.equal((await open(t, server.wsUrl, '127.0.0.1', xff('2001:db8:0:1::1'))).status, 101, 'the next /64 is another client')

  const untrusting = await startServer(t, { MAX_CONNECTIONS_PER_IP: '1' })
  t.equal((await open(t, untrusting.wsUrl, '127.0.0.1', xff('192.0.2.1'))).status, 101)
  t.equal((await open(t, untrusting.wsUrl, '127.0.0.1', xff('192.0.2.2'))).status, 429, 'without TRUST_PROXY the header is ignored')
})

t.test('slow requests are cut off within the timeouts; an open WebSocket is not', async (t) => {
  const server = await startServer(t)
  const port = Number(new URL(server.url).port)
  const member = await TestClient.open(t, server.wsUrl, 'stays')
  const cutWithin = REQUEST_TIMEOUT_MS + CONNECTIONS_CHECK_INTERVAL_MS + 3000
  const started = Date.now()
  const head = (token: boolean) => 'POST /rooms/lobby/broadcast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    (token ? `Authorization: Bearer ${TEST_TOKEN}\r\n` : '') + 'Content-Length: 10000\r\n\r\n{"text":"'
  const [withToken, without, slowHeaders] = await Promise.all([
    drip(port, head(true), cutWithin),
    drip(port, head(false), cutWithin),
    drip(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\n', cutWithin)
  ])
  t.ok(withToken.closedAfterMs <= cutWithin, `a dripped body is cut off (after ${withToken.closedAfterMs} ms; REQUEST_TIMEOUT_MS ${REQUEST_TIMEOUT_MS})`)
  t.ok(without.closedAfterMs <= cutWithin, `a dripped body after a 401 too (after ${without.closedAfterMs} ms)`)
  t.match(without.received, /^HTTP\/1\.1 401/, 'the 401 was answered first')
  t.ok(slowHeaders.closedAfterMs <= HEADERS_TIMEOUT_MS + CONNECTIONS_CHECK_INTERVAL_MS + 3000, `dripped headers are cut off (after ${slowHeaders.closedAfterMs} ms; HEADERS_TIMEOUT_MS ${HEADERS_TIMEOUT_MS})`)
  t.ok(Date.now() - started > REQUEST_TIMEOUT_MS, 'the WebSocket has been open longer than REQUEST_TIMEOUT_MS')
  await member.barrier()
  t.equal(member.closeCode, undefined, 'and it is still open and answering')
})

/**
 * Sends `head`, then one byte every 500 ms, until the server closes the
 * socket or `limitMs` passes; resolves with when it closed and what came back.
 */
function drip (port: number, head: string, limitMs: number): Promise<{ closedAfterMs: number, received: string }> {
  return new Promise((resolve) => {
    const started = Date.now()
    let received = ''
    let timer: NodeJS.Timeout | undefined
    const socket: Socket = connect({ port, host: '127.0.0.1' }, () => {
      socket.write(head)
      timer = setInterval(() => socket.write('x'), 500)
    })
    const giveUp = setTimeout(() => socket.destroy(), limitMs + 1000)
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { received += chunk })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(timer)
      clearTimeout(giveUp)
      resolve({ closedAfterMs: Date.now() - started, received })
    })
  })
}

function upgradeRequest (port: number): string {
  return `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
}
