// lib/redis-idempotency.ts against a real redis-server started by the test:
// the first call claims the key, repeats wait for its result or take the key
// over once it is freed, and Redis going away is a BrokerUnavailableError.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { BrokerUnavailableError } from '../../lib/broker.js'
import { IDEMPOTENCY_WAIT_MS } from '../../lib/limits.js'
import { RedisIdempotencyStore } from '../../lib/redis-idempotency.js'
import { idempotencyKey } from '../../lib/redis-scripts.js'
import { RedisServer } from '../helpers/redis-server.js'
import { sleep, waitFor } from '../helpers/wait.js'

/** What the store writes while the first call runs (lib/redis-idempotency.ts). */
const IN_FLIGHT = '\u0000in-flight'

/** A client as the service configures one: no offline queue, no retries, so a command fails at once when Redis is away. */
async function client (t: Test, redis: RedisServer): Promise<Redis> {
  const connection = new Redis(redis.port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true })
  connection.on('error', () => {})
  await connection.connect()
  t.teardown(() => connection.disconnect())
  return connection
}

/** The store's report of an unexpected error: none is expected here (Redis away is expected, and quiet). */
function unexpected (t: Test) {
  return (error: unknown, context: string) => t.fail(`unexpected error reported (${context}): ${String(error)}`)
}

/** A unit of work that counts its runs and answers with its run number. */
function counted () {
  let runs = 0
  return { get runs () { return runs }, work: async () => ({ run: ++runs }) }
}

t.test('a repeat returns the stored result without running its work', async (t) => {
  const redis = await RedisServer.start(t)
  const store = new RedisIdempotencyStore<{ run: number }>(await client(t, redis), unexpected(t))
  const job = counted()
  t.same(await store.run('lobby', 'k1', job.work), { run: 1 })
  t.same(await store.run('lobby', 'k1', job.work), { run: 1 }, 'the first answer again')
  t.equal(job.runs, 1)
  t.same(await store.run('other-room', 'k1', job.work), { run: 2 }, 'keys are per room')
  t.same(JSON.parse(await redis.command('GET', idempotencyKey('lobby', 'k1')) as string), { run: 1 }, 'the result is kept in Redis')
})

t.test('a repeat waits for the call in flight and returns its result', async (t) => {
  const redis = await RedisServer.start(t)
  const store = new RedisIdempotencyStore<{ run: number }>(await client(t, redis), unexpected(t))
  const id = idempotencyKey('lobby', 'k2')
  await redis.command('SET', id, IN_FLIGHT, 'PX', 60_000)
  const job = counted()
  let settled = false
  const repeat = store.run('lobby', 'k2', job.work).finally(() => { settled = true })
  await sleep(200)
  t.notOk(settled, 'still waiting while the marker is there')
  // Another node's first call finishes.
  await redis.command('SET', id, JSON.stringify({ run: 41 }), 'PX', 60_000)
  t.same(await repeat, { run: 41 }, 'the other call\'s answer')
  t.equal(job.runs, 0, 'its own work never ran')
})

t.test('a repeat whose first call failed (key freed) runs its own work', async (t) => {
  const redis = await RedisServer.start(t)
  const store = new RedisIdempotencyStore<{ run: number }>(await client(t, redis), unexpected(t))
  const id = idempotencyKey('lobby', 'k3')
  await redis.command('SET', id, IN_FLIGHT, 'PX', 60_000)
  const job = counted()
  const repeat = store.run('lobby', 'k3', job.work)
  await sleep(100)
  await redis.command('DEL', id)
  t.same(await repeat, { run: 1 })
  t.equal(job.runs, 1)
})

t.test('a first call that fails frees the key for the next one', async (t) => {
  const redis = await RedisServer.start(t)
  const store = new RedisIdempotencyStore<{ run: number }>(await client(t, redis), unexpected(t))
  await t.rejects(store.run('lobby', 'k4', async () => { throw new Error('publish failed') }), { message: 'publish failed' }, 'the work\'s own error')
  t.equal(await redis.command('EXISTS', idempotencyKey('lobby', 'k4')), 0, 'no marker left behind')
  const job = counted()
  t.same(await store.run('lobby', 'k4', job.work), { run: 1 }, 'the next call runs')
})

t.test('a call still in flight past the wait is refused as unavailable', async (t) => {
  const redis = await RedisServer.start(t)
  const store = new RedisIdempotencyStore<{ run: number }>(await client(t, redis), unexpected(t))
  await redis.command('SET', idempotencyKey('lobby', 'k5'), IN_FLIGHT, 'PX', 60_000)
  // The store reads Date.now(): moved past its wait once the repeat has started.
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  const job = counted()
  const repeat = store.run('lobby', 'k5', job.work)
  Date.now = () => realNow() + IDEMPOTENCY_WAIT_MS
  await t.rejects(repeat, new BrokerUnavailableError('an earlier call with this Idempotency-Key is still in flight; try again'))
  t.equal(job.runs, 0)
})

t.test('Redis away: BrokerUnavailableError, nothing run', async (t) => {
  const redis = await RedisServer.start(t)
  const connection = await client(t, redis)
  const store = new RedisIdempotencyStore<{ run: number }>(connection, unexpected(t))
  const job = counted()

  // Away while a repeat polls the marker (the GET fails).
  await redis.command('SET', idempotencyKey('lobby', 'k6'), IN_FLIGHT, 'PX', 60_000)
  const polling = store.run('lobby', 'k6', job.work).catch((error: unknown) => error)
  await sleep(100)
  await redis.stop()
  const pollError = await polling
  t.ok(pollError instanceof BrokerUnavailableError, 'a BrokerUnavailableError while waiting')
  t.match((pollError as Error).message, /Redis could not check the Idempotency-Key/)

  // Away before the claim (the SET NX fails).
  await waitFor(() => connection.status !== 'ready', 'the client sees Redis gone')
  const error = await store.run('lobby', 'k7', job.work).catch((error: unknown) => error)
  t.ok(error instanceof BrokerUnavailableError, 'a BrokerUnavailableError')
  t.match((error as Error).message, /nothing was published/)
  t.equal(job.runs, 0, 'no work ran')
})

t.test('Redis away while the first call runs: its result or error is still the answer', async (t) => {
  const redis = await RedisServer.start(t)
  const store = new RedisIdempotencyStore<{ run: number }>(await client(t, redis), unexpected(t))
  // Remembering the result is best effort.
  t.same(await store.run('lobby', 'k8', async () => { await redis.stop(); return { run: 7 } }), { run: 7 })
  await redis.restart()
  const again = new RedisIdempotencyStore<{ run: number }>(await client(t, redis), unexpected(t))
  // Freeing the key after a failure is best effort too: the work's error is what the caller sees.
  await t.rejects(again.run('lobby', 'k9', async () => { await redis.stop(); throw new Error('publish failed') }), { message: 'publish failed' })
})
