// A fixed-size ring of a room's most recent messages (single-node history).
import type { StoredMessage } from './frames.js'

export class HistoryRing {
  private readonly items: Array<StoredMessage | undefined>
  private start = 0
  private count = 0

  constructor (readonly capacity: number) {
    // Grows as messages arrive: most rooms never fill their ring.
    this.items = []
  }

  get size (): number {
    return this.count
  }

  push (message: StoredMessage): void {
    if (this.count < this.capacity) {
      this.items[(this.start + this.count) % this.capacity] = message
      this.count++
    } else {
      this.items[this.start] = message
      this.start = (this.start + 1) % this.capacity
    }
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
    if (this.count === 0) return seq === 0 ? [] : undefined
    const oldest = this.at(0).seq
    if (seq < oldest - 1) return undefined
    // Sequences are contiguous within a ring, so the position is arithmetic.
    const first = Math.max(0, seq - oldest + 1)
    const out: StoredMessage[] = []
    for (let i = first; i < this.count && out.length < limit; i++) out.push(this.at(i))
    return out
  }
}
