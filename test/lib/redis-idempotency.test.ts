// lib/redis-idempotency.ts and the Idempotency-Key half of PUBLISH_SCRIPT,
// against a real redis-server started by the test: the key is recorded with
// the message, repeats (even concurrent ones) publish nothing new, a repeat
// with an invalid body still gets the first answer, a failed call records nothing.
import t from 'tap'
import { BrokerUnavailableError, type PublishReceipt } from '../../lib/broker.js'
import { IDEMPOTENCY_TTL_MS } from '../../lib/limits.js'
import { RedisIdempotencyStore } from '../../lib/redis-idempotency.js'
import { idempotencyKey, roomKeys } from '../../lib/redis-scripts.js'
import { startRedisNode } from '../helpers/redis-node.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/wait.js'

t.test('the key is recorded with the message; a repeat gets the first receipt and publishes nothing', async (t) => {
  const redis = await RedisServer.start(t)
  const node = await startRedisNode(t, redis, 'a')
  const store = new RedisIdempotencyStore<PublishReceipt>(node.command)
  const first = await store.run('lobby', 'k1', () => node.broker.publish('lobby', 'ops', 'first', { idempotencyKey: 'k1' }))
  const repeat = await store.run('lobby', 'k1', () => node.broker.publish('lobby', 'ops', 'a different body', { idempotencyKey: 'k1' }))
  t.same(repeat, first, 'the first receipt again')
  t.same(JSON.parse(await redis.command('GET', idempotencyKey('lobby', 'k1')) as string), first, 'the key holds the 202 body')
  const ttl = Number(await redis.command('PTTL', idempotencyKey('lobby', 'k1')))
  t.ok(ttl > IDEMPOTENCY_TTL_MS - 10_000 && ttl <= IDEMPOTENCY_TTL_MS, `kept for IDEMPOTENCY_TTL_MS (${ttl} ms left)`)
  t.equal(await redis.command('XLEN', roomKeys('lobby').log), 1, 'stored once')
  const other = await store.run('other-room', 'k1', () => node.broker.publish('other-room', 'ops', 'elsewhere', { idempotencyKey: 'k1' }))
  t.not(other.id, first.id, 'keys are per room')
  t.same(node.reported, [])
})

t.test('concurrent calls with one key, from two nodes: exactly one publishes, all get its receipt', async (t) => {
  const redis = await RedisServer.start(t)
  const a = await startRedisNode(t, redis, 'a')
  const b = await startRedisNode(t, redis, 'b')
  b.broker.subscribe('race')
  await b.broker.read('race', { limit: 1 })
  const stores = [new RedisIdempotencyStore<PublishReceipt>(a.command), new RedisIdempotencyStore<PublishReceipt>(b.command)]
  const nodes = [a, b]
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => {
    const node = nodes[i % 2]!
    return stores[i % 2]!.run('race', 'once', () => node.broker.publish('race', 'ops', `attempt ${i}`, { idempotencyKey: 'once' }))
  }))
  t.equal(new Set(answers.map((answer) => answer.id)).size, 1, 'one receipt for all')
  t.equal(await redis.command('XLEN', roomKeys('race').log), 1, 'stored once')
  await waitFor(() => b.delivered.length === 1, 'the message delivered')
  t.equal(b.delivered[0]?.id, answers[0]?.id)
})

t.test('a repeat refused before the broker (invalid body) gets the first answer; without one, its own error', async (t) => {
  const redis = await RedisServer.start(t)
  const node = await startRedisNode(t, redis, 'a')
  const store = new RedisIdempotencyStore<PublishReceipt>(node.command)
  const invalid = async (): Promise<PublishReceipt> => { throw new Error('text: expected a string') }
  await t.rejects(store.run('lobby', 'k2', invalid), { message: 'text: expected a string' }, 'no first call: the body is refused')
  const first = await store.run('lobby', 'k2', () => node.broker.publish('lobby', 'ops', 'valid', { idempotencyKey: 'k2' }))
  t.same(await store.run('lobby', 'k2', invalid), first, 'whatever its own body says')
})

t.test('a first call the broker refuses records nothing: the key may be retried', async (t) => {
  const redis = await RedisServer.start(t)
  const node = await startRedisNode(t, redis, 'a')
  const store = new RedisIdempotencyStore<PublishReceipt>(node.command)
  await redis.command('SET', roomKeys('broken').log, 'not a stream')
  await t.rejects(store.run('broken', 'k3', () => node.broker.publish('broken', 'ops', 'hi', { idempotencyKey: 'k3' })), BrokerUnavailableError)
  t.equal(await redis.command('EXISTS', idempotencyKey('broken', 'k3')), 0, 'no key recorded')
  await redis.command('DEL', roomKeys('broken').log)
  const retried = await store.run('broken', 'k3', () => node.broker.publish('broken', 'ops', 'hi', { idempotencyKey: 'k3' }))
  t.match(retried, { room: 'broken', id: /-\d+$/ }, 'the retry publishes')
})

t.test('Redis away while looking a key up: unavailable, not the body\'s error', async (t) => {
  const redis = await RedisServer.start(t)
  const node = await startRedisNode(t, redis, 'a')
  const store = new RedisIdempotencyStore<PublishReceipt>(node.command)
  await redis.stop()
  await waitFor(() => node.command.status !== 'ready', 'the client sees Redis gone')
  await t.rejects(store.run('lobby', 'k4', async () => { throw new Error('invalid body') }), BrokerUnavailableError)
  await t.rejects(store.run('lobby', 'k4', () => node.broker.publish('lobby', 'ops', 'hi', { idempotencyKey: 'k4' })), { name: 'BrokerUnavailableError', message: /nothing was published/ })
})
