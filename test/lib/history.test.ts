// Unit tests of lib/history.ts: the per-room ring of recent messages.
import t from 'tap'
import type { StoredMessage } from '../../lib/frames.js'
import { HistoryRing } from '../../lib/history.js'

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
