// Slow consumers (PROTOCOL §3, §5): a member that stops reading is closed
// with a real 1013 frame once its backlog passes SEND_QUEUE_MAX_BYTES, the
// server stops buffering for it, and the rest of the room is not held back.
// A member that stops reading during a history replay is cut off too.
import t, { type Test } from 'tap'
import { REPLAY_DRAIN_TIMEOUT_MS, SLOW_CONSUMER_CLOSE_TIMEOUT_MS } from '../../lib/limits.js'
import { broadcast, metric } from '../helpers/http.js'
import { waitFor } from '../helpers/wait.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'

const SEND_QUEUE_MAX_BYTES = 65536
/** Large messages, so the loopback socket buffers fill after a few dozen of them. */
const TEXT_LENGTH = 60000
/** Upper bound on the flood before the server gives up on the slow member (~60 MB). */
const FLOOD_MAX = 1000
/** How often the flood looks whether the server has closed the slow member yet. */
const CHECK_EVERY = 5

async function setUp (t: Test): Promise<{ server: RunningServer, slow: TestClient, fast: TestClient }> {
  const server = await startServer(t, {
    SEND_QUEUE_MAX_BYTES: String(SEND_QUEUE_MAX_BYTES),
    MAX_TEXT_LENGTH: String(TEXT_LENGTH)
  })
  const slow = await TestClient.connect(`${server.wsUrl}?name=slow`)
  const fast = await TestClient.connect(`${server.wsUrl}?name=fast`)
  t.teardown(() => { slow.socket.terminate(); fast.close() })
  await slow.join('flood')
  await fast.join('flood')
  return { server, slow, fast }
}

function bigText (i: number): string {
  const prefix = `${i}:`
  return prefix + 'x'.repeat(TEXT_LENGTH - prefix.length)
}

/**
 * Broadcasts large messages until the server has closed the slow member
 * (then calls `onClose`), and goes on until three times as many were sent.
 */
async function flood (server: RunningServer, onClose: () => void = () => {}): Promise<{ ids: string[], sentBeforeClose: number | undefined }> {
  const ids: string[] = []
  let sentBeforeClose: number | undefined
  while (ids.length < FLOOD_MAX) {
    ids.push((await broadcast(server.url, 'flood', bigText(ids.length))).id)
    if (sentBeforeClose === undefined) {
      if (ids.length % CHECK_EVERY === 0 && (await metric(server.url, 'chat_slow_consumer_closes_total')) === 1) {
        sentBeforeClose = ids.length
        onClose()
      }
    } else if (ids.length >= 3 * sentBeforeClose) {
      break
    }
  }
  return { ids, sentBeforeClose }
}

t.test('a member that stops reading gets 1013; the server stops buffering; others get everything', async (t) => {
  const { server, slow, fast } = await setUp(t)
  slow.socket.pause()

  // It reads again as soon as the server has given up on it (before the
  // server's cut-off timer), while the flood goes on: nothing published
  // after the close may reach it.
  const startedAt = Date.now()
  const { ids, sentBeforeClose } = await flood(server, () => slow.socket.resume())
  t.comment(`flood of ${ids.length} messages took ${Date.now() - startedAt} ms; the close came within the first ${sentBeforeClose}`)
  t.ok(sentBeforeClose !== undefined, 'the server closed the slow member during the flood')
  t.equal(await metric(server.url, 'chat_slow_consumer_closes_total'), 1, 'exactly one slow-consumer close counted')

  // Reading again, the slow member found what was queued, then a real 1013 frame.
  const closed = await slow.waitClosed(SLOW_CONSUMER_CLOSE_TIMEOUT_MS)
  t.equal(closed.code, 1013, 'the slow member got a 1013 close frame')
  t.match(closed.reason, /slow consumer/)
  const got = slow.messages('flood')
  t.ok(got.length <= (sentBeforeClose ?? 0), `nothing published after the close reached it: got ${got.length}, close within the first ${sentBeforeClose}`)
  t.ok(got.length < ids.length / 2, `far fewer than were sent: ${got.length} of ${ids.length}`)
  t.same(got.map((f) => f.id), ids.slice(0, got.length), 'what it got is a prefix of the room, in order, without gaps')

  // The fast member of the same room was not held back and missed nothing.
  await fast.until((frames) => frames.filter((f) => f.type === 'message').length >= ids.length, 'every message at the fast member', 20_000)
  t.same(fast.messages('flood').map((f) => f.id), ids, 'the fast member got every message, in order')
  t.equal(fast.closeCode, undefined, 'the fast member is still connected')

  await waitFor(async () => (await metric(server.url, 'chat_connections')) === 1, 'chat_connections = 1')
  t.pass('the server dropped the slow connection')
  const again = await fast.join('flood')
  t.same(again.members, ['fast'], 'and removed it from the room')
})

t.test('a slow member that never reads again is cut off after a timeout', async (t) => {
  const { server, slow, fast } = await setUp(t)
  slow.socket.pause()
  const { ids, sentBeforeClose } = await flood(server)
  t.ok(sentBeforeClose !== undefined, 'the server closed the slow member during the flood')
  // Its close frame sits behind a backlog it never reads: the server must not wait forever.
  await waitFor(async () => (await metric(server.url, 'chat_connections')) === 1, 'chat_connections = 1',
    SLOW_CONSUMER_CLOSE_TIMEOUT_MS + 5000, 100)
  t.pass('the server dropped the connection that never read')
  await fast.until((frames) => frames.filter((f) => f.type === 'message').length >= ids.length, 'every message at the fast member', 20_000)
  t.same(fast.messages('flood').map((f) => f.id), ids, 'the fast member got every message, in order')
  const again = await fast.join('flood')
  t.same(again.members, ['fast'], 'and removed it from the room')
})

t.test('a member that stops reading during a history replay is cut off after REPLAY_DRAIN_TIMEOUT_MS', async (t) => {
  const HISTORY = 200
  const server = await startServer(t, {
    SEND_QUEUE_MAX_BYTES: String(SEND_QUEUE_MAX_BYTES),
    MAX_TEXT_LENGTH: String(TEXT_LENGTH),
    HISTORY_SIZE: String(HISTORY),
    HISTORY_MAX_BYTES: String(64 * 1024 * 1024)
  })
  // 12 MB of history: more than the loopback socket buffers hold, so the replay must wait.
  const ids: string[] = []
  for (let i = 0; i < HISTORY; i++) ids.push((await broadcast(server.url, 'big', bigText(i))).id)
  const slow = await TestClient.connect(`${server.wsUrl}?name=slow`)
  t.teardown(() => slow.socket.terminate())
  slow.send({ type: 'join', room: 'big', since: ids[0] })
  slow.socket.pause()
  const startedAt = Date.now()
  await waitFor(async () => (await metric(server.url, 'chat_slow_consumer_closes_total')) === 1, 'the replay to give up',
    REPLAY_DRAIN_TIMEOUT_MS + 5000, 100)
  const gaveUpAfter = Date.now() - startedAt
  t.ok(gaveUpAfter >= REPLAY_DRAIN_TIMEOUT_MS - 1000, `not before the timeout: ${gaveUpAfter} ms`)
  await waitFor(async () => (await metric(server.url, 'chat_connections')) === 0, 'chat_connections = 0',
    SLOW_CONSUMER_CLOSE_TIMEOUT_MS + 5000, 100)
  t.pass('the connection that stopped reading its replay is gone')
  const fresh = await TestClient.open(t, server.wsUrl, 'fresh')
  const joined = await fresh.join('big')
  t.same(joined.members, ['fresh'], 'and no longer in the room')
})
