// Unit tests of lib/memory-broker.ts: the single-node log, resumes, and the
// eviction of idle rooms' logs.
import t from 'tap'
import type { StoredMessage } from '../../lib/frames.js'
import { MemoryBroker } from '../../lib/memory-broker.js'
import { formatMessageId, parseMessageId } from '../../lib/message-id.js'

async function started (options: { historySize?: number, maxIdleRooms?: number, now?: () => number } = {}) {
  const delivered: StoredMessage[] = []
  const broker = new MemoryBroker({ historySize: options.historySize ?? 100, maxIdleRooms: options.maxIdleRooms ?? 100, now: options.now })
  await broker.start((message) => delivered.push(message))
  return { broker, delivered }
}

async function publishMany (broker: MemoryBroker, room: string, count: number): Promise<StoredMessage[]> {
  const out: StoredMessage[] = []
  for (let i = 1; i <= count; i++) out.push(await broker.publish(room, 'alice', `m${i}`))
  return out
}

const texts = (messages: StoredMessage[]) => messages.map((m) => m.text)

t.test('publish numbers a room\'s messages in order under one epoch', async (t) => {
  let now = 5000
  const { broker } = await started({ now: () => now++ })
  const messages = await publishMany(broker, 'r', 3)
  t.same(messages.map((m) => m.seq), [1, 2, 3])
  const epoch = parseMessageId(messages[0]?.id ?? '')?.epoch
  t.ok(epoch, 'ids parse')
  t.same(messages.map((m) => m.id), [1, 2, 3].map((seq) => formatMessageId(epoch as string, seq)))
  t.match(messages[0], { room: 'r', from: 'alice', text: 'm1', ts: 5000 })
  t.same(messages.map((m) => m.ts), [5000, 5001, 5002], 'ts from the injected clock')

  const other = await broker.publish('other', 'bob', 'x')
  t.equal(other.seq, 1, 'each room has its own sequence')
  t.not(parseMessageId(other.id)?.epoch, epoch, 'and its own epoch')
})

t.test('subscribed rooms are fanned out in order; others are not', async (t) => {
  const { broker, delivered } = await started()
  broker.subscribe('r')
  const published = await publishMany(broker, 'r', 5)
  await broker.publish('quiet', 'a', 'not subscribed')
  t.same(delivered, published, 'the same objects, in order, once each')
  broker.unsubscribe('r')
  await broker.publish('r', 'a', 'after unsubscribe')
  t.equal(delivered.length, 5)
})

t.test('read without since: the newest `limit`, oldest first', async (t) => {
  const { broker } = await started({ historySize: 10 })
  await publishMany(broker, 'r', 15)
  t.same(await broker.read('r', { limit: 3 }).then((r) => ({ texts: texts(r.messages), recovered: r.recovered })), { texts: ['m13', 'm14', 'm15'], recovered: true })
  t.equal((await broker.read('r', { limit: 100 })).messages.length, 10, 'at most HISTORY_SIZE kept')
  t.same(await broker.read('never', { limit: 10 }), { messages: [], recovered: true }, 'an unknown room is empty')
})

t.test('read since a known id: the messages after it', async (t) => {
  const { broker } = await started({ historySize: 10 })
  const published = await publishMany(broker, 'r', 8)
  const since = published[4]?.id
  const result = await broker.read('r', { since, limit: 100 })
  t.equal(result.recovered, true)
  t.same(texts(result.messages), ['m6', 'm7', 'm8'])
  t.same(texts((await broker.read('r', { since, limit: 2 })).messages), ['m6', 'm7'], 'the first `limit` after it')
  t.same(await broker.read('r', { since: published[7]?.id, limit: 10 }), { messages: [], recovered: true }, 'nothing after the newest')
})

t.test('unknown since: recovered false, with the recent history', async (t) => {
  const { broker } = await started({ historySize: 5 })
  const published = await publishMany(broker, 'r', 8) // keeps m4..m8
  const epoch = parseMessageId(published[0]?.id ?? '')?.epoch as string

  const trimmed = await broker.read('r', { since: published[1]?.id, limit: 100 })
  t.equal(trimmed.recovered, false, 'm3 onwards were partly trimmed away (m3 is gone)')
  t.same(texts(trimmed.messages), ['m4', 'm5', 'm6', 'm7', 'm8'])

  const edge = await broker.read('r', { since: published[2]?.id, limit: 100 })
  t.equal(edge.recovered, true, 'since m3: m4 onwards are all still kept')
  t.same(texts(edge.messages), ['m4', 'm5', 'm6', 'm7', 'm8'])

  for (const since of ['ffffffff-3', `${epoch}-9`, `${epoch}-0`, 'junk', '', `${epoch}x-3`]) {
    const result = await broker.read('r', { since, limit: 2 })
    t.equal(result.recovered, false, `since ${JSON.stringify(since)}`)
    t.same(texts(result.messages), ['m7', 'm8'], 'the newest `limit` instead')
  }

  const fallback = await broker.read('r', { since: 'junk', limit: 100, fallbackLimit: 1 })
  t.same({ recovered: fallback.recovered, texts: texts(fallback.messages) }, { recovered: false, texts: ['m8'] }, 'fallbackLimit bounds the recent history')
  t.same(await broker.read('nowhere', { since: `${epoch}-1`, limit: 10 }), { messages: [], recovered: false }, 'a room with no log')
})

t.test('an id from a lost log is not mistaken for a position in a new one', async (t) => {
  const { broker } = await started({ maxIdleRooms: 1 })
  const [old] = await publishMany(broker, 'r', 1)
  await broker.publish('other', 'x', 'pushes r out')
  t.same((await broker.read('r', { limit: 10 })).messages, [], 'the idle log of r was evicted')
  broker.subscribe('r')
  const fresh = await publishMany(broker, 'r', 3) // a new log, seq 1..3 again, under a new epoch
  t.equal(fresh[0]?.seq, 1)
  t.not(fresh[0]?.id, old?.id, 'a new id for the same position')
  const result = await broker.read('r', { since: old?.id, limit: 10 })
  t.equal(result.recovered, false, 'the old id is unknown, not "after seq 1"')
  t.same(texts(result.messages), ['m1', 'm2', 'm3'], 'the recent history instead')
})

t.test('idle rooms beyond maxIdleRooms are evicted, least recently used first', async (t) => {
  const { broker } = await started({ maxIdleRooms: 3 })
  for (const room of ['a', 'b', 'c']) await broker.publish(room, 'x', 'hello')
  t.equal(broker.roomLogCount, 3)
  await broker.publish('a', 'x', 'touch a') // b is now the least recently used
  await broker.publish('d', 'x', 'hello')
  t.equal(broker.roomLogCount, 3)
  t.same((await broker.read('b', { limit: 10 })).messages, [], 'b was forgotten')
  t.same(texts((await broker.read('a', { limit: 10 })).messages), ['hello', 'touch a'], 'a was kept')
  t.equal((await broker.read('c', { limit: 10 })).messages.length, 1)
  t.equal((await broker.read('d', { limit: 10 })).messages.length, 1)
})

t.test('subscribed rooms are never evicted, however many idle rooms come and go', async (t) => {
  const { broker } = await started({ maxIdleRooms: 2 })
  broker.subscribe('busy')
  await broker.publish('busy', 'x', 'keep me')
  for (let i = 0; i < 50; i++) await broker.publish(`idle-${i}`, 'x', 'hello')
  t.equal(broker.roomLogCount, 3, 'the subscribed room plus two idle ones')
  t.same(texts((await broker.read('busy', { limit: 10 })).messages), ['keep me'])
  t.equal((await broker.read('idle-0', { limit: 10 })).messages.length, 0)
  t.equal((await broker.read('idle-49', { limit: 10 })).messages.length, 1)

  broker.unsubscribe('busy')
  t.equal(broker.roomLogCount, 2, 'once unsubscribed it is idle, and the oldest idle log goes')
  t.same(texts((await broker.read('busy', { limit: 10 })).messages), ['keep me'], 'it is the most recently used idle room')
  t.equal((await broker.read('idle-48', { limit: 10 })).messages.length, 0)
})

t.test('a room subscribed again is taken off the idle list', async (t) => {
  const { broker } = await started({ maxIdleRooms: 1 })
  await broker.publish('r', 'x', 'one')
  broker.subscribe('r')
  await broker.publish('other', 'x', 'hello')
  await broker.publish('other2', 'x', 'hello')
  t.same(texts((await broker.read('r', { limit: 10 })).messages), ['one'], 'kept while subscribed')
})

t.test('memory-broker extras: health, close stops fan-out', async (t) => {
  const { broker, delivered } = await started()
  t.same(broker.health(), { ok: true })
  broker.subscribe('r')
  await broker.close()
  await broker.publish('r', 'x', 'after close')
  t.equal(delivered.length, 0)
})
