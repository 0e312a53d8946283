// The Redis store under stress, through real nodes and a real redis-server:
// replies delayed past the command timeout (a TCP proxy between a node and
// Redis holds them back) must be reported as an unknown outcome, and an
// idempotent retry must never post twice (issue 10, finding 6); a full Redis
// (maxmemory + noeviction) refuses messages as `unavailable` (finding 5).
// Rerun alone: npx tap test/integration/redis-store.test.ts
import t, { type Test } from 'tap'
import { REDIS_COMMAND_TIMEOUT_MS } from '../../lib/limits.js'
import { startNode } from '../helpers/cluster.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TEST_TOKEN } from '../helpers/server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { TestClient } from '../helpers/ws-client.js'
import { sleep } from '../helpers/wait.js'

/** Replies come this much later than the command timeout. */
const REPLY_DELAY_MS = REDIS_COMMAND_TIMEOUT_MS + 500

function post (baseUrl: string, room: string, text: string, key?: string): Promise<Response> {
  return fetch(`${baseUrl}/rooms/${room}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: JSON.stringify({ text })
  })
}

/** Node `a` talks to Redis through a proxy that can delay its command replies; node `b` directly. */
async function delayedCluster (t: Test) {
  const redis = await RedisServer.start(t)
  const proxy = await TcpProxy.start(t, redis.port)
  // READY_PROBE_MS at its default: the probe does not go stale during one delayed reply.
  const a = await startNode(t, { url: `redis://127.0.0.1:${proxy.port}` }, 'a', { READY_PROBE_MS: '2000' })
  const b = await startNode(t, redis, 'b')
  return { redis, proxy, a, b }
}

t.test('replies delayed past the command timeout: the broadcast is 503 outcome unknown, and the retry with its key posts nothing new', async (t) => {
  const { proxy, a, b } = await delayedCluster(t)
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  await bob.join('slow')
  // The script is loaded on the first call: do that before the delay.
  t.equal((await post(a.url, 'slow', 'warm-up')).status, 202)
  await bob.until((frames) => frames.some((f) => f.type === 'message' && f.text === 'warm-up'), 'the warm-up message')

  // From the publish on: whatever node a asks before it (a design that first claims the key) answers in time.
  t.equal(proxy.delayReplies('chat:a:command', REPLY_DELAY_MS, 'maybe published'), 1, 'delaying node a\'s command connection')
  const started = Date.now()
  const first = await post(a.url, 'slow', 'maybe published', 'deploy-7')
  const firstBody = await first.json() as Record<string, unknown>
  t.equal(first.status, 503)
  t.match(firstBody, { error: 'Service Unavailable', outcome: 'unknown', message: /may or may not have been published/ })
  t.ok(Date.now() - started >= REDIS_COMMAND_TIMEOUT_MS - 100, 'answered once the command timed out')
  // It was published: Redis ran the script, only its answer is late.
  const delivered = await bob.next((f) => f.type === 'message' && f.text === 'maybe published', 'the message on node b')

  proxy.delayReplies('chat:a:command', 0)
  await sleep(REPLY_DELAY_MS) // the late replies drain
  const retry = await post(a.url, 'slow', 'maybe published', 'deploy-7')
  t.equal(retry.status, 202, 'the retry succeeds')
  t.same(await retry.json(), { id: delivered.id, room: 'slow', ts: delivered.ts }, 'with the original message\'s 202 body')
  const elsewhere = await post(b.url, 'slow', 'any body at all', 'deploy-7')
  t.same(await elsewhere.json(), { id: delivered.id, room: 'slow', ts: delivered.ts }, 'on any node')

  await bob.barrier()
  await sleep(200)
  t.same(bob.messages('slow').map((f) => f.text), ['warm-up', 'maybe published'], 'members got the message once, and nothing more')
  const history = await fetch(`${b.url}/rooms/slow/messages`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
  t.same(((await history.json()) as { messages: Array<{ text: string }> }).messages.map((m) => m.text), ['warm-up', 'maybe published'], 'stored once')
})

t.test('replies delayed past the command timeout: a WebSocket send gets `timeout`, not `unavailable`, and stays connected', async (t) => {
  const { proxy, a, b } = await delayedCluster(t)
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  await alice.join('slow')
  await bob.join('slow')
  await alice.sendAndAck('slow', 'warm-up')

  proxy.delayReplies('chat:a:command', REPLY_DELAY_MS)
  alice.send({ type: 'send', room: 'slow', text: 'late', ref: 'late' })
  const answer = await alice.next((f) => f.ref === 'late', 'the answer to the send', 0, REPLY_DELAY_MS + 2000)
  t.match(answer, { type: 'error', code: 'timeout', message: /may or may not have been published/ })
  await bob.next((f) => f.type === 'message' && f.text === 'late', 'it was published after all')
  proxy.delayReplies('chat:a:command', 0)
  await sleep(REPLY_DELAY_MS)
  t.equal(alice.closeCode, undefined, 'the client stays connected')
  t.ok(await alice.sendAndAck('slow', 'after'), 'and sends again once Redis answers in time')
})

t.test('a full Redis (maxmemory, noeviction): sends get `unavailable`, the client stays, the broadcast 503s without outcome', async (t) => {
  const redis = await RedisServer.start(t, ['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction'])
  // Frame limits out of the way: this test fills Redis, it does not flood.
  const a = await startNode(t, redis, 'a', { FRAME_RATE_PER_SEC: '100000', FRAME_BURST: '100000' })
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const rooms = Array.from({ length: 10 }, (_, i) => `fill-${i}`)
  for (const room of rooms) await alice.join(room)
  // 12 KB each; ten rooms of HISTORY_MAX_BYTES hold far more than 3 MB, so Redis fills first.
  const text = '€'.repeat(4096)
  let refused: Record<string, unknown> | undefined
  // A 3 MB Redis holds well under 500 of these: bounded.
  for (let i = 0; i < 500 && refused === undefined; i += 10) {
    for (let j = i; j < i + 10; j++) alice.send({ type: 'send', room: rooms[j % 10], text, ref: `f${j}` })
    await alice.until((frames) => frames.some((f) => f.ref === `f${i + 9}`), `the answer to f${i + 9}`)
    refused = alice.errors()[0]
  }
  t.ok(refused, 'Redis filled up and refused')
  t.match(refused, { type: 'error', code: 'unavailable', message: /Redis is full/ })
  // Memory hovers at the limit: a broadcast may still fit; keep posting until one does not (bounded).
  let response = await post(a.url, 'fill-0', text)
  for (let i = 0; i < 200 && response.status === 202; i++) response = await post(a.url, `fill-${i % 10}`, text)
  t.equal(response.status, 503)
  const body = await response.json() as Record<string, unknown>
  t.match(body, { error: 'Service Unavailable', message: /nothing was published/ })
  t.notOk('outcome' in body, 'no outcome: nothing was published')
  t.equal(alice.closeCode, undefined, 'the client stays connected')
  await alice.barrier()
})
