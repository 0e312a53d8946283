// Unit tests of lib/room-sequencer.ts without Redis: a fake room log, reads
// that can be held or made to fail, and an injected retry timer run by hand.
import t, { type Test } from 'tap'
import type { StoredMessage } from '../../lib/frames.js'
import { formatMessageId } from '../../lib/message-id.js'
import { type LogPosition, type MissedBatch, RoomSequencer } from '../../lib/room-sequencer.js'

function message (seq: number, epoch = 'e1'): StoredMessage {
  return { room: 'r', id: formatMessageId(epoch, seq), seq, from: 'alice', text: `m${seq}`, ts: seq }
}

/** Lets every queued promise callback run (no timer fires: retries are injected). */
function settle (): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

interface Gate {
  promise: Promise<void>
  open: () => void
}

function gate (): Gate {
  let open = () => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

/** A room's log as Redis would hold it, with reads that can be held (`gate`) or fail (`failures`). */
class FakeLog {
  epoch: string | null = 'e1'
  messages: StoredMessage[] = []
  failures = 0
  /** The last sequence the log issued, when it keeps fewer messages than it issued (historySize 0). */
  issued: number | undefined
  gate: Gate | undefined
  readonly reads: number[] = []

  append (...seqs: number[]): void {
    for (const seq of seqs) this.messages.push(message(seq, this.epoch ?? 'none'))
  }

  /** Answers from the log as it is when called (as Redis would); a gate only delays the reply. */
  async after (seq: number, limit: number): Promise<MissedBatch> {
    this.reads.push(seq)
    const failed = this.failures > 0
    if (failed) this.failures--
    const last = this.issued ?? this.messages.at(-1)?.seq ?? 0
    const batch = { epoch: this.epoch, last, messages: this.messages.filter((m) => m.seq > seq).slice(0, limit) }
    if (this.gate) await this.gate.promise
    if (failed) throw new Error('Connection is closed.')
    return batch
  }
}

interface Options {
  position?: LogPosition
  pendingMax?: number
  batch?: number
  startFailures?: number
}

function setup (t: Test, options: Options = {}) {
  const log = new FakeLog()
  const delivered: string[] = []
  const errors: unknown[] = []
  const counters = { gapsDetected: 0, messagesRepaired: 0 }
  const timers = new Set<() => void>()
  let startFailures = options.startFailures ?? 0
  let positionReads = 0
  let positionGate: Gate | undefined
  const sequencer = new RoomSequencer({
    readPosition: async () => {
      positionReads++
      if (positionGate) await positionGate.promise
      if (startFailures > 0) {
        startFailures--
        throw new Error('Command timed out')
      }
      return options.position ?? { epoch: 'e1', seq: 0 }
    },
    readAfter: (seq, limit) => log.after(seq, limit),
    deliver: (m) => delivered.push(m.id),
    schedule: (retry) => {
      timers.add(retry)
      return () => timers.delete(retry)
    },
    onReadError: (error) => errors.push(error),
    counters,
    pendingMax: options.pendingMax,
    batch: options.batch
  })
  t.teardown(() => sequencer.stop())
  /** Runs the retries scheduled so far, as the timer would. */
  const fireTimers = () => {
    const due = [...timers]
    timers.clear()
    for (const retry of due) retry()
  }
  return {
    sequencer,
    log,
    delivered,
    errors,
    counters,
    timers,
    fireTimers,
    get positionReads () { return positionReads },
    holdPosition: () => (positionGate = gate())
  }
}

const ids = (epoch: string, ...seqs: number[]) => seqs.map((seq) => formatMessageId(epoch, seq))

/** A sequencer started at e1-3 whose log has 1..3. */
async function startedAt3 (t: Test, options: Options = {}) {
  const s = setup(t, { position: { epoch: 'e1', seq: 3 }, ...options })
  s.log.append(1, 2, 3)
  s.sequencer.start()
  await settle()
  return s
}

t.test('start: the log position is the baseline; messages held meanwhile are delivered after it, in order', async (t) => {
  const s = setup(t, { position: { epoch: 'e1', seq: 2 } })
  s.log.append(1, 2)
  const position = s.holdPosition()
  s.sequencer.start()
  t.equal(s.sequencer.isStarted, false)
  // Live messages that arrive while the position is read: one already in the baseline, two after it.
  for (const seq of [2, 3, 4]) s.sequencer.offer('e1', message(seq))
  let started = false
  s.sequencer.started.then(() => { started = true }, () => {})
  await settle()
  t.same(s.delivered, [], 'nothing before the start')
  position.open()
  await settle()
  t.equal(started, true, '`started` resolves')
  t.same(s.sequencer.position, { epoch: 'e1', seq: 4 })
  t.same(s.delivered, ids('e1', 3, 4), 'the one in the baseline dropped, the rest in order')
  t.equal(s.counters.gapsDetected, 0)
})

t.test('next: delivered at once; duplicate or older: dropped', async (t) => {
  const s = await startedAt3(t)
  s.sequencer.offer('e1', message(4))
  t.same(s.delivered, ids('e1', 4), 'synchronously')
  s.sequencer.offer('e1', message(4))
  s.sequencer.offer('e1', message(2))
  s.sequencer.offer('e1', message(5))
  t.same(s.delivered, ids('e1', 4, 5), 'the duplicate and the older one are dropped')
  t.same(s.log.reads, [], 'no repair was needed')
  t.equal(s.counters.gapsDetected, 0)
})

t.test('jump: the gap is read from the log, then what arrived meanwhile, all in order', async (t) => {
  const s = await startedAt3(t)
  s.log.append(4, 5, 6, 7, 8)
  s.log.gate = gate()
  s.sequencer.offer('e1', message(6))
  t.equal(s.counters.gapsDetected, 1)
  t.same(s.log.reads, [3], 'reads after the last delivered sequence')
  s.sequencer.offer('e1', message(7))
  s.sequencer.offer('e1', message(8))
  t.same(s.delivered, [], 'later messages wait during the repair')
  s.log.gate.open()
  s.log.gate = undefined
  await settle()
  t.same(s.delivered, ids('e1', 4, 5, 6, 7, 8), 'once each, in order')
  t.equal(s.counters.messagesRepaired, 5, 'everything the log had after 3 counts as repaired')
  s.sequencer.offer('e1', message(9))
  t.same(s.delivered.at(-1), formatMessageId('e1', 9), 'live again')
})

t.test('jump: a gap longer than a batch is read in batches', async (t) => {
  const s = await startedAt3(t, { batch: 4 })
  s.log.append(4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
  s.sequencer.offer('e1', message(13))
  await settle()
  t.same(s.log.reads, [3, 7, 11], 'three batches of at most 4')
  t.same(s.delivered, ids('e1', 4, 5, 6, 7, 8, 9, 10, 11, 12, 13))
})

t.test('jump: a batch ending at the log\'s last sequence ends the repair without another read', async (t) => {
  const s = await startedAt3(t, { batch: 2 })
  s.log.append(4, 5)
  s.sequencer.offer('e1', message(5))
  await settle()
  t.same(s.log.reads, [3])
  t.same(s.delivered, ids('e1', 4, 5))
})

t.test('reconnect: held while the channel is down, then everything missed is read from the log', async (t) => {
  const s = await startedAt3(t)
  s.sequencer.hold()
  s.log.append(4, 5, 6)
  s.sequencer.offer('e1', message(6)) // arrived on the new subscription before the resync
  t.same(s.delivered, [], 'held')
  s.sequencer.resync()
  await settle()
  t.same(s.log.reads, [3])
  t.same(s.delivered, ids('e1', 4, 5, 6))
  t.equal(s.counters.gapsDetected, 0, 'a reconnect is not a gap')
})

t.test('reconnect before the start: the start is tried again, and the first baseline stands', async (t) => {
  const s = setup(t, { position: { epoch: 'e1', seq: 0 } })
  const position = s.holdPosition()
  s.sequencer.start()
  s.sequencer.hold()
  s.sequencer.resync()
  t.equal(s.positionReads, 2)
  position.open()
  await settle()
  t.equal(s.sequencer.isStarted, true)
  s.sequencer.offer('e1', message(1))
  t.same(s.delivered, ids('e1', 1))
  t.same(s.log.reads, [], 'no repair')
})

t.test('new epoch on the channel: the log started anew, its first message is delivered', async (t) => {
  const s = await startedAt3(t)
  s.sequencer.offer('e2', message(1, 'e2'))
  t.equal(s.counters.gapsDetected, 1, 'a lost log counts as a gap')
  t.same(s.delivered, ids('e2', 1))
  s.sequencer.offer('e2', message(2, 'e2'))
  t.same(s.delivered, ids('e2', 1, 2))
})

t.test('new epoch on the channel, ahead of its start: the new log is read from its beginning', async (t) => {
  const s = await startedAt3(t)
  s.log.epoch = 'e2'
  s.log.messages = []
  s.log.append(1, 2, 3)
  s.sequencer.offer('e2', message(3, 'e2'))
  await settle()
  t.same(s.log.reads, [0])
  t.same(s.delivered, ids('e2', 1, 2, 3))
})

t.test('new epoch found by a repair: the read starts again from the new log\'s beginning', async (t) => {
  const s = await startedAt3(t)
  s.sequencer.hold()
  s.log.epoch = 'e2'
  s.log.messages = []
  s.log.append(1, 2)
  s.sequencer.resync()
  await settle()
  t.same(s.log.reads, [3, 0], 'the read after 3 met epoch e2, so it read e2 from 0')
  t.same(s.delivered, ids('e2', 1, 2))
  t.same(s.sequencer.position, { epoch: 'e2', seq: 2 })
})

t.test('a room with no log yet: its first epoch is no gap; a repair that finds no log delivers nothing', async (t) => {
  const s = setup(t, { position: { epoch: undefined, seq: 0 } })
  s.sequencer.start()
  await settle()
  s.sequencer.offer('e1', message(1))
  t.same(s.delivered, ids('e1', 1))
  t.equal(s.counters.gapsDetected, 0, 'the first epoch of a room is not a new log')

  const empty = setup(t, { position: { epoch: undefined, seq: 0 } })
  empty.sequencer.start()
  await settle()
  empty.log.epoch = null
  empty.sequencer.hold()
  empty.sequencer.resync()
  await settle()
  t.same(empty.delivered, [])
  empty.sequencer.offer('e1', message(1))
  t.same(empty.delivered, ids('e1', 1), 'live after the empty repair')

  const first = setup(t, { position: { epoch: undefined, seq: 0 } })
  first.sequencer.start()
  await settle()
  first.sequencer.hold()
  first.log.append(1, 2)
  first.sequencer.resync()
  await settle()
  t.equal(first.counters.gapsDetected, 0)
  t.same(first.delivered, ids('e1', 1, 2), 'a repair that meets the first epoch of the room takes it')
})

t.test('a failing repair is reported and retried on the injected timer until it succeeds', async (t) => {
  const s = await startedAt3(t)
  s.log.append(4, 5)
  s.log.failures = 2
  s.sequencer.offer('e1', message(5))
  await settle()
  t.equal(s.errors.length, 1, 'the failure is reported')
  t.equal(s.timers.size, 1, 'a retry is scheduled')
  t.same(s.delivered, [])
  s.sequencer.offer('e1', message(6))
  s.fireTimers()
  await settle()
  t.equal(s.errors.length, 2)
  t.same(s.delivered, [], 'still failing')
  s.log.append(6)
  s.fireTimers()
  await settle()
  t.same(s.delivered, ids('e1', 4, 5, 6), 'delivered in order once the log answers')
  t.equal(s.timers.size, 0)
  t.same(s.log.reads, [3, 3, 3])
})

t.test('a failing start is reported and retried on the injected timer', async (t) => {
  const s = setup(t, { position: { epoch: 'e1', seq: 0 }, startFailures: 1 })
  s.sequencer.start()
  await settle()
  t.equal(s.sequencer.isStarted, false)
  t.equal(s.errors.length, 1)
  t.equal(s.timers.size, 1)
  s.fireTimers()
  await settle()
  t.equal(s.positionReads, 2)
  t.equal(s.sequencer.isStarted, true)
})

t.test('pending overflow: what could not be held is read from the log again, nothing lost or repeated', async (t) => {
  const s = await startedAt3(t, { pendingMax: 3 })
  s.log.append(4, 5)
  s.log.gate = gate()
  s.sequencer.offer('e1', message(5)) // a gap: 4 is missing; the log is read up to 5
  // Five more arrive while the reply travels; three fit in pending (5, 6, 7), two do not.
  for (const seq of [6, 7, 8, 9, 10]) {
    s.log.append(seq)
    s.sequencer.offer('e1', message(seq))
  }
  s.log.gate.open()
  s.log.gate = undefined
  await settle()
  t.same(s.log.reads, [3, 5], 'read again after the first repair, from where it ended')
  t.same(s.delivered, ids('e1', 4, 5, 6, 7, 8, 9, 10))
})

t.test('room left during a repair: nothing is delivered, nothing retried', async (t) => {
  const s = await startedAt3(t)
  s.log.append(4, 5)
  s.log.gate = gate()
  s.sequencer.offer('e1', message(5))
  s.sequencer.stop()
  s.log.gate.open()
  await settle()
  t.same(s.delivered, [], 'the read came back after the room was left')
  s.sequencer.offer('e1', message(6))
  s.sequencer.resync()
  await settle()
  t.same(s.delivered, [])
  t.same(s.log.reads, [3], 'no new read after stop')
})

t.test('room left while a repair retry waits: the retry is cancelled; a read failing after leaving is not retried', async (t) => {
  const s = await startedAt3(t)
  s.log.failures = 1
  s.sequencer.offer('e1', message(5))
  await settle()
  t.equal(s.timers.size, 1)
  s.sequencer.stop()
  t.equal(s.timers.size, 0, 'the scheduled retry is cancelled')

  const late = await startedAt3(t)
  late.log.failures = 1
  late.log.gate = gate()
  late.sequencer.offer('e1', message(5))
  late.sequencer.stop()
  late.log.gate.open()
  await settle()
  t.equal(late.timers.size, 0, 'no retry after the room was left')
  t.same(late.errors, [], 'nor a report')
})

t.test('room left before the start completes: the baseline is ignored', async (t) => {
  const s = setup(t, { position: { epoch: 'e1', seq: 0 } })
  const position = s.holdPosition()
  s.sequencer.start()
  s.sequencer.offer('e1', message(1))
  s.sequencer.stop()
  position.open()
  await settle()
  t.equal(s.sequencer.isStarted, false)
  t.same(s.delivered, [])

  const failing = setup(t, { position: { epoch: 'e1', seq: 0 }, startFailures: 1 })
  const held = failing.holdPosition()
  failing.sequencer.start()
  failing.sequencer.stop()
  held.open()
  await settle()
  t.equal(failing.timers.size, 0, 'a start failing after the room was left is not retried')
})

t.test('a log that keeps nothing (historySize 0): a gap it cannot fill is read once, then skipped: at most once, no stall, no loop', async (t) => {
  const s = setup(t, { position: { epoch: 'e1', seq: 3 } })
  s.log.issued = 3
  s.sequencer.start()
  await settle()
  s.sequencer.offer('e1', message(4))
  t.same(s.delivered, ids('e1', 4), 'in order: delivered at once')
  // 5 is lost on the channel; the log trimmed it away as it was written.
  s.log.issued = 6
  s.sequencer.offer('e1', message(6))
  await settle()
  await settle()
  t.same(s.log.reads, [4], 'one read of the log, which holds nothing')
  t.same(s.delivered, ids('e1', 4, 6), 'what arrived is delivered; the lost one is skipped')
  t.equal(s.counters.gapsDetected, 1)
  s.sequencer.offer('e1', message(6))
  s.sequencer.offer('e1', message(7))
  t.same(s.delivered, ids('e1', 4, 6, 7), 'a repeat is still dropped; the next is live')

  // The channel drops and comes back: whatever was published meanwhile is gone.
  s.sequencer.hold()
  s.log.issued = 9
  s.sequencer.resync()
  await settle()
  s.sequencer.offer('e1', message(10))
  await settle()
  t.same(s.delivered, ids('e1', 4, 6, 7, 10), 'the first message after the outage is delivered')
  t.same(s.log.reads, [4, 7], 'one read per outage')
  s.log.issued = 12
  s.sequencer.offer('e1', message(12))
  await settle()
  await settle()
  t.same(s.log.reads, [4, 7, 10], 'a new gap beyond what was known lost is read again, once')
  t.same(s.delivered, ids('e1', 4, 6, 7, 10, 12))
})
