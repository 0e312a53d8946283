// A join's wait for its room, against a real redis-server: it waits for the
// room's own attempt to subscribe (not a clock), and never hangs.
import t from 'tap'
import { BrokerUnavailableError } from '../../lib/broker.js'
import { startRedisNode } from '../helpers/redis-node.js'
import { RedisServer } from '../helpers/redis-server.js'

t.test('a room left while its join waits: the read still answers', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  a.broker.subscribe('brief')
  const read = a.broker.read('brief', { limit: 10 })
  a.broker.unsubscribe('brief')
  t.same(await read, { messages: [], recovered: true })
  // Joined again at once: the new join waits for the new subscription.
  a.broker.subscribe('brief')
  a.broker.subscribe('brief')
  t.same(await a.broker.read('brief', { limit: 10 }), { messages: [], recovered: true })
  t.same(a.reported, [])
})

t.test('a join whose subscription times out (Redis frozen) gets unavailable, naming the cause', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  server.freeze(true)
  t.teardown(() => server.freeze(false))
  a.broker.subscribe('cold')
  const started = Date.now()
  await t.rejects(a.broker.read('cold', { limit: 10 }), new BrokerUnavailableError('Redis could not subscribe to the room (Command timed out)'))
  t.ok(Date.now() - started < 5000, 'within about a command timeout')
  server.freeze(false)
})
