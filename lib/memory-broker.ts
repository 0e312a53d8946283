// Single-node broker: each room's log is an in-memory ring, fan-out is a call.
// Memory is bounded whatever clients send: each ring by HISTORY_SIZE and
// HISTORY_MAX_BYTES, all rings together by HISTORY_TOTAL_MAX_BYTES (rooms
// without members here lose their history first, least recently used first;
// then rooms with members, least recently used first), and the logs of rooms
// without members by their number, MAX_IDLE_ROOMS.
import type { Broker, BrokerHealth, MessageHandler, PublishOptions, ReadRequest, ReadResult } from './broker.js'
import type { StoredMessage } from './frames.js'
import { HistoryRing } from './history.js'
import { formatMessageId, newEpoch, parseMessageId } from './message-id.js'

interface RoomLog {
  /** The room's name, shared by its messages (one string per room, not per message). */
  room: string
  epoch: string
  seq: number
  ring: HistoryRing
}

export interface MemoryBrokerOptions {
  /** Messages kept per room (HISTORY_SIZE). */
  historySize: number
  /** Messages kept in `room` (its namespace's historySize, PROTOCOL §8); `historySize` for every room when absent. */
  roomHistorySize?: (room: string) => number
  /** Bytes kept per room (HISTORY_MAX_BYTES, by history.ts messageCost); unbounded when absent. */
  historyMaxBytes?: number
  /** Bytes kept for all rooms together (HISTORY_TOTAL_MAX_BYTES); unbounded when absent. */
  historyTotalMaxBytes?: number
  /** Logs kept for rooms without members here (MAX_IDLE_ROOMS): even an empty log costs its epoch and map entries. */
  maxIdleRooms: number
  now?: () => number
}

export class MemoryBroker implements Broker {
  private readonly logs = new Map<string, RoomLog>()
  private readonly subscribed = new Set<string>()
  /** Rooms with a log but no local subscriber, least recently used first: the first to go. */
  private readonly idle = new Set<string>()
  /** Subscribed rooms whose log may hold messages, least recently used first: they go when no idle room is left. */
  private readonly busy = new Set<string>()
  /** Sum of every ring's bytes. */
  private totalBytes = 0
  private readonly maxBytes: number
  private readonly totalMaxBytes: number
  private onMessage: MessageHandler | undefined
  private readonly now: () => number

  constructor (private readonly options: MemoryBrokerOptions) {
    this.now = options.now ?? Date.now
    this.maxBytes = options.historyMaxBytes ?? Number.POSITIVE_INFINITY
    this.totalMaxBytes = options.historyTotalMaxBytes ?? Number.POSITIVE_INFINITY
  }

  async start (onMessage: MessageHandler): Promise<void> {
    this.onMessage = onMessage
  }

  publish (room: string, from: string, text: string, options?: PublishOptions): Promise<StoredMessage> {
    const log = this.log(room)
    log.seq++
    const message: StoredMessage = { room: log.room, id: formatMessageId(log.epoch, log.seq), seq: log.seq, from, text, ts: this.now() }
    if (options?.user !== undefined) message.user = options.user
    if (options?.api === true) message.api = true
    if (options?.data !== undefined) message.data = options.data
    this.totalBytes += log.ring.push(message)
    if (this.subscribed.has(room)) {
      touch(this.busy, room)
      this.onMessage?.(message)
    } else {
      this.touchIdle(room)
    }
    if (this.totalBytes > this.totalMaxBytes) this.shed()
    return Promise.resolve(message)
  }

  read (room: string, request: ReadRequest): Promise<ReadResult> {
    return Promise.resolve(this.readNow(room, request))
  }

  private readNow (room: string, { since, limit, fallbackLimit = limit }: ReadRequest): ReadResult {
    const log = this.logs.get(room)
    if (since === undefined) return { messages: log ? log.ring.recent(limit) : [], recovered: true }
    const position = parseMessageId(since)
    if (log && position && position.epoch === log.epoch && position.seq <= log.seq) {
      const messages = log.ring.after(position.seq, limit)
      if (messages) return { messages, recovered: true }
    }
    return { messages: log ? log.ring.recent(fallbackLimit) : [], recovered: false }
  }

  subscribe (room: string): void {
    this.subscribed.add(room)
    this.idle.delete(room)
    if (this.logs.has(room)) touch(this.busy, room)
  }

  unsubscribe (room: string): void {
    this.subscribed.delete(room)
    this.busy.delete(room)
    if (this.logs.has(room)) this.touchIdle(room)
  }

  health (): BrokerHealth {
    return { ok: true }
  }

  async close (): Promise<void> {
    this.onMessage = undefined
  }

  /** Number of room logs held (for tests and metrics). */
  get roomLogCount (): number {
    return this.logs.size
  }

  /** Bytes of history held for all rooms together, by history.ts messageCost (for tests and metrics). */
  get historyBytes (): number {
    return this.totalBytes
  }

  private log (room: string): RoomLog {
    let log = this.logs.get(room)
    if (!log) {
      log = { room, epoch: newEpoch(), seq: 0, ring: new HistoryRing(this.options.roomHistorySize?.(room) ?? this.options.historySize, this.maxBytes) }
      this.logs.set(room, log)
    }
    return log
  }

  private touchIdle (room: string): void {
    touch(this.idle, room)
    while (this.idle.size > this.options.maxIdleRooms) this.forget(first(this.idle) as string)
  }

  /**
   * The total is over: whole logs of rooms without members go first, then the
   * history (not the position: ids stay comparable) of rooms with members.
   * Each message is shed at most once, so publishing stays O(1) amortised.
   */
  private shed (): void {
    while (this.totalBytes > this.totalMaxBytes) {
      const idle = first(this.idle)
      if (idle !== undefined) {
        this.forget(idle)
        continue
      }
      const busy = first(this.busy)
      // Unreachable while the sums are right: every byte held is in an idle or a busy room.
      if (busy === undefined) return
      this.busy.delete(busy)
      this.totalBytes -= (this.logs.get(busy) as RoomLog).ring.clear()
    }
  }

  /** Drops an idle room's log: a resume from one of its ids is then unknown (`recovered: false`). */
  private forget (room: string): void {
    this.idle.delete(room)
    // Every idle room has a log: rooms become idle by publishing or by losing their members with one.
    this.totalBytes -= (this.logs.get(room) as RoomLog).ring.bytes
    this.logs.delete(room)
  }
}

/** Marks `key` the most recently used of `lru` (a Set iterates in insertion order). */
function touch (lru: Set<string>, key: string): void {
  lru.delete(key)
  lru.add(key)
}

function first (lru: Set<string>): string | undefined {
  return lru.values().next().value
}
