// Paces what a node asks of its subscriber connection. Subscribe and
// unsubscribe requests made in one turn of the event loop are coalesced into
// commands of at most SUBSCRIBE_CHUNK_CHANNELS channels, and at most
// SUBSCRIBE_MAX_IN_FLIGHT of those commands wait for Redis at a time; the rest
// queue here, in order. Why: a burst of joins (50k rooms at once) sent as one
// command per room puts tens of thousands of commands behind each other on
// one connection, and the last ones time out before Redis reaches them; a
// reconnect that resubscribes 100k+ rooms in one command overflows the
// call's argument list (RangeError) and gets one giant reply. Free of Redis:
// the owner gives the two functions that send one command.
import { SUBSCRIBE_CHUNK_CHANNELS, SUBSCRIBE_MAX_IN_FLIGHT } from './limits.js'

export interface SubscriptionBatcherOptions {
  /** Sends one SUBSCRIBE (or SSUBSCRIBE) of `channels`; resolves once Redis confirmed them all. */
  subscribe: (channels: string[]) => Promise<unknown>
  /** Sends one UNSUBSCRIBE of `channels`. */
  unsubscribe: (channels: string[]) => Promise<unknown>
  /** Channels per command at most (default SUBSCRIBE_CHUNK_CHANNELS). */
  chunkChannels?: number
  /** Commands awaiting Redis at most (default SUBSCRIBE_MAX_IN_FLIGHT). */
  maxInFlight?: number
  /** Runs the flush after the current turn's requests are in (default setImmediate). */
  defer?: (flush: () => void) => void
}

type Kind = 'subscribe' | 'unsubscribe'

/** Requests done with that are dropped from the front of the queue in one go. */
const COMPACT_AFTER = 4096

/** One caller's request: its channels go out in one or more chunks; it settles when they all have. */
interface Request {
  kind: Kind
  channels: string[]
  /** Channels of `channels` already put in a chunk. */
  taken: number
  /** Chunks holding some of its channels that Redis has not answered yet. */
  unanswered: number
  failed: boolean
  resolve: () => void
  reject: (error: unknown) => void
}

export class SubscriptionBatcher {
  /** Requests in order; those before `head` are done with (dropped in bulk: shift() on 50k entries is quadratic). */
  private queue: Request[] = []
  private head = 0
  private inFlight = 0
  private flushScheduled = false
  private readonly chunkChannels: number
  private readonly maxInFlight: number
  private readonly defer: (flush: () => void) => void

  constructor (private readonly options: SubscriptionBatcherOptions) {
    this.chunkChannels = options.chunkChannels ?? SUBSCRIBE_CHUNK_CHANNELS
    this.maxInFlight = options.maxInFlight ?? SUBSCRIBE_MAX_IN_FLIGHT
    this.defer = options.defer ?? setImmediate
  }

  /** Channels queued or awaiting Redis (for tests and diagnostics). */
  get pending (): number {
    let channels = 0
    for (let i = this.head; i < this.queue.length; i++) {
      const request = this.queue[i] as Request
      channels += request.channels.length - request.taken
    }
    return channels
  }

  /** Resolves once Redis confirmed every channel; rejects if a command carrying some of them failed. */
  subscribe (channels: string[]): Promise<void> {
    return this.request('subscribe', channels)
  }

  unsubscribe (channels: string[]): Promise<void> {
    return this.request('unsubscribe', channels)
  }

  private request (kind: Kind, channels: string[]): Promise<void> {
    if (channels.length === 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, channels, taken: 0, unanswered: 0, failed: false, resolve, reject })
      if (!this.flushScheduled) {
        this.flushScheduled = true
        this.defer(() => {
          this.flushScheduled = false
          this.flush()
        })
      }
    })
  }

  /**
   * Sends chunks while there is room in flight. A chunk takes channels from
   * the head of the queue, across requests, as long as they are of one kind:
   * requests go out in the order they were made, and one connection keeps
   * that order in Redis, so subscribe-then-unsubscribe of a room ends
   * unsubscribed.
   */
  private flush (): void {
    while (this.inFlight < this.maxInFlight && this.head < this.queue.length) {
      const kind = (this.queue[this.head] as Request).kind
      const channels: string[] = []
      const carried: Request[] = []
      while (channels.length < this.chunkChannels && this.head < this.queue.length) {
        const request = this.queue[this.head] as Request
        if (request.kind !== kind) break
        const take = Math.min(this.chunkChannels - channels.length, request.channels.length - request.taken)
        for (let i = request.taken; i < request.taken + take; i++) channels.push(request.channels[i] as string)
        request.taken += take
        request.unanswered++
        carried.push(request)
        if (request.taken === request.channels.length) this.head++
      }
      this.send(kind, channels, carried)
    }
    if (this.head === this.queue.length) {
      this.queue = []
      this.head = 0
    } else if (this.head >= COMPACT_AFTER) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
  }

  private send (kind: Kind, channels: string[], carried: Request[]): void {
    this.inFlight++
    const answered = (error: unknown) => {
      this.inFlight--
      for (const request of carried) {
        request.unanswered--
        if (error !== undefined) {
          if (!request.failed) request.reject(error)
          request.failed = true
        } else if (!request.failed && request.unanswered === 0 && request.taken === request.channels.length) {
          request.resolve()
        }
      }
      this.flush()
    }
    let sent: Promise<unknown>
    try {
      sent = kind === 'subscribe' ? this.options.subscribe(channels) : this.options.unsubscribe(channels)
    } catch (error) {
      sent = Promise.reject(error)
    }
    sent.then(() => answered(undefined), (error: unknown) => answered(error ?? new Error(`${kind} failed`)))
  }
}
