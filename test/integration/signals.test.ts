// Signals over real sockets: relayed once to the other members (on every node
// in cluster mode), never to the sender, never stored or replayed, limited by
// their own bucket; and in cluster mode they leave message order and gap
// repair alone, even while the subscriber connections are killed.
import t from 'tap'
import type { Test } from 'tap'
import { ids, startNode } from '../helpers/cluster.js'
import { RedisServer } from '../helpers/redis-server.js'
import { metric } from '../helpers/http.js'
import { type RunningServer, startServer, TEST_TOKEN } from '../helpers/server.js'
import { hsToken, TEST_JWT_SECRET } from '../helpers/tokens.js'
import { sleep } from '../helpers/wait.js'
import { type Frame, TestClient } from '../helpers/ws-client.js'

const signals = (client: TestClient, room: string): Frame[] => client.frames.filter((frame) => frame.type === 'signal' && frame.room === room)

/** GET /rooms/:id/messages, the back office's view of the stored history. */
async function history (baseUrl: string, room: string): Promise<{ messages: Array<Record<string, unknown>>, recovered: boolean }> {
  const response = await fetch(`${baseUrl}/rooms/${room}/messages?limit=1000`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
  if (response.status !== 200) throw new Error(`the history API answered ${response.status}`)
  return await response.json() as { messages: Array<Record<string, unknown>>, recovered: boolean }
}

/** A redis-server of the test's own and two ready nodes on it, with the signal bucket out of the way of load loops. */
async function startSignalCluster (t: Test): Promise<{ redis: RedisServer, a: RunningServer, b: RunningServer }> {
  const redis = await RedisServer.start(t)
  const env = { SIGNAL_RATE_PER_SEC: '1000', SIGNAL_BURST: '1000' }
  return { redis, a: await startNode(t, redis, 'a', env), b: await startNode(t, redis, 'b', env) }
}

t.test('single node: a signal reaches every other member once, a user\'s other connection too, never its sender, and is never stored', async (t) => {
  const server = await startServer(t, { AUTH_JWT_SECRET: TEST_JWT_SECRET })
  const token = await hsToken({ sub: 'alice', name: 'Alice' })
  const alice = await TestClient.open(t, `${server.wsUrl}?token=${token}`)
  const aliceOnPhone = await TestClient.open(t, `${server.wsUrl}?token=${token}`)
  const bob = await TestClient.open(t, server.wsUrl, 'bob')
  const outsider = await TestClient.open(t, server.wsUrl, 'outsider')
  for (const client of [alice, aliceOnPhone, bob]) await client.join('lobby')
  await outsider.join('elsewhere')

  const first = await alice.sendAndAck('lobby', 'before the signals')
  alice.send({ type: 'signal', room: 'lobby', event: 'typing', ref: 'g1' })
  const ack = await alice.next((frame) => frame.ref === 'g1', 'the ack of the signal')
  t.same(ack, { type: 'ack', ref: 'g1' }, 'acknowledged once relayed, without an id')
  bob.send({ type: 'signal', room: 'lobby', event: 'stopped-typing' })
  await bob.barrier()
  const last = await alice.sendAndAck('lobby', 'after the signals')
  for (const client of [alice, aliceOnPhone, bob, outsider]) await client.barrier()

  t.same(signals(aliceOnPhone, 'lobby'), [
    { type: 'signal', room: 'lobby', event: 'typing', from: 'Alice', user: 'alice' },
    { type: 'signal', room: 'lobby', event: 'stopped-typing', from: 'bob' }
  ], 'the sender\'s other connection gets both, once each')
  t.same(signals(bob, 'lobby'), [{ type: 'signal', room: 'lobby', event: 'typing', from: 'Alice', user: 'alice' }], 'bob gets alice\'s, not his own')
  t.same(signals(alice, 'lobby'), [{ type: 'signal', room: 'lobby', event: 'stopped-typing', from: 'bob' }], 'alice gets bob\'s, not her own')
  t.same(outsider.ofType('signal'), [], 'nothing reaches another room')
  t.same(ids(bob.messages('lobby')), [first, last], 'messages are untouched: the signals between them are no messages')

  const stored = await history(server.url, 'lobby')
  t.same(stored.messages.map((message) => message.text), ['before the signals', 'after the signals'], 'the history API holds no signal')
  const resumed = await TestClient.open(t, server.wsUrl, 'resumer')
  await resumed.join('lobby', first)
  const fresh = await TestClient.open(t, server.wsUrl, 'newcomer')
  await fresh.join('lobby')
  for (const client of [resumed, fresh]) await client.barrier()
  t.same(ids(resumed.messages('lobby')), [last], 'a join with since replays messages only')
  t.same(ids(fresh.messages('lobby')), [first, last], 'a plain join replays messages only')
  t.same([...resumed.ofType('signal'), ...fresh.ofType('signal')], [], 'no signal is ever replayed')

  t.equal(await metric(server.url, 'chat_signals_in_total'), 2)
  t.equal(await metric(server.url, 'chat_signals_out_total'), 4, 'two signals, each written to two members')
  t.equal(await metric(server.url, 'chat_messages_in_total'), 2, 'signals are not counted as messages')
})

t.test('single node: signals are limited by SIGNAL_BURST and SIGNAL_RATE_PER_SEC, apart from sends', async (t) => {
  const server = await startServer(t, { SIGNAL_RATE_PER_SEC: '1', SIGNAL_BURST: '3' })
  const alice = await TestClient.open(t, server.wsUrl, 'alice')
  const bob = await TestClient.open(t, server.wsUrl, 'bob')
  await alice.join('r')
  await bob.join('r')
  alice.send({ type: 'signal', room: 'elsewhere', event: 'typing', ref: 'n' })
  t.match(await alice.next((frame) => frame.ref === 'n', 'refusal'), { type: 'error', code: 'not_joined' }, 'membership is checked first')
  for (let i = 0; i < 5; i++) alice.send({ type: 'signal', room: 'r', event: 'typing', ref: `g${i}` })
  await alice.until((frames) => frames.filter((frame) => typeof frame.ref === 'string' && frame.ref.startsWith('g')).length === 5, 'five answers')
  const answers = alice.frames.filter((frame) => typeof frame.ref === 'string' && frame.ref.startsWith('g'))
  t.same(answers.slice(0, 3), [{ type: 'ack', ref: 'g0' }, { type: 'ack', ref: 'g1' }, { type: 'ack', ref: 'g2' }], 'the burst is relayed')
  for (const refused of answers.slice(3)) {
    t.match(refused, { type: 'error', code: 'rate_limited', message: 'too many signals: at most 1 per second (bursts of 3); slow down' })
  }
  t.match(await alice.sendAndAck('r', 'a message'), /.+/, 'sends have their own bucket')
  await bob.barrier()
  t.equal(signals(bob, 'r').length, 3, 'only the relayed signals arrived')
  await sleep(1100)
  alice.send({ type: 'signal', room: 'r', event: 'typing', ref: 'later' })
  t.same(await alice.next((frame) => frame.ref === 'later', 'answer'), { type: 'ack', ref: 'later' }, 'a token comes back after a second')
})

t.test('cluster: a signal reaches the other members on both nodes once, never its sender, and is never stored', async (t) => {
  const { a, b } = await startSignalCluster(t)
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const carol = await TestClient.open(t, a.wsUrl, 'carol')
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  const dave = await TestClient.open(t, b.wsUrl, 'dave')
  for (const client of [alice, carol, bob, dave]) await client.join('room1')

  const first = await alice.sendAndAck('room1', 'hello')
  alice.send({ type: 'signal', room: 'room1', event: 'typing', ref: 'g1' })
  t.same(await alice.next((frame) => frame.ref === 'g1', 'ack'), { type: 'ack', ref: 'g1' })
  // Signals of different senders keep no order between them (bob's reaches dave
  // on node b directly, alice's through Redis), so bob types only once alice's
  // signal has reached node b: dave's list then has one order to be compared with.
  for (const client of [bob, dave]) await client.next((frame) => frame.type === 'signal' && frame.from === 'alice', 'alice\'s signal on b')
  bob.send({ type: 'signal', room: 'room1', event: 'typing' })
  for (const client of [alice, carol]) await client.next((frame) => frame.type === 'signal' && frame.from === 'bob', 'bob\'s signal on a')
  const last = await bob.sendAndAck('room1', 'bye')
  for (const client of [alice, carol, bob, dave]) await client.next((frame) => frame.type === 'message' && frame.id === last, 'the last message')
  // A duplicate would have arrived by now: the last message was published after both signals, on the same channel.
  for (const client of [alice, carol, bob, dave]) await client.barrier()

  const from = (client: TestClient) => signals(client, 'room1').map((frame) => frame.from)
  t.same(from(alice), ['bob'], 'alice: bob\'s signal once, never her own')
  t.same(from(carol), ['alice', 'bob'], 'carol, on the sender\'s node: both, once each')
  t.same(from(bob), ['alice'], 'bob: alice\'s signal once, never his own')
  t.same(from(dave), ['alice', 'bob'], 'dave, on the other node: both, once each')
  t.same(signals(dave, 'room1')[0], { type: 'signal', room: 'room1', event: 'typing', from: 'alice' })
  for (const client of [alice, carol, bob, dave]) t.same(ids(client.messages('room1')), [first, last], 'messages once each, in order')

  const stored = await history(b.url, 'room1')
  t.same(stored.messages.map((message) => message.text), ['hello', 'bye'], 'the shared log holds no signal')
  const resumed = await TestClient.open(t, b.wsUrl, 'resumer')
  await resumed.join('room1', first)
  await resumed.barrier()
  t.same(ids(resumed.messages('room1')), [last], 'a resume replays messages only')
  t.same(resumed.ofType('signal'), [])
  t.equal(await metric(b.url, 'chat_signals_out_total'), 3, 'b wrote alice\'s signal twice and bob\'s once')
  t.equal(await metric(b.url, 'chat_signals_in_total'), 1)
})

t.test('cluster fault: subscriber connections killed while signals and messages interleave; messages exactly once and in order, no signal stored or repaired', async (t) => {
  const { redis, a, b } = await startSignalCluster(t)
  const publisher = await TestClient.open(t, a.wsUrl, 'publisher')
  const typist = await TestClient.open(t, a.wsUrl, 'typist')
  await publisher.join('storm')
  await typist.join('storm')
  const readers = [await TestClient.open(t, b.wsUrl, 'r1'), await TestClient.open(t, b.wsUrl, 'r2'), await TestClient.open(t, a.wsUrl, 'r3')]
  for (const reader of readers) await reader.join('storm')

  const TOTAL = 300
  const run = { killing: true }
  let kills = 0
  const killer = (async () => {
    while (run.killing && kills < 40) {
      await sleep(250)
      await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
      kills++
    }
  })()
  let signalled = 0
  for (let i = 0; i < TOTAL; i++) {
    publisher.send({ type: 'send', room: 'storm', text: `m${i}`, ref: `r${i}` })
    // A signal between every two messages, on the same room channel; the cluster env's limits leave them all through.
    typist.send({ type: 'signal', room: 'storm', event: 'typing' })
    signalled++
    if (i % 10 === 9) await sleep(50)
  }
  await publisher.until((frames) => frames.filter((f) => f.type === 'ack' || f.type === 'error').length >= TOTAL, 'every send answered', 20_000)
  run.killing = false
  await killer
  t.ok(kills >= 3, `the subscriber connections were killed ${kills} times during the run`)
  t.equal(publisher.ofType('error').length, 0, 'no send was refused')
  t.equal(typist.ofType('error').length, 0, 'no signal was refused')
  const acked = publisher.ofType('ack').map((frame) => frame.id as string)

  for (const reader of readers) await reader.until((frames) => frames.filter((f) => f.type === 'message').length >= TOTAL, `all ${TOTAL} messages`, 20_000)
  // Anything still in flight (a late duplicate, a stray repair) would arrive within this.
  await sleep(500)
  for (const reader of readers) await reader.barrier()
  const expected = Array.from({ length: TOTAL }, (_, i) => `m${i}`)
  for (const reader of readers) {
    const got = reader.messages('storm')
    t.equal(got.length, TOTAL, 'exactly once: no duplicate, no signal delivered as a message')
    t.same(got.map((frame) => frame.text), expected, 'in send order')
    t.same(ids(got), acked, 'the acknowledged ids, in order')
    const relayed = signals(reader, 'storm')
    t.ok(relayed.length <= signalled, `at most once: ${relayed.length} of ${signalled} signals arrived`)
    t.ok(relayed.every((frame) => frame.from === 'typist' && frame.event === 'typing' && !('id' in frame)), 'signals stay signals')
  }
  const sameNode = signals(readers[2] as TestClient, 'storm').length
  t.equal(sameNode, signalled, 'on the sender\'s node every signal arrives (no pub/sub in between)')
  t.equal(await redis.command('XLEN', 'chat:{storm}:log'), TOTAL, 'the room log holds the messages and nothing else')
  const stored = await history(b.url, 'storm')
  t.same(stored.messages.map((message) => message.text), expected, 'the history holds exactly the messages')
  t.ok((await metric(b.url, 'chat_redis_reconnects_total') ?? 0) >= 1, 'node b resubscribed and repaired its rooms')
  t.comment(`gaps detected on b: ${await metric(b.url, 'chat_gaps_detected_total')}, messages repaired: ${await metric(b.url, 'chat_messages_repaired_total')}`)
})
