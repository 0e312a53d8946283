// Unit tests of lib/idempotency.ts (the single-node store) with an injected clock.
import t from 'tap'
import { MemoryIdempotencyStore } from '../../lib/idempotency.js'
import { IDEMPOTENCY_TTL_MS } from '../../lib/limits.js'

function clock () {
  let now = 1_000_000
  return { now: () => now, advance (ms: number) { now += ms } }
}

/** A unit of work that counts its runs and answers with its run number. */
function counted () {
  let runs = 0
  return {
    get runs () { return runs },
    work: async () => ({ run: ++runs })
  }
}

/** A promise settled from outside. */
function deferred<T> () {
  let resolve!: (value: T) => void
  let reject!: (error: Error) => void
  const promise = new Promise<T>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
  return { promise, resolve, reject }
}

t.test('a repeat returns the first result without running again', async (t) => {
  const store = new MemoryIdempotencyStore<{ run: number }>()
  const job = counted()
  const first = await store.run('lobby', 'k1', job.work)
  const again = await store.run('lobby', 'k1', job.work)
  t.same(first, { run: 1 })
  t.equal(again, first, 'the very same result')
  t.equal(job.runs, 1)
  t.equal(store.size, 1)
})

t.test('different keys run separately', async (t) => {
  const store = new MemoryIdempotencyStore<{ run: number }>()
  const job = counted()
  t.same(await store.run('lobby', 'k1', job.work), { run: 1 })
  t.same(await store.run('lobby', 'k2', job.work), { run: 2 })
  t.equal(job.runs, 2)
})

t.test('keys are per room', async (t) => {
  const store = new MemoryIdempotencyStore<{ run: number }>()
  const job = counted()
  t.same(await store.run('a', 'same', job.work), { run: 1 })
  t.same(await store.run('b', 'same', job.work), { run: 2 }, 'the same key in another room runs again')
  t.same(await store.run('a', 'same', job.work), { run: 1 })
  t.same(await store.run('b', 'same', job.work), { run: 2 })
  // A room and key that concatenate alike are still distinct.
  t.same(await store.run('ab', 'c', job.work), { run: 3 })
  t.same(await store.run('a', 'bc', job.work), { run: 4 })
  t.equal(job.runs, 4)
})

t.test('a concurrent repeat waits for the first call', async (t) => {
  const store = new MemoryIdempotencyStore<string>()
  const gate = deferred<string>()
  let runs = 0
  const work = () => { runs++; return gate.promise }
  const first = store.run('r', 'k', work)
  const second = store.run('r', 'k', work)
  let settled = false
  second.then(() => { settled = true }, () => {})
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(settled, false, 'the repeat is still waiting')
  t.equal(runs, 1, 'the work ran once')
  gate.resolve('done')
  t.equal(await first, 'done')
  t.equal(await second, 'done')
  t.equal(runs, 1)
})

t.test('a failed first call stores nothing', async (t) => {
  const store = new MemoryIdempotencyStore<string>()
  await t.rejects(store.run('r', 'k', async () => { throw new Error('broker down') }), { message: 'broker down' })
  t.equal(store.size, 0)
  t.equal(await store.run('r', 'k', async () => 'second try'), 'second try', 'the key may be retried')
  t.equal(await store.run('r', 'k', async () => 'third'), 'second try', 'and the retry is remembered')
})

t.test('a repeat waiting on a call that fails gets the failure, then the key is free', async (t) => {
  const store = new MemoryIdempotencyStore<string>()
  const gate = deferred<string>()
  const first = store.run('r', 'k', () => gate.promise)
  const second = store.run('r', 'k', async () => 'never')
  gate.reject(new Error('nope'))
  await t.rejects(first, { message: 'nope' })
  await t.rejects(second, { message: 'nope' })
  t.equal(store.size, 0)
  t.equal(await store.run('r', 'k', async () => 'fresh'), 'fresh')
})

t.test('keys expire after the TTL', async (t) => {
  const time = clock()
  const store = new MemoryIdempotencyStore<{ run: number }>(1000, 100, time.now)
  const job = counted()
  await store.run('r', 'k', job.work)
  time.advance(999)
  t.same(await store.run('r', 'k', job.work), { run: 1 }, 'still remembered just before the TTL')
  time.advance(1)
  t.same(await store.run('r', 'k', job.work), { run: 2 }, 'forgotten at the TTL')
  t.equal(job.runs, 2)
})

t.test('expired keys are dropped when others are used', async (t) => {
  const time = clock()
  const store = new MemoryIdempotencyStore<{ run: number }>(1000, 100, time.now)
  const job = counted()
  for (let i = 0; i < 10; i++) await store.run('r', `k${i}`, job.work)
  t.equal(store.size, 10)
  time.advance(1000)
  await store.run('r', 'fresh', job.work)
  t.equal(store.size, 1, 'only the fresh key remains')
})

t.test('the default TTL is five minutes', async (t) => {
  t.equal(IDEMPOTENCY_TTL_MS, 5 * 60 * 1000)
  const time = clock()
  const store = new MemoryIdempotencyStore<{ run: number }>(undefined, undefined, time.now)
  const job = counted()
  await store.run('r', 'k', job.work)
  time.advance(5 * 60 * 1000 - 1)
  t.same(await store.run('r', 'k', job.work), { run: 1 })
  time.advance(1)
  t.same(await store.run('r', 'k', job.work), { run: 2 })
})

t.test('at most maxKeys are kept, the oldest forgotten first', async (t) => {
  const time = clock()
  const store = new MemoryIdempotencyStore<{ run: number }>(60_000, 3, time.now)
  const job = counted()
  for (const key of ['a', 'b', 'c', 'd']) {
    await store.run('r', key, job.work)
    time.advance(1)
  }
  t.equal(store.size, 3)
  t.same(await store.run('r', 'd', job.work), { run: 4 }, 'the newest is kept')
  t.same(await store.run('r', 'c', job.work), { run: 3 })
  t.same(await store.run('r', 'a', job.work), { run: 5 }, 'the oldest was forgotten and runs again')
  t.equal(job.runs, 5)
  t.ok(store.size <= 3)
})
