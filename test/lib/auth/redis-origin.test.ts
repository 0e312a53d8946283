// The sender's user id and the API mark through Redis (lib/redis-broker.ts,
// PUBLISH_SCRIPT): stored in the log, carried on the wire, read back; a
// guest's message stays exactly what it was.
import t from 'tap'
import { Redis } from 'ioredis'
import { roomKeys } from '../../../lib/redis-scripts.js'
import { waitFor } from '../../helpers/wait.js'
import { startRedisNode } from '../../helpers/redis-node.js'
import { RedisServer } from '../../helpers/redis-server.js'

t.test('user and api travel through the log and the channel', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  b.broker.subscribe('r')
  await b.broker.read('r', { limit: 1 })
  const guest = await a.broker.publish('r', 'guest-1', 'one')
  const user = await a.broker.publish('r', 'Alice', 'two', { user: 'alice' })
  const api = await a.broker.publish('r', 'ops', 'three', { api: true })
  t.notOk('user' in guest || 'api' in guest, 'a guest message has neither field')
  t.match(user, { user: 'alice' })
  t.match(api, { api: true })
  t.notOk('user' in api)
  await waitFor(() => b.delivered.length === 3, 'b to receive all three')
  t.same(b.delivered, [guest, user, api], 'the other node gets the same messages, fields included')
  const read = await b.broker.read('r', { limit: 10 })
  t.same(read.messages, [guest, user, api], 'and the log keeps them')
  const entries = await server.command('XRANGE', roomKeys('r').log, '-', '+') as Array<[string, string[]]>
  t.same(entries[0]?.[1], ['f', 'guest-1', 'x', 'one', 't', String(guest.ts)], 'a guest entry is stored as before')
})

t.test('one append script: user and api entries are trimmed by text bytes, keep the idempotency key, and a guest\'s wire payload is unchanged', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a', { historySize: 10, historyMaxBytes: 1024 })
  const raw: string[] = []
  const listener = new Redis(server.url)
  t.teardown(() => listener.disconnect())
  listener.on('smessage', (_channel: string, payload: string) => raw.push(payload))
  await listener.ssubscribe(roomKeys('capped').channel)

  // 300 text bytes each, whatever the u/a fields add: three fit in 1024.
  await a.broker.publish('capped', 'Alice', '€'.repeat(100), { user: 'alice' })
  const first = await a.broker.publish('capped', 'ops', '€'.repeat(100), { api: true, idempotencyKey: 'k1' })
  const repeat = await a.broker.publish('capped', 'ops', 'a different text', { api: true, idempotencyKey: 'k1' })
  await a.broker.publish('capped', 'guest-1', '€'.repeat(100))
  await a.broker.publish('capped', 'Alice', '€'.repeat(100), { user: 'alice' })
  const entries = await server.command('XRANGE', roomKeys('capped').log, '-', '+') as Array<[string, string[]]>
  t.same(entries.map(([id]) => id), ['2-0', '3-0', '4-0'], 'the oldest went, by bytes of text alone; the repeat published nothing')
  t.equal(Number(await server.command('HGET', roomKeys('capped').meta, 'b')), 900, 'the byte total counts text only')
  t.same(entries.map(([, fields]) => fields.slice(6)), [['a', '1'], [], ['u', 'alice']], 'u and a after the text, only when present')
  t.same(repeat, first, 'the repeat answers the first receipt')

  await waitFor(() => raw.length === 4, 'the four published payloads')
  const guest = JSON.parse(raw[2] as string) as Record<string, unknown>
  t.same(Object.keys(guest).sort(), ['e', 'f', 'k', 'r', 's', 't', 'x'], 'a guest payload has exactly the fields it always had')
  t.match(JSON.parse(raw[0] as string), { u: 'alice' })
  t.match(JSON.parse(raw[1] as string), { a: 1 })
})
