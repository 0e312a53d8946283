// Unit tests of lib/in-flight-limit.ts: tasks are promises the test settles.
import t from 'tap'
import { InFlightLimit } from '../../lib/in-flight-limit.js'

function deferred () {
  let settle = { resolve: (_value: string) => {}, reject: (_error: Error) => {} }
  const promise = new Promise<string>((resolve, reject) => { settle = { resolve, reject } })
  return { promise, resolve: (value: string) => settle.resolve(value), reject: (error: Error) => settle.reject(error) }
}

const settle = () => new Promise((resolve) => setImmediate(resolve))

t.test('at most max tasks run; the others start in order as slots free up, failures included', async (t) => {
  const limit = new InFlightLimit(2)
  const tasks = Array.from({ length: 5 }, () => deferred())
  const started: number[] = []
  const results = tasks.map((task, i) => limit.run(async () => {
    started.push(i)
    return await task.promise
  }).catch((error: Error) => `failed: ${error.message}`))
  await settle()
  t.same(started, [0, 1])
  t.same([limit.inFlight, limit.queued], [2, 3])
  tasks[1]?.reject(new Error('timed out'))
  await settle()
  t.same(started, [0, 1, 2], 'a failed task frees its slot too')
  tasks[0]?.resolve('zero')
  tasks[2]?.resolve('two')
  await settle()
  t.same(started, [0, 1, 2, 3, 4])
  tasks[3]?.resolve('three')
  tasks[4]?.resolve('four')
  t.same(await Promise.all(results), ['zero', 'failed: timed out', 'two', 'three', 'four'])
  t.same([limit.inFlight, limit.queued], [0, 0])
})

t.test('a long queue drains in order (the queue is compacted as it goes)', async (t) => {
  const limit = new InFlightLimit(3)
  const order: number[] = []
  await Promise.all(Array.from({ length: 10_000 }, (_, i) => limit.run(async () => {
    await null
    order.push(i)
  })))
  t.equal(order.length, 10_000)
  t.ok(order.every((value, i) => value === i), 'started and finished in order')
  t.same([limit.inFlight, limit.queued], [0, 0])
})
