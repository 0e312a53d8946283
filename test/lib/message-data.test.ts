// A message's structured `data` in both brokers: kept as its compact JSON
// encoding, counted with the text against the history's byte bounds, and
// given back unchanged by every path that reads a message (the live fan-out,
// a read, a node's gap repair). A message without data is stored as before.
import t from 'tap'
import type { StoredMessage } from '../../lib/frames.js'
import { HistoryRing, messageCost } from '../../lib/history.js'
import { HISTORY_MESSAGE_OVERHEAD_BYTES, IDEMPOTENCY_TTL_MS } from '../../lib/limits.js'
import { MemoryBroker } from '../../lib/memory-broker.js'
import { newEpoch } from '../../lib/message-id.js'
import { roomKeys } from '../../lib/redis-scripts.js'
import { startRedisNode } from '../helpers/redis-node.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/wait.js'

/** Compact JSON with escapes, astral and two-byte characters, numbers JSON spells one way only. */
const DATA = JSON.stringify({ kind: 'order', note: 'quote " slash / é 😀', items: [{ sku: 'A-1', qty: 2, price: 9.99 }], paid: true, refund: null })

function stored (seq: number, text: string, data?: string): StoredMessage {
  return { room: 'r', id: `e-${seq}`, seq, from: 'a', text, ts: seq, ...(data === undefined ? {} : { data }) }
}

t.test('messageCost counts the UTF-8 bytes of the data as well as of the text', async (t) => {
  t.equal(messageCost(stored(1, 'abc', '{"a":"é"}')), 3 + 10 + HISTORY_MESSAGE_OVERHEAD_BYTES)
  t.equal(messageCost(stored(1, 'abc')), 3 + HISTORY_MESSAGE_OVERHEAD_BYTES, 'no data, no bytes for it')
  t.equal(messageCost(stored(1, 'x', DATA)), 1 + Buffer.byteLength(DATA) + HISTORY_MESSAGE_OVERHEAD_BYTES)
})

t.test('a ring trims by the bytes of the data too', async (t) => {
  const small = messageCost(stored(1, 'x'))
  const ring = new HistoryRing(100, small * 3)
  ring.push(stored(1, 'x'))
  ring.push(stored(2, 'x'))
  ring.push(stored(3, 'x'))
  t.equal(ring.size, 3, 'three small messages fit')
  // Its text is as small as theirs: only its data (110 bytes) pushes one more out.
  const padded = stored(4, 'x', JSON.stringify({ pad: 'p'.repeat(100) }))
  ring.push(padded)
  t.same(ring.recent(10).map((m) => m.seq), [3, 4], 'two had to go for the data')
  t.equal(ring.bytes, small + messageCost(padded))
})

t.test('memory broker: data is delivered, read back and counted; a message without data has no data field', async (t) => {
  const delivered: StoredMessage[] = []
  const broker = new MemoryBroker({ historySize: 10, maxIdleRooms: 10 })
  await broker.start((message) => delivered.push(message))
  broker.subscribe('r')
  const plain = await broker.publish('r', 'alice', 'plain')
  const withData = await broker.publish('r', 'alice', 'with data', { data: DATA })
  const fromApi = await broker.publish('r', 'system', 'api', { api: true, data: '{}' })
  t.notOk('data' in plain, 'no data field without data')
  t.equal(withData.data, DATA)
  t.same(fromApi, { room: 'r', id: fromApi.id, seq: 3, from: 'system', text: 'api', ts: fromApi.ts, api: true, data: '{}' })
  t.same(delivered, [plain, withData, fromApi], 'delivered as stored')
  t.same((await broker.read('r', { since: plain.id, limit: 10 })).messages.map((m) => m.data), [DATA, '{}'], 'a resume reads the data back')
  t.equal(broker.historyBytes, [plain, withData, fromApi].reduce((sum, m) => sum + messageCost(m), 0), 'the node total counts the data')
  t.equal(broker.historyBytes - 3 * HISTORY_MESSAGE_OVERHEAD_BYTES, Buffer.byteLength('plainwith dataapi') + Buffer.byteLength(DATA) + 2)
})

t.test('memory broker: HISTORY_MAX_BYTES holds text and data together', async (t) => {
  const broker = new MemoryBroker({ historySize: 100, historyMaxBytes: 2 * HISTORY_MESSAGE_OVERHEAD_BYTES + 1000, maxIdleRooms: 10 })
  await broker.start(() => {})
  // 1 + 499 bytes each ({"p":"…"} is 8 bytes around the padding): together exactly the cap, which holds both.
  await broker.publish('r', 'alice', 'a', { data: JSON.stringify({ p: 'x'.repeat(491) }) })
  await broker.publish('r', 'alice', 'b', { data: JSON.stringify({ p: 'x'.repeat(491) }) })
  t.same((await broker.read('r', { limit: 10 })).messages.map((m) => m.text), ['a', 'b'])
  // One byte of data more: the oldest goes.
  await broker.publish('s', 'alice', 'a', { data: JSON.stringify({ p: 'x'.repeat(491) }) })
  await broker.publish('s', 'alice', 'b', { data: JSON.stringify({ p: 'x'.repeat(492) }) })
  t.same((await broker.read('s', { limit: 10 })).messages.map((m) => m.text), ['b'], 'the data pushed the oldest out')
})

/** The log's entries as Redis holds them: sequence and raw fields. */
async function entries (server: RedisServer, room: string): Promise<Array<[number, string[]]>> {
  const raw = await server.command('XRANGE', roomKeys(room).log, '-', '+') as Array<[string, string[]]>
  return raw.map(([id, fields]) => [Number(id.split('-')[0]), fields])
}

t.test('redis: data is stored as field d after the others, counted, published, read and repaired unchanged', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  b.broker.subscribe('r')
  await b.broker.read('r', { limit: 1 }) // waits for the room to start on b

  const plain = await a.broker.publish('r', 'guest', 'plain')
  const withData = await a.broker.publish('r', 'alice', 'with data', { user: 'alice', data: DATA })
  const fromApi = await a.broker.publish('r', 'system', 'api', { api: true, data: '{"n":1}' })
  t.notOk('data' in plain)
  t.equal(withData.data, DATA, 'the publisher gets the data back')

  const log = await entries(server, 'r')
  t.same(log[0], [1, ['f', 'guest', 'x', 'plain', 't', String(plain.ts)]], 'a guest message without data is stored exactly as before')
  t.same(log[1], [2, ['f', 'alice', 'x', 'with data', 't', String(withData.ts), 'u', 'alice', 'd', DATA]])
  t.same(log[2], [3, ['f', 'system', 'x', 'api', 't', String(fromApi.ts), 'a', '1', 'd', '{"n":1}']])
  const counted = Number(await server.command('HGET', roomKeys('r').meta, 'b'))
  t.equal(counted, Buffer.byteLength('plainwith dataapi') + Buffer.byteLength(DATA) + 7, 'the byte total counts text and data')

  await waitFor(() => b.delivered.length === 3, 'b to receive all three over pub/sub')
  t.same(b.delivered, [plain, withData, fromApi], 'the wire payload carries the data unchanged')
  t.same((await b.broker.read('r', { since: plain.id, limit: 10 })).messages, [withData, fromApi], 'a read parses it back')
  t.same((await b.broker.read('r', { limit: 10 })).messages, [plain, withData, fromApi])

  // A message published where nobody listens is missed by b, which repairs the gap from the log at the next one.
  const keys = roomKeys('r')
  const [, missedSeq] = await a.command.chatPublish(keys.meta, keys.log, 'chat:nobody-listens', newEpoch(), 100, 64 * 1024,
    'alice', 'missed', 1234, 'r', 3600, IDEMPOTENCY_TTL_MS, 'alice', '', DATA)
  const next = await a.broker.publish('r', 'alice', 'next', { data: '{"after":"gap"}' })
  await waitFor(() => b.delivered.length === 5, 'b to repair the gap and deliver both')
  t.equal(b.broker.clusterStats.gapsDetected, 1, 'b saw the gap')
  t.match(b.delivered[3], { seq: missedSeq, text: 'missed', user: 'alice', data: DATA }, 'the repaired message has its data')
  t.same(b.delivered[4], next)
  t.same(a.reported, [])
  t.same(b.reported, [])
})

t.test('redis: HISTORY_MAX_BYTES trims by text and data, with an exact total', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a', { historySize: 100, historyMaxBytes: 1024 })
  // 1 + 400 bytes each ({"p":"…"} is 8 bytes around the padding): two fit in 1024, a third does not.
  const data = JSON.stringify({ p: 'é'.repeat(196) })
  for (let i = 0; i < 4; i++) await a.broker.publish('d', 'alice', 'x', { data })
  const log = await entries(server, 'd')
  t.same(log.map(([seq]) => seq), [3, 4], 'the two newest')
  t.equal(Number(await server.command('HGET', roomKeys('d').meta, 'b')), 802, 'the total is what is kept')

  // A log counted before byte counting existed is counted once, data included.
  await server.command('HDEL', roomKeys('d').meta, 'b')
  await a.broker.publish('d', 'alice', 'y')
  t.equal(Number(await server.command('HGET', roomKeys('d').meta, 'b')), 803)

  // Data alone bigger than the cap: published, not kept.
  const huge = await a.broker.publish('d', 'alice', 'z', { data: JSON.stringify({ p: 'x'.repeat(1100) }) })
  t.same(await entries(server, 'd'), [], 'nothing kept')
  t.same(await a.broker.read('d', { since: huge.id, limit: 10 }), { messages: [], recovered: true }, 'its id is still the latest')
})

t.test('redis: with an idempotency key the data is stored once, and the repeat publishes nothing', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const first = await a.broker.publish('r', 'system', 'once', { api: true, data: DATA, idempotencyKey: 'k1' })
  const again = await a.broker.publish('r', 'system', 'once', { api: true, data: '{"other":1}', idempotencyKey: 'k1' })
  t.same(again, first, 'the first receipt again')
  const log = await entries(server, 'r')
  t.equal(log.length, 1)
  t.same(log[0]?.[1].slice(6), ['a', '1', 'd', DATA])
})
