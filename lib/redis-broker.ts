// Cluster broker over Redis: each message is stored in its room's stream and
// published on the room's sharded channel in one script (on a Redis Cluster
// only the room's master carries it); every node subscribed to the room
// receives it, and
// a RoomSequencer per room turns that channel into every message once and in
// order (repairing gaps from the log). The room channel also carries
// unsequenced ephemeral payloads (presence changes) past the sequencers.
import { createHash } from 'node:crypto'
import { ReplyError } from 'ioredis'
import {
  BrokerTimeoutError, BrokerUnavailableError,
  type Broker, type BrokerHealth, type ClusterStats, type EphemeralChannel, type EphemeralPayload,
  type MessageHandler, type PublishOptions, type PublishReceipt, type ReadRequest, type ReadResult
} from './broker.js'
import type { StoredMessage } from './frames.js'
import { InFlightLimit } from './in-flight-limit.js'
import { IDEMPOTENCY_TTL_MS, READS_MAX_IN_FLIGHT, REDIS_RETRY_MS, REDIS_WAIT_TIMEOUT_MS } from './limits.js'
import { formatMessageId, newEpoch, parseMessageId } from './message-id.js'
import { type RedisErrorReporter, isRedisAway, reportUnlessAway } from './redis-errors.js'
import { RedisProbe } from './redis-probe.js'
import { defineScripts, idempotencyKey, PUBLISH_SCRIPT, type PublishReply, roomKeys, type StreamEntry } from './redis-scripts.js'
import type { RedisClient } from './redis-topology.js'
import { type LogPosition, type MissedBatch, RoomSequencer } from './room-sequencer.js'
import { ShardedSubscription } from './sharded-subscription.js'
import { SubscriptionBatcher } from './subscription-batcher.js'

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
  /** Replicas that must hold a message before it is acknowledged (REDIS_WAIT_REPLICAS; 0 or absent: none). */
  waitReplicas?: number
  /**
   * With `waitReplicas`: the connection the publishes and their WAITs go on.
   * A WAIT holds its connection until the replicas confirm or it times out,
   * so on `command` it would hold every read, presence write and probe behind
   * it whenever replicas are missing (as after a failover that promoted the
   * only replica). Defaults to `command`.
   */
  replicatedPublisher?: RedisClient
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
  /**
   * Every SUBSCRIBE and UNSUBSCRIBE of rooms goes through it: paced, in
   * chunks. (A resubscription after a reconnect is ShardedSubscription's,
   * in chunks of RESUBSCRIBE_CHUNK.)
   */
  private readonly subscriptions: SubscriptionBatcher
  /** Per room, the last attempt to subscribe and learn where its log stands: a reader waits for it, not a clock. */
  private readonly joinAttempts = new Map<string, Promise<LogPosition>>()
  /** Reads of room logs (history, repairs) waiting for Redis at a time. */
  private readonly reads = new InFlightLimit(READS_MAX_IN_FLIGHT)
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
    const subscription = this.subscription = new ShardedSubscription(options.subscriber)
    this.subscriptions = new SubscriptionBatcher({
      // A confirmation coming back is the subscription making progress too (probes queue behind it).
      subscribe: (channels) => subscription.subscribe(channels).then(() => this.probe.messageArrived(channels[0] as string)),
      unsubscribe: (channels) => Promise.all(channels.map((channel) => subscription.unsubscribe(channel)))
    })
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
      if ((this.options.waitReplicas ?? 0) > 0) {
        reply = await this.publishReplicated(
          key === undefined ? [keys.meta, keys.log, keys.channel] : [keys.meta, keys.log, keys.channel, idempotencyKey(room, key)],
          [newEpoch(), historySize, historyMaxBytes, from, text, ts, room, historyTtlS, IDEMPOTENCY_TTL_MS, ...optional])
      } else {
        reply = key === undefined
          ? await this.command.chatPublish(
            keys.meta, keys.log, keys.channel, newEpoch(), historySize, historyMaxBytes, from, text, ts, room, historyTtlS, IDEMPOTENCY_TTL_MS,
            ...optional)
          : await this.command.chatPublishOnce(
            keys.meta, keys.log, keys.channel, idempotencyKey(room, key), newEpoch(), historySize, historyMaxBytes,
            from, text, ts, room, historyTtlS, IDEMPOTENCY_TTL_MS, ...optional)
      }
    } catch (error) {
      throw error instanceof BrokerTimeoutError ? error : this.publishFailure(error)
    }
    this.full = false
    const [epoch, seq, first] = reply
    if (first !== undefined) return JSON.parse(first) as PublishReceipt
    const id = formatMessageId(epoch, seq)
    // With a key, the answer is the receipt either way, as the key records it.
    return key === undefined ? withOrigin({ room, id, seq, from, text, ts }, user, api, data) : { id, room, ts }
  }

  /**
   * REDIS_WAIT_REPLICAS ≥ 1: the publish script, then `WAIT n timeout`, in
   * one pipeline. Written together on one connection, WAIT runs on the server
   * that ran the script, right after it, and counts the replicas that hold
   * everything this connection wrote so far, the message included (a WAIT
   * sent on its own could follow a reconnect to another server and count
   * nothing). On a Redis Cluster a pipeline goes to the node that owns its
   * keys' slot: the room's master. The script is sent by its hash, and in full
   * only if that server does not know it yet (ioredis's own fallback would
   * resend it after the WAIT).
   */
  private async publishReplicated (keys: string[], args: Array<string | number>): Promise<PublishReply> {
    const replicas = this.options.waitReplicas ?? 0
    /** Replies of the script and of WAIT, in that order (a pipeline of two commands answers two). */
    const run = async (byHash: boolean) => {
      const pipeline = (this.options.replicatedPublisher ?? this.command).pipeline()
      if (byHash) pipeline.evalsha(PUBLISH_SCRIPT_SHA, keys.length, ...keys, ...args)
      else pipeline.eval(PUBLISH_SCRIPT, keys.length, ...keys, ...args)
      pipeline.wait(replicas, REDIS_WAIT_TIMEOUT_MS)
      return await pipeline.exec() as [[Error | null, unknown], [Error | null, unknown]]
    }
    let [[scriptError, reply], [waitError, confirmed]] = await run(true)
    if (scriptError?.message.startsWith('NOSCRIPT') === true) [[scriptError, reply], [waitError, confirmed]] = await run(false)
    if (scriptError) throw scriptError
    // A failed WAIT (the connection dropped, the command timed out) confirmed nothing either.
    if (waitError || (confirmed as number) < replicas) {
      const reason = waitError?.message ?? `${String(confirmed)} of ${replicas} confirmed within ${REDIS_WAIT_TIMEOUT_MS} ms`
      throw new BrokerTimeoutError(
        `Redis stored the message but too few replicas confirmed it (${reason}); it may be lost if the server fails, and if it is not, it arrives like any other`)
    }
    return reply as PublishReply
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
    if (sequencer && !sequencer.isStarted) await untilStarted(sequencer, this.joinAttempts.get(room))
    const keys = roomKeys(room)
    const position = since === undefined ? undefined : parseMessageId(since)
    try {
      const [epoch, recovered, entries, earlier] = await this.reads.run(() => this.command.chatRead(
        keys.meta, keys.log,
        since === undefined ? '' : (position?.epoch ?? '-'), position?.seq ?? 0, limit, fallbackLimit ?? limit
      ))
      return { messages: epoch === null ? [] : toMessages(room, epoch, earlier, entries), recovered: recovered === 1 }
    } catch (error) {
      this.reportUnexpected(error, 'reading a room history')
      throw new BrokerUnavailableError(`Redis could not read the history (${(error as Error).message})`)
    }
  }

  subscribe (room: string): void {
    this.rooms.get(room)?.stop()
    const sequencer = new RoomSequencer({
      readPosition: () => {
        const attempt = this.subscribeRoom(room)
        this.joinAttempts.set(room, attempt)
        return attempt
      },
      readAfter: (position, limit) => this.readAfter(room, position, limit),
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
    this.joinAttempts.delete(room)
    this.subscriptions.unsubscribe([roomKeys(room).channel]).catch(reportUnlessAway(this.report, 'unsubscribing from a room'))
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
    await this.subscriptions.subscribe([keys.channel])
    const [epoch, seq] = await this.command.hmget(keys.meta, 'e', 's')
    return { epoch: epoch ?? undefined, seq: Number(seq ?? 0) }
  }

  private async readAfter (room: string, position: LogPosition, limit: number): Promise<MissedBatch> {
    const keys = roomKeys(room)
    const [epoch, last, from, entries, earlier] = await this.reads.run(() => this.command.chatAfter(keys.meta, keys.log, position.epoch ?? '', position.seq, limit))
    return { epoch, last, from, messages: epoch === null ? [] : toMessages(room, epoch, earlier, entries) }
  }

  private onChannelMessage (channel: string, payload: string): void {
    if (this.probe.owns(channel)) {
      this.probe.received(channel, payload)
      return
    }
    this.probe.messageArrived(channel)
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

/** What EVALSHA names PUBLISH_SCRIPT by. */
const PUBLISH_SCRIPT_SHA = createHash('sha1').update(PUBLISH_SCRIPT).digest('hex')

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

/**
 * Waits for a room to start: until its attempt to subscribe and read where
 * the log stands succeeds, or fails (then the reader gets `unavailable`).
 * Not a clock of its own: each command of the attempt has
 * REDIS_COMMAND_TIMEOUT_MS from when it is written, and in a join storm the
 * subscriptions first wait in the node's queue (SubscriptionBatcher), which is
 * not Redis being slow.
 */
async function untilStarted (sequencer: RoomSequencer, attempt: Promise<LogPosition> | undefined): Promise<void> {
  try {
    // The sequencer handles its attempt first (it awaited it first): once the
    // attempt is through, the room has started, unless it was left meanwhile
    // (then the reader reads the history all the same, and nothing hangs).
    await Promise.race([sequencer.started, attempt])
  } catch (error) {
    throw new BrokerUnavailableError(`Redis could not subscribe to the room (${(error as Error).message})`)
  }
}

/**
 * The log's entries as messages, each with the epoch it was written in: the
 * first of the earlier epochs (meta `h`: "<epoch> <last seq> …", oldest
 * first) whose last sequence is at or after the entry's, else the current one.
 */
function toMessages (room: string, epoch: string, earlier: string | null, entries: StreamEntry[]): StoredMessage[] {
  if (earlier === null) return entries.map((entry) => toMessage(room, epoch, entry))
  const ends: Array<{ epoch: string, last: number }> = []
  const words = earlier.split(' ')
  for (let i = 0; i + 1 < words.length; i += 2) ends.push({ epoch: words[i] as string, last: Number(words[i + 1]) })
  return entries.map((entry) => {
    const seq = Number(entry[0].slice(0, entry[0].indexOf('-')))
    return toMessage(room, ends.find((end) => seq <= end.last)?.epoch ?? epoch, entry)
  })
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
