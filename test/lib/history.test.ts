// Unit tests of lib/history.ts: the per-room ring of recent messages, its
// count and byte caps.
import t from 'tap'
import type { StoredMessage } from '../../lib/frames.js'
import { HistoryRing, messageCost } from '../../lib/history.js'
import { HISTORY_MESSAGE_OVERHEAD_BYTES } from '../../lib/limits.js'

function message (seq: number): StoredMessage {
  return { room: 'r', id: `e-${seq}`, seq, from: 'a', text: `m${seq}`, ts: seq }
}

function fill (capacity: number, count: number): HistoryRing {
  const ring = new HistoryRing(capacity)
  for (let seq = 1; seq <= count; seq++) ring.push(message(seq))
  return ring
}

const seqs = (messages: StoredMessage[] | undefined) => messages?.map((m) => m.seq)

t.test('an empty ring', async (t) => {
  const ring = new HistoryRing(3)
  t.equal(ring.size, 0)
  t.same(ring.recent(10), [])
  t.same(ring.after(0, 10), [], 'after 0 in an empty log is nothing, not a gap')
  t.equal(ring.after(5, 10), undefined, 'after a sequence this ring never held is unknown')
})

t.test('below capacity: everything is kept, oldest first', async (t) => {
  const ring = fill(5, 3)
  t.equal(ring.size, 3)
  t.same(seqs(ring.recent(10)), [1, 2, 3])
  t.same(seqs(ring.recent(2)), [2, 3], 'recent is the newest, oldest first')
  t.same(seqs(ring.recent(0)), [])
  t.same(seqs(ring.after(0, 10)), [1, 2, 3])
  t.same(seqs(ring.after(1, 10)), [2, 3])
  t.same(seqs(ring.after(3, 10)), [], 'nothing after the newest')
  t.same(seqs(ring.after(1, 1)), [2], 'after is bounded by the limit, from the oldest')
})

t.test('wrap-around keeps the newest `capacity` in order', async (t) => {
  const ring = fill(3, 7)
  t.equal(ring.size, 3, 'size stays at capacity')
  t.same(seqs(ring.recent(10)), [5, 6, 7])
  t.same(seqs(ring.recent(2)), [6, 7])
  t.same(seqs(ring.after(4, 10)), [5, 6, 7], 'after the message just before the oldest kept: all of them')
  t.same(seqs(ring.after(5, 10)), [6, 7])
  t.same(seqs(ring.after(6, 1)), [7])
  t.same(seqs(ring.after(7, 10)), [])

  // Every position of the start pointer gives the same ordered view.
  const wrap = new HistoryRing(4)
  for (let seq = 1; seq <= 20; seq++) {
    wrap.push(message(seq))
    const expected = Array.from({ length: Math.min(seq, 4) }, (_, i) => seq - Math.min(seq, 4) + 1 + i)
    t.same(seqs(wrap.recent(4)), expected, `after ${seq} pushes`)
  }
})

t.test('after a trimmed sequence is undefined', async (t) => {
  const ring = fill(3, 7) // keeps 5, 6, 7
  t.equal(ring.after(3, 10), undefined, 'message 4 was trimmed away')
  t.equal(ring.after(1, 10), undefined)
  t.equal(ring.after(0, 10), undefined, 'from the very start, but the start is gone')
})

t.test('a ring of one', async (t) => {
  const ring = fill(1, 3)
  t.same(seqs(ring.recent(5)), [3])
  t.same(seqs(ring.after(2, 5)), [3])
  t.equal(ring.after(1, 5), undefined)
})

t.test('the ring hands back the stored objects themselves', async (t) => {
  const ring = new HistoryRing(2)
  const first = message(1)
  ring.push(first)
  t.equal(ring.recent(1)[0], first)
})

function sized (seq: number, text: string): StoredMessage {
  return { room: 'r', id: `e-${seq}`, seq, from: 'a', text, ts: seq }
}

t.test('messageCost: UTF-8 bytes of the text plus the fixed overhead', async (t) => {
  t.equal(messageCost(sized(1, 'abc')), 3 + HISTORY_MESSAGE_OVERHEAD_BYTES)
  t.equal(messageCost(sized(1, 'é')), 2 + HISTORY_MESSAGE_OVERHEAD_BYTES, 'two bytes in UTF-8')
  t.equal(messageCost(sized(1, '😀'.repeat(4096))), 16384 + HISTORY_MESSAGE_OVERHEAD_BYTES, 'a max-size astral text: 16 KB')
})

t.test('the byte cap trims the oldest, whichever of the two caps comes first', async (t) => {
  const cost = messageCost(sized(1, 'x'.repeat(100)))
  const ring = new HistoryRing(10, cost * 3)
  const deltas: number[] = []
  for (let seq = 1; seq <= 5; seq++) deltas.push(ring.push(sized(seq, 'x'.repeat(100))))
  t.same(seqs(ring.recent(10)), [3, 4, 5], 'three fit in the bytes, though ten fit in the count')
  t.equal(ring.bytes, cost * 3)
  t.same(deltas, [cost, cost, cost, 0, 0], 'push reports the change in bytes held')
  t.equal(ring.after(1, 10), undefined, 'a resume from a trimmed position is unknown')
  t.same(seqs(ring.after(2, 10)), [3, 4, 5])

  // One big message pushes out several small ones.
  const big = sized(6, 'y'.repeat(100 + cost))
  t.equal(ring.push(big), messageCost(big) - cost * 2, 'two small ones had to go')
  t.same(seqs(ring.recent(10)), [5, 6])

  const counted = new HistoryRing(2, 1_000_000)
  for (let seq = 1; seq <= 4; seq++) counted.push(sized(seq, 'z'))
  t.same(seqs(counted.recent(10)), [3, 4], 'the count still caps when bytes are plentiful')
  t.equal(counted.bytes, 2 * messageCost(sized(1, 'z')))
})

t.test('a message bigger than the cap alone is not kept; positions stay known', async (t) => {
  const ring = new HistoryRing(10, 1024)
  ring.push(sized(1, 'small'))
  t.equal(ring.push(sized(2, 'x'.repeat(2000))), -messageCost(sized(1, 'small')), 'nothing is held after it')
  t.equal(ring.size, 0)
  t.equal(ring.bytes, 0)
  t.same(ring.after(2, 10), [], 'after the newest: nothing missed')
  t.equal(ring.after(1, 10), undefined, 'after the one before: message 2 is gone')
  ring.push(sized(3, 'next'))
  t.same(seqs(ring.after(2, 10)), [3])
})

t.test('clear forgets the messages, frees their bytes, keeps the position', async (t) => {
  const ring = new HistoryRing(10, 100_000)
  for (let seq = 1; seq <= 4; seq++) ring.push(sized(seq, 'hello'))
  const held = ring.bytes
  t.equal(ring.clear(), held)
  t.equal(ring.bytes, 0)
  t.same(ring.recent(10), [])
  t.same(ring.after(4, 10), [], 'a client that had everything missed nothing')
  t.equal(ring.after(3, 10), undefined, 'one that had less cannot be served')
  ring.push(sized(5, 'after'))
  t.same(seqs(ring.after(4, 10)), [5], 'the ring goes on after a clear')
})
