// Heartbeat (PROTOCOL §1): the server pings every PING_INTERVAL_MS and cuts
// off a peer that has not answered by the next tick; a peer that answers stays.
import t from 'tap'
import WebSocket from 'ws'
import { metric } from '../helpers/http.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { startServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'

// The server and the clients share this process's event loop: a stall of a
// whole interval between a ping and the reading of its pong (a loaded CI
// machine) would cut off the healthy peer too, so the interval is not tiny.
const PING_INTERVAL_MS = 500

/** Opens a client whose pings are counted from the first byte (a ping can arrive with the upgrade response). */
async function connectCountingPings (url: string, options: WebSocket.ClientOptions = {}): Promise<{ client: TestClient, pings: () => number }> {
  const socket = new WebSocket(url, options)
  let pings = 0
  socket.on('ping', () => { pings++ })
  const client = new TestClient(socket)
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  return { client, pings: () => pings }
}

t.test('a peer that does not answer pings is terminated; one that answers stays', async (t) => {
  const server = await startServer(t, { PING_INTERVAL_MS: String(PING_INTERVAL_MS) })
  const openedAt = Date.now()
  const { client: silent, pings: pingsToSilent } = await connectCountingPings(`${server.wsUrl}?name=silent`, { autoPong: false })
  const { client: healthy, pings: pingsToHealthy } = await connectCountingPings(`${server.wsUrl}?name=healthy`)
  t.teardown(() => { silent.socket.terminate(); healthy.close() })
  await silent.join('lobby')
  await healthy.join('lobby')

  // Terminated, not closed: no close frame, so the client sees 1006.
  const closed = await silent.waitClosed(PING_INTERVAL_MS * 10)
  t.equal(closed.code, 1006, 'the silent peer was cut off without a close frame')
  t.ok(pingsToSilent() >= 1, `the silent peer was pinged first (${pingsToSilent()} ping(s))`)
  t.ok(Date.now() - openedAt >= PING_INTERVAL_MS - 5, 'not before a whole interval after it connected')

  // The same span again, and more: the answering peer is still there.
  await sleep(PING_INTERVAL_MS * 5)
  t.ok(pingsToHealthy() >= 3, `the healthy peer was pinged repeatedly (${pingsToHealthy()} pings)`)
  t.equal(healthy.closeCode, undefined, 'the healthy peer is still connected')
  const id = await healthy.sendAndAck('lobby', 'still here')
  t.type(id, 'string', 'and can still send')

  // The server forgot the silent peer: metrics and presence.
  await waitFor(async () => (await metric(server.url, 'chat_connections')) === 1, 'chat_connections = 1')
  t.equal(await metric(server.url, 'chat_heartbeat_terminations_total'), 1, 'one heartbeat termination counted')
  await healthy.next((f) => f.type === 'presence' && (f.left as string[]).includes('silent'), 'presence: silent left')
  const again = await healthy.join('lobby')
  t.same(again.members, ['healthy'], 'the silent peer is no longer a member')
})

t.test('a silent peer is terminated whatever it sends', async (t) => {
  // Traffic is not a pong: only answering the ping keeps a connection.
  const server = await startServer(t, { PING_INTERVAL_MS: String(PING_INTERVAL_MS), RATE_LIMIT_PER_SEC: '1000', RATE_LIMIT_BURST: '1000', FRAME_RATE_PER_SEC: '1000', FRAME_BURST: '1000' })
  const chatty = await TestClient.connect(`${server.wsUrl}?name=chatty`, { autoPong: false })
  t.teardown(() => chatty.socket.terminate())
  await chatty.join('lobby')
  const timer = setInterval(() => {
    if (chatty.socket.readyState === chatty.socket.OPEN) chatty.send({ type: 'send', room: 'lobby', text: 'busy' })
  }, PING_INTERVAL_MS / 4)
  t.teardown(() => clearInterval(timer))
  const closed = await chatty.waitClosed(PING_INTERVAL_MS * 10)
  clearInterval(timer)
  t.equal(closed.code, 1006)
  t.ok(chatty.messages('lobby').length > 0, 'it was sending until it was cut off')
  t.equal(await metric(server.url, 'chat_heartbeat_terminations_total'), 1)
})
