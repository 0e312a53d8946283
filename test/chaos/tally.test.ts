// The chaos matrix's counting (chaos/lib/tally.ts): each column catches what
// it names, and only that, against a room's log.
import t from 'tap'
import { tally, type ReceiverRecord, type SenderRecord } from '../../chaos/lib/tally.js'

function sender (room: string, acked: string[], more: Partial<SenderRecord> = {}): SenderRecord {
  return { room, sent: acked.length, acked, refused: 0, unknown: 0, ...more }
}

function receiver (member: string, rooms: Record<string, string[]>): ReceiverRecord {
  return { member, received: new Map(Object.entries(rooms)) }
}

const history = new Map([['r', ['1', '2', '3', '4']]])

t.test('every member got the whole log once, in order: all zero', async (t) => {
  const counts = tally([sender('r', ['1', '2', '3', '4'])], [receiver('m1', { r: ['1', '2', '3', '4'] }), receiver('m2', { r: ['1', '2', '3', '4'] })], history)
  t.same(counts, { sent: 4, acked: 4, refused: 0, unknown: 0, lost: 0, duplicated: 0, reordered: 0, ackedThenMissing: 0, phantom: 0 })
})

t.test('a message missing at one member: lost, and acked-then-missing when it was acknowledged', async (t) => {
  const counts = tally([sender('r', ['1', '2', '3'], { sent: 4, unknown: 1 })], [receiver('m1', { r: ['1', '3', '4'] }), receiver('m2', { r: ['1', '2', '3'] })], history)
  t.equal(counts.lost, 2, 'm1 lacks 2, m2 lacks 4 (stored after a timeout)')
  t.equal(counts.ackedThenMissing, 1, 'only 2 was acknowledged')
  t.equal(counts.unknown, 1)
})

t.test('a repeat is duplicated, an earlier message after a later one is reordered', async (t) => {
  const counts = tally([sender('r', ['1', '2', '3', '4'])], [receiver('m1', { r: ['1', '3', '2', '3', '4'] })], history)
  t.equal(counts.duplicated, 1)
  t.equal(counts.reordered, 1, '2 after 3')
  t.equal(counts.lost, 0)
})

t.test('an acknowledged message the log lacks is acked-then-missing even where every member has it', async (t) => {
  const counts = tally([sender('r', ['1', '2', '3', '4', '5'])], [receiver('m1', { r: ['1', '2', '3', '4', '5'] })], history)
  t.equal(counts.ackedThenMissing, 1)
  t.equal(counts.lost, 0)
  t.equal(counts.phantom, 0, 'acknowledged, so not a phantom')
})

t.test('a message neither stored nor acknowledged is a phantom', async (t) => {
  const counts = tally([sender('r', ['1', '2', '3', '4'])], [receiver('m1', { r: ['1', '2', 'x', '3', '4'] })], history)
  t.equal(counts.phantom, 1)
  t.equal(counts.reordered, 0)
})
