// Unit tests of lib/memory-broker.ts: the single-node log, resumes, the
// eviction of idle rooms' logs, and the byte caps (per room and in total).
import t from 'tap'
import type { StoredMessage } from '../../lib/frames.js'
import { HISTORY_MESSAGE_OVERHEAD_BYTES } from '../../lib/limits.js'
import { MemoryBroker } from '../../lib/memory-broker.js'
import { formatMessageId, parseMessageId } from '../../lib/message-id.js'

interface StartOptions {
  historySize?: number
  historyMaxBytes?: number
  historyTotalMaxBytes?: number
  maxIdleRooms?: number
  now?: () => number
}

async function started (options: StartOptions = {}) {
  const delivered: StoredMessage[] = []
  const broker = new MemoryBroker({ ...options, historySize: options.historySize ?? 100, maxIdleRooms: options.maxIdleRooms ?? 100 })
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

/** A text whose message costs exactly COST bytes (history.ts messageCost). */
const COST = 1000
const TEXT = 'x'.repeat(COST - HISTORY_MESSAGE_OVERHEAD_BYTES)

async function kept (broker: MemoryBroker, room: string): Promise<number> {
  return (await broker.read(room, { limit: 1000 })).messages.length
}

t.test('each room keeps at most HISTORY_MAX_BYTES; a resume past the trimmed point is not recovered', async (t) => {
  const { broker } = await started({ historyMaxBytes: COST * 2 })
  const published: StoredMessage[] = []
  for (let i = 0; i < 5; i++) published.push(await broker.publish('r', 'a', TEXT))
  t.equal(await kept(broker, 'r'), 2, 'two messages fit in the bytes (100 would fit in the count)')
  t.equal(broker.historyBytes, COST * 2)
  t.equal((await broker.read('r', { since: published[1]?.id, limit: 10 })).recovered, false, 'message 3 was trimmed')
  const edge = await broker.read('r', { since: published[2]?.id, limit: 10 })
  t.same({ recovered: edge.recovered, seqs: edge.messages.map((m) => m.seq) }, { recovered: true, seqs: [4, 5] })
})

t.test('over the total, rooms without members lose their history first, least recently used first', async (t) => {
  const { broker } = await started({ historyTotalMaxBytes: COST * 4 })
  broker.subscribe('member-room')
  await broker.publish('member-room', 'a', TEXT)
  const [old] = [await broker.publish('idle-a', 'a', TEXT)]
  await broker.publish('idle-b', 'a', TEXT)
  await broker.publish('idle-c', 'a', TEXT)
  t.equal(broker.historyBytes, COST * 4, 'at the total, nothing goes')
  await broker.publish('idle-a', 'a', TEXT) // a is now the most recently used idle room
  t.equal(broker.historyBytes, COST * 4, 'one over: one room went')
  t.equal(await kept(broker, 'idle-b'), 0, 'b, the least recently used room without members')
  t.equal(await kept(broker, 'idle-a'), 2)
  t.equal(await kept(broker, 'idle-c'), 1)
  t.equal(await kept(broker, 'member-room'), 1, 'the room with members, though older than all, kept its history')

  await broker.publish('member-room', 'a', TEXT)
  t.equal(await kept(broker, 'idle-c'), 0, 'then c')
  t.equal(await kept(broker, 'idle-a'), 2, 'while a keeps its history')
  t.equal((await broker.read('idle-a', { since: old?.id, limit: 10 })).recovered, true)
  await broker.publish('member-room', 'a', TEXT)
  t.equal(await kept(broker, 'idle-a'), 0, 'then a, whole')
  t.equal((await broker.read('idle-a', { since: old?.id, limit: 10 })).recovered, false, 'a resume into a forgotten log is not recovered')
  t.equal(await kept(broker, 'member-room'), 3)
  t.equal(broker.roomLogCount, 1, 'the logs of the forgotten idle rooms are gone')
  t.equal(broker.historyBytes, COST * 3)
})

t.test('the total always wins: with no room without members left, the least recently used rooms with members go', async (t) => {
  const { broker } = await started({ historyTotalMaxBytes: COST * 3 })
  for (const room of ['m1', 'm2', 'm3']) broker.subscribe(room)
  const last: Record<string, StoredMessage> = {}
  for (const room of ['m1', 'm2', 'm3']) last[room] = await broker.publish(room, 'a', TEXT)
  await broker.publish('m1', 'a', TEXT) // m1 is the most recently used; m2 the least
  t.equal(broker.historyBytes, COST * 3, 'm2\'s history went')
  t.same([await kept(broker, 'm1'), await kept(broker, 'm2'), await kept(broker, 'm3')], [2, 0, 1])
  t.equal(broker.roomLogCount, 3, 'm2 keeps its log: its ids stay comparable')
  t.same(await broker.read('m2', { since: last.m2?.id, limit: 10 }), { messages: [], recovered: true }, 'a member that had everything missed nothing')
  const next = await broker.publish('m2', 'a', TEXT)
  t.equal(next.seq, 2, 'and its sequence goes on')
  t.same([await kept(broker, 'm1'), await kept(broker, 'm2'), await kept(broker, 'm3')], [2, 1, 0], 'then m3, now the least recently used')
})

t.test('a room that loses its members goes before rooms with members, however recently used', async (t) => {
  const { broker } = await started({ historyTotalMaxBytes: COST * 3 })
  broker.subscribe('x')
  broker.subscribe('y')
  await broker.publish('x', 'a', TEXT)
  await broker.publish('y', 'a', TEXT)
  broker.unsubscribe('y')
  await broker.publish('x', 'a', TEXT)
  await broker.publish('x', 'a', TEXT)
  t.same([await kept(broker, 'x'), await kept(broker, 'y')], [3, 0])
  t.equal(broker.roomLogCount, 1)
})

t.test('a single message bigger than the total leaves nothing behind, and the sums stay right', async (t) => {
  const { broker } = await started({ historyTotalMaxBytes: COST * 2 })
  broker.subscribe('m')
  await broker.publish('m', 'a', TEXT)
  await broker.publish('idle', 'a', TEXT)
  await broker.publish('m', 'a', TEXT + TEXT + TEXT)
  t.equal(broker.historyBytes, 0)
  t.equal(broker.roomLogCount, 1, 'the idle room went first, then the history of m')
  await broker.publish('m', 'a', TEXT)
  t.equal(broker.historyBytes, COST, 'the count goes on from zero')
  broker.unsubscribe('m')
  broker.subscribe('m')
  t.equal(await kept(broker, 'm'), 1, 'subscribing again keeps the history')
})
