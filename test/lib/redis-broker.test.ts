// Tests of lib/redis-broker.ts against a real redis-server: the typed scripts,
// the ephemeral path past the sequencers, and which errors are reported
// (anything unexpected) or kept quiet (Redis being away).
import t from 'tap'
import { BrokerUnavailableError } from '../../lib/broker.js'
import { idempotencyKey, roomKeys } from '../../lib/redis-scripts.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { startRedisNode } from '../helpers/redis-node.js'
import { RedisServer } from '../helpers/redis-server.js'

t.test('publish stores then fans out; read and the subscribed node see one order', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  b.broker.subscribe('r')
  await b.broker.read('r', { limit: 1 }) // waits for the room to start on b
  const first = await a.broker.publish('r', 'alice', 'one')
  const second = await a.broker.publish('r', 'alice', 'two')
  t.same([first.seq, second.seq], [1, 2])
  await waitFor(() => b.delivered.length === 2, 'b to receive both')
  t.same(b.delivered.map((m) => m.id), [first.id, second.id])
  const read = await a.broker.read('r', { since: first.id, limit: 10 })
  t.same(read, { messages: [second], recovered: true })
  t.same(a.reported, [])
  t.same(b.reported, [])
})

t.test('ephemeral payloads reach the other nodes of the room only, take no sequence, and never start a repair', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  const heard: Record<string, Array<[string, unknown]>> = { a: [], b: [] }
  a.broker.onEphemeral('typing', (room, payload) => heard.a?.push([room, payload]))
  b.broker.onEphemeral('typing', (room, payload) => heard.b?.push([room, payload]))
  for (const node of [a, b]) {
    node.broker.subscribe('r')
    await node.broker.read('r', { limit: 1 })
  }
  a.broker.publishEphemeral('r', 'typing', { who: 'alice' })
  a.broker.publishEphemeral('elsewhere', 'typing', { who: 'nobody' })
  await waitFor(() => heard.b?.length === 1, 'b to hear the payload')
  t.equal(await server.command('HGET', roomKeys('r').meta, 's'), null, 'no sequence was taken')

  // The message follows the payload on a's own subscription: once it is delivered, no echo is coming.
  const message = await a.broker.publish('r', 'alice', 'after the signal')
  t.equal(message.seq, 1)
  await waitFor(() => a.delivered.length === 1 && b.delivered.length === 1, 'both nodes to deliver the message')
  t.same(heard.a, [], 'a node does not hear its own payloads')
  t.same(heard.b, [['r', { who: 'alice' }]], 'nor payloads of rooms it does not serve')
  for (const node of [a, b]) t.equal(node.broker.clusterStats.gapsDetected, 0, 'no gap was seen')
})

t.test('an unexpected Redis error is reported, and the caller still gets unavailable', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  await server.command('SET', roomKeys('broken').log, 'not a stream')
  await t.rejects(a.broker.publish('broken', 'alice', 'hi'), BrokerUnavailableError)
  await t.rejects(a.broker.read('broken', { limit: 10 }), BrokerUnavailableError)
  t.match(a.reported, [
    { context: 'storing a message', error: { message: /WRONGTYPE/ } },
    { context: 'reading a room history', error: { message: /WRONGTYPE/ } }
  ])
})

t.test('a gap repair failing for an unexpected reason is reported and retried until the log answers', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  a.broker.subscribe('g')
  await a.broker.read('g', { limit: 1 })
  const keys = roomKeys('g')
  await server.command('SET', keys.log, 'not a stream')
  // Message 2 of a log this node never saw: a gap, whose repair reads the broken log.
  await server.command('SPUBLISH', keys.channel, JSON.stringify({ k: 'm', r: 'g', e: 'E', s: 2, f: 'x', x: 'two', t: 2 }))
  await waitFor(() => a.reported.length > 0, 'the failed repair to be reported')
  t.match(a.reported[0], { context: /reading a room log/, error: { message: /WRONGTYPE/ } })
  t.same(a.delivered, [])
  await server.command('DEL', keys.log)
  await server.command('XADD', keys.log, '1-0', 'f', 'x', 'x', 'one', 't', '1')
  await server.command('XADD', keys.log, '2-0', 'f', 'x', 'x', 'two', 't', '2')
  await server.command('HSET', keys.meta, 'e', 'E', 's', '2')
  await waitFor(() => a.delivered.length === 2, 'the retried repair to deliver')
  t.same(a.delivered.map((m) => m.id), ['E-1', 'E-2'])
})

t.test('a malformed payload on a room channel is reported and ignored', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  a.broker.subscribe('r')
  await a.broker.read('r', { limit: 1 })
  await server.command('SPUBLISH', roomKeys('r').channel, 'not json')
  await waitFor(() => a.reported.length === 1, 'the report')
  t.match(a.reported[0], { context: `parsing a payload on ${roomKeys('r').channel}` })
})

t.test('Redis away: callers get unavailable, readiness fails, and nothing is reported', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  a.broker.subscribe('r')
  await a.broker.read('r', { limit: 1 })
  await server.stop()
  await waitFor(() => a.command.status !== 'ready', 'the connection to notice')
  await t.rejects(a.broker.publish('r', 'alice', 'hi'), BrokerUnavailableError)
  await t.rejects(a.broker.read('r', { limit: 1 }), BrokerUnavailableError)
  a.broker.subscribe('new-room')
  a.broker.publishEphemeral('r', 'typing', {})
  a.broker.unsubscribe('r')
  t.match(a.broker.health(), { ok: false, check: 'redis' })
  await sleep(600) // the probe, the room start and its retries run and fail meanwhile
  t.same(a.reported, [], 'Redis being away is expected, not news')
})

/** The log as Redis holds it: sequences, and the UTF-8 bytes of every text. */
async function logOf (server: RedisServer, room: string): Promise<{ seqs: number[], textBytes: number, counted: number }> {
  const entries = await server.command('XRANGE', roomKeys(room).log, '-', '+') as Array<[string, string[]]>
  return {
    seqs: entries.map(([id]) => Number(id.split('-')[0])),
    textBytes: entries.reduce((sum, [, fields]) => sum + Buffer.byteLength(fields[3] as string), 0),
    counted: Number(await server.command('HGET', roomKeys(room).meta, 'b'))
  }
}

t.test('the append script bounds a log by HISTORY_MAX_BYTES of text, oldest first, with an exact byte total', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a', { historySize: 10, historyMaxBytes: 1024 })
  // 300 bytes each ('€' is 3 bytes in UTF-8, 1 code point): three fit in 1024, a fourth does not.
  for (let i = 0; i < 6; i++) await a.broker.publish('big', 'alice', '€'.repeat(100))
  t.same(await logOf(server, 'big'), { seqs: [4, 5, 6], textBytes: 900, counted: 900 }, 'the three newest, 900 bytes')

  // Mixed sizes, and the count cap trimming too: the total stays exact.
  const sizes = [1, 700, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 400, 1000, 3]
  for (const size of sizes) await a.broker.publish('mixed', 'alice', 'x'.repeat(size))
  const mixed = await logOf(server, 'mixed')
  t.equal(mixed.counted, mixed.textBytes, 'the running total is the sum of what is kept')
  t.same(mixed.seqs, [14, 15], 'the 1000-byte message pushed out everything before it but the next')
  t.equal(mixed.textBytes, 1003)

  // A message bigger than the cap alone is delivered but not kept.
  const huge = await a.broker.publish('mixed', 'alice', 'y'.repeat(2000))
  t.same(await logOf(server, 'mixed'), { seqs: [], textBytes: 0, counted: 0 }, 'nothing kept')
  t.same(await a.broker.read('mixed', { since: huge.id, limit: 10 }), { messages: [], recovered: true }, 'its id is still the latest')
})

t.test('a read from before the first kept entry answers recovered:false with the recent history', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a', { historySize: 100, historyMaxBytes: 1024 })
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await a.broker.publish('r', 'alice', `${i}`.repeat(400))).id)
  // Kept: messages 4 and 5 (800 bytes). `since` 3 is the one just before the first kept: nothing missing.
  t.same((await a.broker.read('r', { since: ids[2], limit: 10 })).messages.map((m) => m.id), ids.slice(3))
  const lost = await a.broker.read('r', { since: ids[1], limit: 10, fallbackLimit: 1 })
  t.equal(lost.recovered, false, 'message 3 was trimmed: the gap cannot be filled')
  t.same(lost.messages.map((m) => m.id), [ids[4]], 'the recent history instead')
})

t.test('a log counted before byte counting existed is counted once, exactly', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a', { historySize: 100, historyMaxBytes: 1024 })
  for (let i = 0; i < 3; i++) await a.broker.publish('old', 'alice', 'z'.repeat(300))
  await server.command('HDEL', roomKeys('old').meta, 'b')
  await a.broker.publish('old', 'alice', 'z'.repeat(300))
  t.same(await logOf(server, 'old'), { seqs: [2, 3, 4], textBytes: 900, counted: 900 })
})

t.test('a room\'s log and meta expire HISTORY_TTL_S after its last message', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a', { historyTtlS: 90 })
  await a.broker.publish('ttl', 'alice', 'hi')
  for (const key of [roomKeys('ttl').meta, roomKeys('ttl').log]) {
    const ttl = Number(await server.command('TTL', key))
    t.ok(ttl > 80 && ttl <= 90, `${key} expires in ${ttl} s`)
  }
})

t.test('a full Redis (maxmemory, noeviction) refuses messages as unavailable, reported once; reads still work', async (t) => {
  const server = await RedisServer.start(t, ['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction'])
  const a = await startRedisNode(t, server, 'a', { historySize: 1000, historyMaxBytes: 64 * 1024 * 1024 })
  const text = 'x'.repeat(16 * 1024)
  let refused: unknown
  let stored = 0
  // ~3 MB of logs at most: bounded whatever happens.
  for (let i = 0; i < 400 && refused === undefined; i++) {
    const room = `room-${i % 20}`
    try {
      await a.broker.publish(room, 'alice', text)
      stored++
    } catch (error) {
      refused = error
    }
  }
  t.ok(stored > 0, `${stored} messages stored before Redis was full`)
  t.ok(refused instanceof BrokerUnavailableError, 'refused as unavailable (nothing was published)')
  t.match(refused, { message: /Redis is full/ })
  await t.rejects(a.broker.publish('room-0', 'alice', text), BrokerUnavailableError, 'and again')
  await t.rejects(a.broker.publish('room-0', 'alice', text, { idempotencyKey: 'key-1' }), BrokerUnavailableError, 'with an idempotency key too')
  t.equal(await server.command('EXISTS', idempotencyKey('room-0', 'key-1')), 0, 'which records nothing')
  t.equal(a.reported.length, 1, 'reported once, not once per refused message')
  t.match(a.reported[0], { context: /Redis is full/, error: { message: /^OOM / } })
  t.equal((await a.broker.read('room-0', { limit: 1 })).messages.length, 1, 'reads still work')
  await server.command('CONFIG', 'SET', 'maxmemory', '0')
  t.match(await a.broker.publish('room-0', 'alice', 'room again'), { text: 'room again' }, 'accepted once memory is free')
})
