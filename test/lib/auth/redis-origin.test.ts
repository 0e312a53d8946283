// The sender's user id and the API mark through Redis (lib/redis-broker.ts,
// PUBLISH_SCRIPT): stored in the log, carried on the wire, read back; a
// guest's message stays exactly what it was.
import t from 'tap'
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
