// A room's most recent messages on a single node: a ring bounded by a message
// count and by bytes, whichever comes first. The bytes are an honest measure
// of what a message holds in memory (messageCost), so the node can bound the
// sum over all rooms too (memory-broker.ts).
import type { StoredMessage } from './frames.js'
import { HISTORY_MESSAGE_OVERHEAD_BYTES } from './limits.js'

/**
 * What one kept message counts against HISTORY_MAX_BYTES and
 * HISTORY_TOTAL_MAX_BYTES: the UTF-8 bytes of its text and of its data's JSON
 * encoding (never less than what those strings take in the heap, one or two
 * bytes per UTF-16 unit) plus a fixed overhead for the rest (object, id,
 * sender, timestamp, ring slot).
 */
export function messageCost (message: StoredMessage): number {
  const cost = Buffer.byteLength(message.text) + HISTORY_MESSAGE_OVERHEAD_BYTES
  return message.data === undefined ? cost : cost + Buffer.byteLength(message.data)
}

export class HistoryRing {
  private items: Array<StoredMessage | undefined> = []
  /** messageCost of each kept message, in the same slots as `items`. */
  private costs: number[] = []
  private start = 0
  private count = 0
  private held = 0
  /** Sequence of the newest message pushed, kept or not. */
  private newest = 0

  /**
   * Holds at most `capacity` messages and `maxBytes` bytes (by messageCost),
   * trimming the oldest. A message bigger than `maxBytes` alone is not kept.
   */
  constructor (readonly capacity: number, readonly maxBytes: number = Number.POSITIVE_INFINITY) {}

  get size (): number {
    return this.count
  }

  /** Bytes held, by messageCost. */
  get bytes (): number {
    return this.held
  }

  /** Keeps `message` (its sequence follows the previous one's); returns the change in bytes held, negative when trimming freed more. */
  push (message: StoredMessage): number {
    // A ring of no messages (historySize 0) only knows the position.
    if (this.capacity === 0) {
      this.newest = message.seq
      return 0
    }
    const before = this.held
    const cost = messageCost(message)
    if (this.count === this.capacity) this.dropOldest()
    // The arrays grow as messages arrive: most rooms never fill their ring.
    const slot = (this.start + this.count) % this.capacity
    this.items[slot] = message
    this.costs[slot] = cost
    this.count++
    this.held += cost
    this.newest = message.seq
    while (this.held > this.maxBytes) this.dropOldest()
    return this.held - before
  }

  /** Forgets every kept message (the node's total is over); returns the bytes freed. Positions stay known. */
  clear (): number {
    const freed = this.held
    this.items = []
    this.costs = []
    this.start = 0
    this.count = 0
    this.held = 0
    return freed
  }

  private dropOldest (): void {
    this.held -= this.costs[this.start] as number
    this.items[this.start] = undefined
    this.start = (this.start + 1) % this.capacity
    this.count--
  }

  /** The message at position `index` from the oldest kept. */
  private at (index: number): StoredMessage {
    return this.items[(this.start + index) % this.capacity] as StoredMessage
  }

  /** The newest `limit` messages, oldest first. */
  recent (limit: number): StoredMessage[] {
    const n = Math.min(limit, this.count)
    const out: StoredMessage[] = []
    for (let i = this.count - n; i < this.count; i++) out.push(this.at(i))
    return out
  }

  /**
   * Up to `limit` messages with a sequence after `seq`, oldest first, or
   * undefined when messages after `seq` have already been trimmed away.
   */
  after (seq: number, limit: number): StoredMessage[] | undefined {
    if (this.count === 0) return seq === this.newest ? [] : undefined
    const oldest = this.at(0).seq
    if (seq < oldest - 1) return undefined
    // Sequences are contiguous within a ring, so the position is arithmetic.
    const first = Math.max(0, seq - oldest + 1)
    const out: StoredMessage[] = []
    for (let i = first; i < this.count && out.length < limit; i++) out.push(this.at(i))
    return out
  }
}
