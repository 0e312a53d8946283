// At most N tasks running at a time; the others wait their turn, in order.
// The broker's reads of room logs go through one (READS_MAX_IN_FLIGHT): a
// join storm or a reconnect of a node with 100k rooms asks for that many
// reads at once, and sent in one batch the last of them would wait behind
// the others in Redis past REDIS_COMMAND_TIMEOUT_MS.

export class InFlightLimit {
  private running = 0
  /** Waiting tasks in order; those before `head` have started (dropped in bulk: shift() on 100k entries is quadratic). */
  private waiting: Array<() => void> = []
  private head = 0

  constructor (private readonly max: number) {}

  /** Tasks started and not yet settled. */
  get inFlight (): number {
    return this.running
  }

  /** Tasks waiting for a turn. */
  get queued (): number {
    return this.waiting.length - this.head
  }

  /** Runs `task` once fewer than `max` others are running; settles as it does. */
  async run<T> (task: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.running++
    try {
      return await task()
    } finally {
      this.next()
    }
  }

  /** A task settled: its slot goes to the next in line (the count stays), or is freed. */
  private next (): void {
    if (this.head < this.waiting.length) {
      const start = this.waiting[this.head++] as () => void
      if (this.head === this.waiting.length) {
        this.waiting = []
        this.head = 0
      } else if (this.head >= COMPACT_AFTER) {
        this.waiting = this.waiting.slice(this.head)
        this.head = 0
      }
      start()
      return
    }
    this.running--
  }
}

/** Started tasks dropped from the front of the queue in one go. */
const COMPACT_AFTER = 4096
