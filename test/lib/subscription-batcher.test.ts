// Unit tests of lib/subscription-batcher.ts: the commands it would send are
// recorded, and each is answered (or failed) by the test, so pacing, order
// and failures are exact. The flush runs when the test says (`defer`).
import t from 'tap'
import { SubscriptionBatcher } from '../../lib/subscription-batcher.js'

interface Sent {
  kind: 'subscribe' | 'unsubscribe'
  channels: string[]
  answer: () => void
  fail: (error: Error) => void
}

function setup (chunkChannels = 3, maxInFlight = 2) {
  const sent: Sent[] = []
  let flush: (() => void) | undefined
  const command = (kind: Sent['kind']) => (channels: string[]) => new Promise<unknown>((resolve, reject) => {
    sent.push({ kind, channels, answer: () => resolve(channels.length), fail: reject })
  })
  const batcher = new SubscriptionBatcher({
    subscribe: command('subscribe'),
    unsubscribe: command('unsubscribe'),
    chunkChannels,
    maxInFlight,
    defer: (run) => { flush = run }
  })
  const turn = () => {
    const run = flush
    flush = undefined
    run?.()
  }
  return { batcher, sent, turn }
}

/** Lets promise callbacks run (answers settle requests, which may send more). */
const settle = () => new Promise((resolve) => setImmediate(resolve))

t.test('requests of one turn are coalesced into chunks, at most maxInFlight at a time, in order', async (t) => {
  const { batcher, sent, turn } = setup()
  const done: string[] = []
  for (const channel of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) batcher.subscribe([channel]).then(() => done.push(channel), () => {})
  t.equal(sent.length, 0, 'nothing before the turn ends')
  turn()
  t.same(sent.map((s) => s.channels), [['a', 'b', 'c'], ['d', 'e', 'f']], 'two chunks of three in flight')
  t.equal(batcher.pending, 1, 'g waits in the node')
  sent[0]?.answer()
  await settle()
  t.same(done, ['a', 'b', 'c'])
  t.same(sent[2]?.channels, ['g'], 'the freed slot takes the next chunk')
  sent[1]?.answer()
  sent[2]?.answer()
  await settle()
  t.same(done, ['a', 'b', 'c', 'd', 'e', 'f', 'g'])
  t.equal(batcher.pending, 0)
})

t.test('a big request is split across chunks and settles once all of them are answered', async (t) => {
  const { batcher, sent, turn } = setup(2, 1)
  let settled = false
  batcher.subscribe(['a', 'b', 'c', 'd', 'e']).then(() => { settled = true }, () => {})
  turn()
  for (const expected of [['a', 'b'], ['c', 'd'], ['e']]) {
    t.same(sent.at(-1)?.channels, expected)
    t.notOk(settled, 'not before the last chunk is answered')
    sent.at(-1)?.answer()
    await settle()
  }
  t.ok(settled)
  t.equal(sent.length, 3, 'one command per chunk, one at a time')
})

t.test('subscribe and unsubscribe never share a command, and keep their order', async (t) => {
  const { batcher, sent, turn } = setup(10, 10)
  batcher.subscribe(['a']).catch(() => {})
  batcher.subscribe(['b']).catch(() => {})
  batcher.unsubscribe(['a']).catch(() => {})
  batcher.subscribe(['a']).catch(() => {})
  turn()
  t.same(sent.map((s) => [s.kind, s.channels]), [
    ['subscribe', ['a', 'b']],
    ['unsubscribe', ['a']],
    ['subscribe', ['a']]
  ], 'a ends subscribed, as asked last')
})

t.test('a failed command rejects every request it carried, once, and the queue goes on', async (t) => {
  const { batcher, sent, turn } = setup(2, 1)
  const outcomes: string[] = []
  batcher.subscribe(['a']).then(() => outcomes.push('a ok'), (error: Error) => outcomes.push(`a ${error.message}`))
  batcher.subscribe(['b', 'c', 'd']).then(() => outcomes.push('bcd ok'), (error: Error) => outcomes.push(`bcd ${error.message}`))
  batcher.subscribe(['e']).then(() => outcomes.push('e ok'), (error: Error) => outcomes.push(`e ${error.message}`))
  turn()
  sent[0]?.fail(new Error('Command timed out'))
  await settle()
  t.same(outcomes, ['a Command timed out', 'bcd Command timed out'])
  t.same(sent[1]?.channels, ['c', 'd'], 'the rest of a failed request still goes out')
  sent[1]?.answer()
  await settle()
  t.same(sent[2]?.channels, ['e'])
  sent[2]?.answer()
  await settle()
  t.same(outcomes, ['a Command timed out', 'bcd Command timed out', 'e ok'], 'bcd is not settled twice; e is not affected')
})

t.test('a command that throws instead of rejecting fails its requests the same way', async (t) => {
  const batcher = new SubscriptionBatcher({
    subscribe: () => { throw new Error('Connection in subscriber mode') },
    unsubscribe: async () => 0,
    defer: (run) => run()
  })
  await t.rejects(batcher.subscribe(['a']), /Connection in subscriber mode/)
  await t.resolves(batcher.unsubscribe(['a']))
  // A rejection without a reason is a failure all the same.
  const silent = new SubscriptionBatcher({
    subscribe: async () => 0,
    // eslint-disable-next-line prefer-promise-reject-errors -- the case under test
    unsubscribe: () => Promise.reject(undefined),
    defer: (run) => run()
  })
  await t.rejects(silent.unsubscribe(['a']), /unsubscribe failed/)
})

t.test('nothing to do: an empty request resolves at once and sends nothing', async (t) => {
  const { batcher, sent, turn } = setup()
  await batcher.subscribe([])
  turn()
  t.equal(sent.length, 0)
})

t.test('the queue is compacted as it drains: 20k requests go out in order', async (t) => {
  const { batcher, sent, turn } = setup(1000, 4)
  const requests = Array.from({ length: 20_000 }, (_, i) => batcher.subscribe([`c${i}`]))
  turn()
  for (let answered = 0; answered < sent.length; answered++) {
    sent[answered]?.answer()
    await settle()
  }
  await Promise.all(requests)
  t.equal(sent.length, 20)
  t.same(sent.flatMap((s) => s.channels), Array.from({ length: 20_000 }, (_, i) => `c${i}`))
})

t.test('by default the flush runs after the current turn (setImmediate), with the limits of lib/limits.ts', async (t) => {
  const sent: string[][] = []
  const batcher = new SubscriptionBatcher({ subscribe: async (channels) => sent.push(channels), unsubscribe: async () => 0 })
  const done = batcher.subscribe(['x'])
  t.equal(sent.length, 0)
  await done
  t.same(sent, [['x']])
})
