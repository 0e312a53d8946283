// Cluster broker over Redis: each message is stored in its room's stream and
// published on the room's sharded channel in one script (on a Redis Cluster
// only the room's master carries it); every node subscribed to the room
// receives it, and
// a RoomSequencer per room turns that channel into every message once and in
// order (repairing gaps from the log). The room channel also carries
// unsequenced ephemeral payloads (presence changes) past the sequencers.
import { ReplyError } from 'ioredis'
import {
  BrokerTimeoutError, BrokerUnavailableError,
  type Broker, type BrokerHealth, type ClusterStats, type EphemeralChannel, type EphemeralPayload,
  type MessageHandler, type PublishOptions, type PublishReceipt, type ReadRequest, type ReadResult
} from './broker.js'
import type { StoredMessage } from './frames.js'
import { IDEMPOTENCY_TTL_MS, REDIS_COMMAND_TIMEOUT_MS, REDIS_RETRY_MS } from './limits.js'
import { formatMessageId, newEpoch, parseMessageId } from './message-id.js'
import { type RedisErrorReporter, isRedisAway, reportUnlessAway } from './redis-errors.js'
import { RedisProbe } from './redis-probe.js'
import { defineScripts, idempotencyKey, type PublishReply, roomKeys, type StreamEntry } from './redis-scripts.js'
import type { RedisClient } from './redis-topology.js'
import { type LogPosition, type MissedBatch, RoomSequencer } from './room-sequencer.js'
import { ShardedSubscription } from './sharded-subscription.js'

export interface RedisBrokerOptions {
  /** Connection for commands and scripts (one server, a Sentinel's master, or a Redis Cluster). */
  command: RedisClient
  /** Connection in subscriber mode (it can do nothing else), of the same topology. */
  subscriber: RedisClient
  nodeId: string
  historySize: number
  /** Messages kept in `room` (its namespace's historySize, PROTOCOL §8); `historySize` for every room when absent. */
  roomHistorySize?: (room: string) => number
  /** UTF-8 bytes of text and data a room's log keeps at most (HISTORY_MAX_BYTES). */
  historyMaxBytes: number
  /** A room's log expires this long after its last message (HISTORY_TTL_S). */
  historyTtlS: number
  readyProbeMs: number
  /** Unexpected errors that reach no caller (Redis being away is expected and not reported). */
  onError: RedisErrorReporter
  now?: () => number
}

/** What travels on a room channel: a stored message (written by PUBLISH_SCRIPT), or an ephemeral payload. */
type Wire =
  | { k: 'm', r: string, e: string, s: number, f: string, x: string, t: number, u?: string, a?: 1, d?: string }
  | { k: 'e', r: string, n: string, c: string, d: unknown }

type EphemeralHandler = (room: string, payload: unknown) => void

export class RedisBroker implements Broker, EphemeralChannel {
  readonly clusterStats: ClusterStats
  private readonly command: RedisClient
  private readonly subscription: ShardedSubscription
  private readonly probe: RedisProbe
  private readonly rooms = new Map<string, RoomSequencer>()
  private readonly ephemeralHandlers = new Map<string, EphemeralHandler>()
  private readonly now: () => number
  private readonly report: RedisErrorReporter
  private onMessage: MessageHandler | undefined
  private closed = false
  /** Redis refused the last publish for lack of memory: further refusals are not reported until one succeeds. */
  private full = false

  constructor (private readonly options: RedisBrokerOptions) {
    this.command = options.command
    this.subscription = new ShardedSubscription(options.subscriber)
    this.now = options.now ?? Date.now
    this.report = options.onError
    defineScripts(this.command)
    const probe = this.probe = new RedisProbe({
      command: this.command,
      subscription: this.subscription,
      nodeId: options.nodeId,
      readyProbeMs: options.readyProbeMs,
      now: this.now,
      onPublishError: reportUnlessAway(this.report, 'publishing the readiness probe')
    })
    this.clusterStats = {
      redisReconnects: 0,
      gapsDetected: 0,
      messagesRepaired: 0,
      get probeRoundTripMs () { return probe.roundTripMs }
    }
  }

  async start (onMessage: MessageHandler): Promise<void> {
    this.onMessage = onMessage
    this.subscription.listen({
      message: (channel, payload) => this.onChannelMessage(channel, payload),
      interrupted: () => this.onSubscriptionInterrupted(),
      restored: () => this.onSubscriptionRestored(),
      // The connection dropped again; its return tries again.
      restoreFailed: (error) => this.reportUnexpected(error, 'resubscribing after a reconnect')
    })
    await this.probe.start()
  }

  /** Without a key, the stored message itself; with one, possibly the first call's receipt. */
  async publish (room: string, from: string, text: string, options?: PublishOptions & { idempotencyKey?: undefined }): Promise<StoredMessage>
  async publish (room: string, from: string, text: string, options?: PublishOptions): Promise<PublishReceipt>
  async publish (room: string, from: string, text: string, options: PublishOptions = {}): Promise<StoredMessage | PublishReceipt> {
    // Not sent at all: surely not published (ioredis would refuse it too, with no offline queue).
    if (this.command.status !== 'ready') throw new BrokerUnavailableError('Redis is not connected; nothing was published, try again')
    const keys = roomKeys(room)
    const ts = this.now()
    const { historyMaxBytes, historyTtlS } = this.options
    // 0 keeps nothing: the script trims the new entry at once, the sequence still advances (ids stay unique).
    const historySize = this.options.roomHistorySize?.(room) ?? this.options.historySize
    const { idempotencyKey: key, user, api, data } = options
    // The optional fields, '' when absent: a guest's message without data has none, stored and published as before users existed.
    const optional = [user ?? '', api === true ? '1' : '', data ?? ''] as const
    let reply: PublishReply
    try {
      reply = key === undefined
        ? await this.command.chatPublish(
          keys.meta, keys.log, keys.channel, newEpoch(), historySize, historyMaxBytes, from, text, ts, room, historyTtlS, IDEMPOTENCY_TTL_MS,
          ...optional)
        : await this.command.chatPublishOnce(
          keys.meta, keys.log, keys.channel, idempotencyKey(room, key), newEpoch(), historySize, historyMaxBytes,
          from, text, ts, room, historyTtlS, IDEMPOTENCY_TTL_MS, ...optional)
    } catch (error) {
      throw this.publishFailure(error)
    }
    this.full = false
    const [epoch, seq, first] = reply
    if (first !== undefined) return JSON.parse(first) as PublishReceipt
    const id = formatMessageId(epoch, seq)
    // With a key, the answer is the receipt either way, as the key records it.
    return key === undefined ? withOrigin({ room, id, seq, from, text, ts }, user, api, data) : { id, room, ts }
  }

  /**
   * What the sender of a failed publish is told. Redis answering with an
   * error means the script stopped before its PUBLISH (its last step), and a
   * command never written was never run: nothing was published. Anything
   * else came after the script was sent (the command timed out, the
   * connection dropped): it may have run, so the outcome is unknown.
   */
  private publishFailure (error: unknown): Error {
    const reason = (error as Error).message
    if (error instanceof ReplyError) {
      if (reason.startsWith('OOM ')) {
        if (!this.full) this.report(error, 'storing a message: Redis is full (maxmemory), new messages are refused until memory is freed')
        this.full = true
        return new BrokerUnavailableError('Redis is full and refuses new messages; nothing was published, try again later')
      }
      this.report(error, 'storing a message')
      return new BrokerUnavailableError(`Redis could not store the message (${reason}); nothing was published, try again`)
    }
    if (reason === NOT_WRITTEN) return new BrokerUnavailableError(`Redis could not store the message (${reason}); nothing was published, try again`)
    // A Redis Cluster slot mid-move kept redirecting it (REDIS_CLUSTER_MAX_REDIRECTIONS): no attempt ran.
    if (REDIRECTED_EVERY_TIME.test(reason)) {
      return new BrokerUnavailableError('the room is being moved to another Redis master and Redis did not store the message in time; nothing was published, try again')
    }
    this.reportUnexpected(error, 'storing a message')
    return new BrokerTimeoutError(
      `Redis did not answer in time (${reason}); the message may or may not have been published, and if it was, it arrives like any other`)
  }

  async read (room: string, { since, limit, fallbackLimit }: ReadRequest): Promise<ReadResult> {
    // A room this node is joining: read only once live messages are flowing,
    // so the history and the live stream overlap instead of leaving a hole.
    const sequencer = this.rooms.get(room)
    if (sequencer && !sequencer.isStarted) await untilStarted(sequencer)
    const keys = roomKeys(room)
    const position = since === undefined ? undefined : parseMessageId(since)
    try {
      const [epoch, recovered, entries] = await this.command.chatRead(
        keys.meta, keys.log,
        since === undefined ? '' : (position?.epoch ?? '-'), position?.seq ?? 0, limit, fallbackLimit ?? limit
      )
      return { messages: epoch === null ? [] : entries.map((entry) => toMessage(room, epoch, entry)), recovered: recovered === 1 }
    } catch (error) {
      this.reportUnexpected(error, 'reading a room history')
      throw new BrokerUnavailableError(`Redis could not read the history (${(error as Error).message})`)
    }
  }

  subscribe (room: string): void {
    this.rooms.get(room)?.stop()
    const sequencer = new RoomSequencer({
      readPosition: () => this.subscribeRoom(room),
      readAfter: (seq, limit) => this.readAfter(room, seq, limit),
      deliver: (message) => this.onMessage?.(message),
      schedule: retryLater,
      onReadError: reportUnlessAway(this.report, 'reading a room log to deliver its messages in order'),
      counters: this.clusterStats
    })
    this.rooms.set(room, sequencer)
    sequencer.start()
  }

  unsubscribe (room: string): void {
    const sequencer = this.rooms.get(room)
    if (!sequencer) return
    sequencer.stop()
    this.rooms.delete(room)
    this.subscription.unsubscribe(roomKeys(room).channel).catch(reportUnlessAway(this.report, 'unsubscribing from a room'))
  }

  publishEphemeral (room: string, topic: string, payload: EphemeralPayload): void {
    const wire: Wire = { k: 'e', r: room, n: this.options.nodeId, c: topic, d: payload }
    this.command.spublish(roomKeys(room).channel, JSON.stringify(wire)).catch(reportUnlessAway(this.report, `publishing an ephemeral ${topic} payload`))
  }

  onEphemeral (topic: string, handler: EphemeralHandler): void {
    this.ephemeralHandlers.set(topic, handler)
  }

  health (): BrokerHealth {
    return this.probe.health()
  }

  async close (): Promise<void> {
    this.closed = true
    this.probe.stop()
    this.subscription.stop()
    for (const sequencer of this.rooms.values()) sequencer.stop()
    this.onMessage = undefined
  }

  /** Subscribes to the room's channel, then learns where its log stands (messages arriving meanwhile are held). */
  private async subscribeRoom (room: string): Promise<LogPosition> {
    const keys = roomKeys(room)
    await this.subscription.subscribe([keys.channel])
    const [epoch, seq] = await this.command.hmget(keys.meta, 'e', 's')
    return { epoch: epoch ?? undefined, seq: Number(seq ?? 0) }
  }

  private async readAfter (room: string, seq: number, limit: number): Promise<MissedBatch> {
    const keys = roomKeys(room)
    const [epoch, last, entries] = await this.command.chatAfter(keys.meta, keys.log, seq, limit)
    return { epoch, last, messages: epoch === null ? [] : entries.map((entry) => toMessage(room, epoch, entry)) }
  }

  private onChannelMessage (channel: string, payload: string): void {
    if (this.probe.owns(channel)) {
      this.probe.received(channel, payload)
      return
    }
    let wire: Wire
    try {
      wire = JSON.parse(payload) as Wire
    } catch (error) {
      this.report(error, `parsing a payload on ${channel}`)
      return
    }
    if (wire.k === 'e') {
      if (wire.n !== this.options.nodeId) this.ephemeralHandlers.get(wire.c)?.(wire.r, wire.d)
      return
    }
    const message: StoredMessage = { room: wire.r, id: formatMessageId(wire.e, wire.s), seq: wire.s, from: wire.f, text: wire.x, ts: wire.t }
    const plain = wire.u === undefined && wire.a === undefined && wire.d === undefined
    this.rooms.get(wire.r)?.offer(wire.e, plain ? message : withOrigin(message, wire.u, wire.a === 1 || undefined, wire.d))
  }

  /** The subscriber came back and is subscribing again: hold every room's messages until the gap is known. */
  private onSubscriptionInterrupted (): void {
    if (this.closed) return
    this.clusterStats.redisReconnects++
    this.probe.resubscribed()
    for (const sequencer of this.rooms.values()) sequencer.hold()
  }

  /** Every channel is subscribed again: repair every room from its log. */
  private onSubscriptionRestored (): void {
    if (this.closed) return
    for (const sequencer of this.rooms.values()) sequencer.resync()
    // Judged from now on: a restore that took longer than the probe's patience must not count against it.
    this.probe.resubscribed()
    this.probe.send()
  }

  private reportUnexpected (error: unknown, context: string): void {
    if (!isRedisAway(error)) this.report(error, context)
  }
}

/** ioredis's refusal of a command it did not write (no offline queue). */
const NOT_WRITTEN = "Stream isn't writeable and enableOfflineQueue options is false"

/**
 * ioredis gave up after REDIS_CLUSTER_MAX_REDIRECTIONS and the last answer
 * was a redirection (TRYAGAIN, ASK, MOVED, CLUSTERDOWN), so no attempt ran:
 * each earlier one ended in a redirection too (a timeout would have ended
 * the command instead).
 */
const REDIRECTED_EVERY_TIME = /^Too many Cluster redirections\. Last error: ReplyError: (TRYAGAIN|ASK|MOVED|CLUSTERDOWN) /

/** Runs `retry` after REDIS_RETRY_MS, without keeping the process alive. */
function retryLater (retry: () => void): () => void {
  const timer = setTimeout(retry, REDIS_RETRY_MS)
  timer.unref()
  return () => clearTimeout(timer)
}

/** Waits for a room to start, but no longer than a command may take: then the reader gets `unavailable`. */
async function untilStarted (sequencer: RoomSequencer): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new BrokerUnavailableError('Redis could not subscribe to the room in time')), REDIS_COMMAND_TIMEOUT_MS)
  })
  try {
    await Promise.race([sequencer.started, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function toMessage (room: string, epoch: string, [id, fields]: StreamEntry): StoredMessage {
  const seq = Number(id.slice(0, id.indexOf('-')))
  // Fields are written in a fixed order by PUBLISH_SCRIPT: f, x, t, then u (a user), a (the API) and d (data) when present.
  const message: StoredMessage = { room, id: formatMessageId(epoch, seq), seq, from: fields[1] as string, text: fields[3] as string, ts: Number(fields[5]) }
  if (fields.length <= 6) return message
  let user: string | undefined
  let api: true | undefined
  let data: string | undefined
  for (let i = 6; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'u') user = fields[i + 1] as string
    else if (fields[i] === 'a') api = true
    else if (fields[i] === 'd') data = fields[i + 1] as string
  }
  return withOrigin(message, user, api, data)
}

/** `message` with the sender's user id, the API mark and the data, when there are any. */
function withOrigin (message: StoredMessage, user: string | undefined, api: true | undefined, data?: string): StoredMessage {
  if (user !== undefined) message.user = user
  if (api !== undefined) message.api = api
  if (data !== undefined) message.data = data
  return message
}
