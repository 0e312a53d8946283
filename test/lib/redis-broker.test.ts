// Tests of lib/redis-broker.ts against a real redis-server: the typed scripts,
// the ephemeral path past the sequencers, and which errors are reported
// (anything unexpected) or kept quiet (Redis being away).
import t from 'tap'
import { BrokerUnavailableError } from '../../lib/broker.js'
import { roomKeys } from '../../lib/redis-scripts.js'
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
  await server.command('PUBLISH', keys.channel, JSON.stringify({ k: 'm', r: 'g', e: 'E', s: 2, f: 'x', x: 'two', t: 2 }))
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
  await server.command('PUBLISH', roomKeys('r').channel, 'not json')
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
