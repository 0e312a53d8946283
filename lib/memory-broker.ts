// Single-node broker: each room's log is an in-memory ring, fan-out is a call.
// Logs of rooms nobody here is in are kept for resumes and the history API,
// up to `maxIdleRooms`, the least recently used forgotten first.
import type { Broker, BrokerHealth, MessageHandler, ReadRequest, ReadResult } from './broker.js'
import type { Origin, StoredMessage } from './frames.js'
import { HistoryRing } from './history.js'
import { formatMessageId, newEpoch, parseMessageId } from './message-id.js'

interface RoomLog {
  epoch: string
  seq: number
  ring: HistoryRing
}

export interface MemoryBrokerOptions {
  historySize: number
  maxIdleRooms: number
  now?: () => number
}

export class MemoryBroker implements Broker {
  private readonly logs = new Map<string, RoomLog>()
  private readonly subscribed = new Set<string>()
  /** Rooms with a log but no local subscriber, least recently used first. */
  private readonly idle = new Set<string>()
  private onMessage: MessageHandler | undefined
  private readonly now: () => number

  constructor (private readonly options: MemoryBrokerOptions) {
    this.now = options.now ?? Date.now
  }

  async start (onMessage: MessageHandler): Promise<void> {
    this.onMessage = onMessage
  }

  publish (room: string, from: string, text: string, origin?: Origin): Promise<StoredMessage> {
    const log = this.log(room)
    log.seq++
    const message: StoredMessage = { room, id: formatMessageId(log.epoch, log.seq), seq: log.seq, from, text, ts: this.now() }
    if (origin?.user !== undefined) message.user = origin.user
    if (origin?.api === true) message.api = true
    log.ring.push(message)
    if (this.subscribed.has(room)) this.onMessage?.(message)
    else this.touchIdle(room)
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
  }

  unsubscribe (room: string): void {
    this.subscribed.delete(room)
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

  private log (room: string): RoomLog {
    let log = this.logs.get(room)
    if (!log) {
      log = { epoch: newEpoch(), seq: 0, ring: new HistoryRing(this.options.historySize) }
      this.logs.set(room, log)
    }
    return log
  }

  private touchIdle (room: string): void {
    this.idle.delete(room)
    this.idle.add(room)
    while (this.idle.size > this.options.maxIdleRooms) {
      const oldest = this.idle.values().next().value as string
      this.idle.delete(oldest)
      this.logs.delete(oldest)
    }
  }
}
