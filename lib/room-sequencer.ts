// Per-room ordering and gap repair of a cluster node, free of Redis: it
// delivers each message of the room's log once and in order, whatever the
// live channel drops or repeats, by reading what it missed from the log.
import type { StoredMessage } from './frames.js'
import { REPAIR_BATCH, REPAIR_PENDING_MAX } from './limits.js'

/** Where the room's log stands; `epoch` undefined while the room has no log. */
export interface LogPosition {
  epoch: string | undefined
  seq: number
}

/** One batch of the log after a sequence, oldest first. */
export interface MissedBatch {
  /** Epoch of the log the entries belong to; null when the room has no log. */
  epoch: string | null
  /** Last sequence the log has issued. */
  last: number
  messages: StoredMessage[]
}

export interface RoomSequencerOptions {
  /** Learns where the log stands; called once the live channel is subscribed, so nothing falls in between. */
  readPosition: () => Promise<LogPosition>
  /** Reads up to `limit` messages of the log after `seq` ("what I missed"). */
  readAfter: (seq: number, limit: number) => Promise<MissedBatch>
  /** Receives the room's messages, in order, once each. */
  deliver: (message: StoredMessage) => void
  /** Runs `retry` later (after a failed read); returns a function that cancels it. */
  schedule: (retry: () => void) => () => void
  /** Told of every failed read (it is retried regardless). */
  onReadError?: (error: unknown) => void
  /** Shared counters, incremented here. */
  counters: { gapsDetected: number, messagesRepaired: number }
  /** Messages held while the log is read; past this they are dropped and read from the log instead. */
  pendingMax?: number
  /** Messages read from the log per call of `readAfter`. */
  batch?: number
}

interface Held {
  epoch: string
  message: StoredMessage
}

export class RoomSequencer {
  /** Epoch of the log `lastSeq` belongs to; undefined before the room's first message. */
  private epoch: string | undefined
  /** Last sequence delivered; -1 until the starting point is known. */
  private lastSeq = -1
  /**
   * Sequences up to here the log does not hold (trimmed before they could be
   * read, or never kept: a historySize 0 room, a message over
   * HISTORY_MAX_BYTES). A gap within them cannot be repaired, so it is not
   * waited for: those messages are delivered at most once.
   */
  private lostThrough = 0
  /** While true, arriving messages wait in `pending` (the log is being read, or the channel is down). */
  private holding = true
  private pending: Held[] = []
  /** `pending` overflowed: the log must be read again after the current repair. */
  private overflowed = false
  private stopped = false
  private cancelRetry: (() => void) | undefined
  private markStarted: () => void = () => {}
  private readonly pendingMax: number
  private readonly batch: number
  /** Resolves once the starting point is known: reads of the room wait on it so history and live messages meet. */
  readonly started: Promise<void>

  constructor (private readonly options: RoomSequencerOptions) {
    this.pendingMax = options.pendingMax ?? REPAIR_PENDING_MAX
    this.batch = options.batch ?? REPAIR_BATCH
    this.started = new Promise((resolve) => { this.markStarted = resolve })
  }

  get isStarted (): boolean {
    return this.lastSeq >= 0
  }

  /** Last sequence delivered (-1 before the start), for tests and diagnostics. */
  get position (): LogPosition {
    return { epoch: this.epoch, seq: this.lastSeq }
  }

  /** Learns where the log stands (after the channel is subscribed); retried until it succeeds or the room is left. */
  start (): void {
    this.clearRetry()
    this.options.readPosition().then((position) => {
      // Left meanwhile, or started by another attempt: that baseline stands.
      if (this.stopped || this.isStarted) return
      this.epoch = position.epoch
      this.lastSeq = position.seq
      this.markStarted()
      this.finishRepair()
    }, (error: unknown) => {
      if (this.stopped || this.isStarted) return
      this.options.onReadError?.(error)
      this.retryLater(() => this.start())
    })
  }

  /** A message from the live channel: delivered, dropped as a duplicate, held, or the start of a repair. */
  offer (epoch: string, message: StoredMessage): void {
    if (this.stopped) return
    if (this.holding) {
      if (this.pending.length < this.pendingMax) this.pending.push({ epoch, message })
      else this.overflowed = true
      return
    }
    this.accept(epoch, message)
  }

  /** The live channel is down: hold what arrives until `resync`. */
  hold (): void {
    this.holding = true
  }

  /** The live channel is back: read everything missed since the last delivery (or start, if never started). */
  resync (): void {
    if (this.stopped) return
    if (this.isStarted) this.repair()
    else this.start()
  }

  /** The room was left: nothing more is delivered and nothing retried. */
  stop (): void {
    this.stopped = true
    this.clearRetry()
    this.pending = []
  }

  private accept (epoch: string, message: StoredMessage): void {
    if (epoch !== this.epoch) {
      if (this.epoch !== undefined || this.lastSeq !== 0) {
        // The log was lost and started anew (e.g. Redis restarted without its data).
        this.options.counters.gapsDetected++
        this.lastSeq = 0
      }
      this.epoch = epoch
      this.lostThrough = 0
    }
    if (message.seq <= this.lastSeq) return
    if (message.seq === this.lastSeq + 1 || message.seq <= this.lostThrough + 1) {
      this.lastSeq = message.seq
      this.options.deliver(message)
      return
    }
    this.options.counters.gapsDetected++
    this.pending.push({ epoch, message })
    this.repair()
  }

  /** Reads what was missed from the log and delivers it before anything newer. */
  private repair (): void {
    this.holding = true
    this.clearRetry()
    this.readMissing().then(() => this.finishRepair(), (error: unknown) => {
      if (this.stopped) return
      this.options.onReadError?.(error)
      this.retryLater(() => this.repair())
    })
  }

  private async readMissing (): Promise<void> {
    for (;;) {
      const { epoch, last, messages } = await this.options.readAfter(this.lastSeq, this.batch)
      if (this.stopped || epoch === null) return
      if (epoch !== this.epoch) {
        if (this.epoch !== undefined) {
          // A new log: start from its beginning.
          this.epoch = epoch
          this.lastSeq = 0
          this.lostThrough = 0
          continue
        }
        this.epoch = epoch
      }
      // The log issued sequences it no longer holds: what is missed up to `last` is gone, not late.
      if (messages.length === 0 && last > this.lastSeq) this.lostThrough = Math.max(this.lostThrough, last)
      for (const message of messages) {
        if (message.seq <= this.lastSeq) continue
        this.lastSeq = message.seq
        this.options.counters.messagesRepaired++
        this.options.deliver(message)
      }
      if (messages.length < this.batch || this.lastSeq >= last) return
    }
  }

  /** Stops holding, delivering what arrived meanwhile (which may start another repair). */
  private finishRepair (): void {
    if (this.stopped) return
    if (this.overflowed) {
      this.overflowed = false
      this.pending = []
      this.repair()
      return
    }
    this.holding = false
    const pending = this.pending
    this.pending = []
    for (const held of pending) {
      if (this.holding) this.pending.push(held)
      else this.accept(held.epoch, held.message)
    }
  }

  private retryLater (retry: () => void): void {
    this.cancelRetry = this.options.schedule(() => {
      this.cancelRetry = undefined
      retry()
    })
  }

  private clearRetry (): void {
    this.cancelRetry?.()
    this.cancelRetry = undefined
  }
}
