// Cluster bus over Redis: each message is stored in its room's stream and
// published in one script; every node subscribed to the room receives it.
// A node tracks, per room, the last sequence it delivered: a jump in the
// sequence, a reconnect or a resubscribe makes it read the missing range
// from the log before anything newer, so its members get every message
// once and in order even when its Redis connections drop.
import type { Redis } from 'ioredis'
import { BrokerUnavailableError, type Bus, type ClusterStats, type BusHandlers, type BusHealth, type BusMember, type ReadRequest, type ReadResult } from './bus.js'
import type { StoredMessage } from './frames.js'
import { REDIS_COMMAND_TIMEOUT_MS, REDIS_RETRY_MS, REPAIR_BATCH, REPAIR_PENDING_MAX, ROOM_LOG_RETENTION_MS } from './limits.js'
import { formatMessageId, newEpoch, parseMessageId } from './message-id.js'
import { AFTER_SCRIPT, nodeKey, probeChannel, PUBLISH_SCRIPT, READ_SCRIPT, roomKeys } from './redis-scripts.js'

export interface RedisBusOptions {
  /** Connection for commands and scripts. */
  command: Redis
  /** Connection in subscriber mode (it can do nothing else). */
  subscriber: Redis
  nodeId: string
  historySize: number
  presenceTtlMs: number
  readyProbeMs: number
  now?: () => number
}

/** What travels on a room channel. */
type Wire =
  | { k: 'm', r: string, e: string, s: number, f: string, x: string, t: number }
  | { k: 'p', r: string, n: string, j: string[], l: string[] }

type WireMessage = Extract<Wire, { k: 'm' }>

/** A stream entry as Redis returns it: [id, [field, value, …]]. */
type Entry = [string, string[]]

interface RoomState {
  readonly name: string
  /** Epoch of the log the sequence below belongs to; undefined before the room's first message. */
  epoch: string | undefined
  /** Last sequence delivered to the hub; -1 until the starting point is known. */
  lastSeq: number
  /** While true, arriving messages wait in `pending` (the log is being read). */
  repairing: boolean
  pending: WireMessage[]
  /** `pending` overflowed: the log must be read again after the current repair. */
  overflowed: boolean
  /** Resolves when the starting point is known; reads wait on it so history and live messages meet. */
  started: Promise<void>
  markStarted: () => void
  retryTimer: NodeJS.Timeout | undefined
}

const PRESENCE_REFRESH_FRACTION = 3

export class RedisBus implements Bus {
  readonly clusterStats: ClusterStats = { redisReconnects: 0, gapsDetected: 0, messagesRepaired: 0, probeRoundTripMs: 0 }
  private readonly command: Redis
  private readonly subscriber: Redis
  private readonly rooms = new Map<string, RoomState>()
  /** Members on this node per room (field → name), re-registered after Redis comes back. */
  private readonly localMembers = new Map<string, Map<string, string>>()
  private handlers: BusHandlers | undefined
  private readonly now: () => number
  private readonly probeChannel: string
  private lastProbeAt = 0
  private lastResubscribeAt = 0
  private probeTimer: NodeJS.Timeout | undefined
  private presenceTimer: NodeJS.Timeout | undefined
  private closed = false
  private subscriberReadyOnce = false

  constructor (private readonly options: RedisBusOptions) {
    this.command = options.command
    this.subscriber = options.subscriber
    this.now = options.now ?? Date.now
    this.probeChannel = probeChannel(options.nodeId)
    this.command.defineCommand('chatPublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT })
    this.command.defineCommand('chatRead', { numberOfKeys: 2, lua: READ_SCRIPT })
    this.command.defineCommand('chatAfter', { numberOfKeys: 2, lua: AFTER_SCRIPT })
  }

  async start (handlers: BusHandlers): Promise<void> {
    this.handlers = handlers
    this.subscriber.on('message', (channel: string, payload: string) => this.onChannelMessage(channel, payload))
    this.subscriber.on('ready', () => this.onSubscriberReady())
    this.command.on('ready', () => this.onCommandReady())
    await this.subscriber.subscribe(this.probeChannel)
    this.subscriberReadyOnce = true
    this.lastResubscribeAt = this.now()
    await this.refreshNode()
    this.probeTimer = setInterval(() => this.probe(), this.options.readyProbeMs)
    this.probeTimer.unref()
    this.presenceTimer = setInterval(() => { this.refreshNode().catch(() => {}) }, this.options.presenceTtlMs / PRESENCE_REFRESH_FRACTION)
    this.presenceTimer.unref()
    this.probe()
  }

  async publish (room: string, from: string, text: string): Promise<StoredMessage> {
    const keys = this.keys(room)
    const ts = this.now()
    let result: [string, number]
    try {
      result = await (this.command as unknown as Scripts).chatPublish(
        keys.meta, keys.log, keys.channel, newEpoch(), this.options.historySize, from, text, ts, room, ROOM_LOG_RETENTION_MS
      )
    } catch (error) {
      throw new BrokerUnavailableError(`Redis could not store the message (${(error as Error).message}); nothing was published, try again`)
    }
    const [epoch, seq] = result
    return { room, id: formatMessageId(epoch, seq), seq, from, text, ts }
  }

  async read (room: string, { since, limit, fallbackLimit }: ReadRequest): Promise<ReadResult> {
    // A room this node is joining: read only once live messages are flowing,
    // so the history and the live stream overlap instead of leaving a hole.
    const state = this.rooms.get(room)
    if (state && state.lastSeq < 0) await this.untilStarted(state)
    const keys = this.keys(room)
    const position = since === undefined ? undefined : parseMessageId(since)
    let reply: [string | null, number, Entry[]]
    try {
      reply = await (this.command as unknown as Scripts).chatRead(
        keys.meta, keys.log,
        since === undefined ? '' : (position?.epoch ?? '-'), position?.seq ?? 0, limit, fallbackLimit ?? limit
      )
    } catch (error) {
      throw new BrokerUnavailableError(`Redis could not read the history (${(error as Error).message})`)
    }
    const [epoch, recovered, entries] = reply
    return { messages: epoch === null ? [] : entries.map((entry) => toMessage(room, epoch, entry)), recovered: recovered === 1 }
  }

  subscribe (room: string): void {
    const state: RoomState = {
      name: room,
      epoch: undefined,
      lastSeq: -1,
      repairing: true,
      pending: [],
      overflowed: false,
      started: Promise.resolve(),
      markStarted: () => {},
      retryTimer: undefined
    }
    state.started = new Promise((resolve) => { state.markStarted = resolve })
    this.rooms.set(room, state)
    this.startRoom(state)
  }

  /** Waits for a room to start, but no longer than a command may take: then the reader gets `unavailable`. */
  private async untilStarted (state: RoomState): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new BrokerUnavailableError('Redis could not subscribe to the room in time')), REDIS_COMMAND_TIMEOUT_MS)
    })
    try {
      await Promise.race([state.started, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  unsubscribe (room: string): void {
    const state = this.rooms.get(room)
    if (!state) return
    clearTimeout(state.retryTimer)
    this.rooms.delete(room)
    this.subscriber.unsubscribe(this.keys(room).channel).catch(() => {})
  }

  memberJoined (room: string, member: BusMember): void {
    let members = this.localMembers.get(room)
    if (!members) {
      members = new Map()
      this.localMembers.set(room, members)
    }
    const field = this.memberField(member)
    members.set(field, member.name)
    this.command.hset(this.keys(room).members, field, member.name).catch(() => {})
  }

  memberLeft (room: string, member: BusMember): void {
    const members = this.localMembers.get(room)
    const field = this.memberField(member)
    members?.delete(field)
    if (members?.size === 0) this.localMembers.delete(room)
    // A failed removal is repaired when the connection returns (onCommandReady).
    this.command.hdel(this.keys(room).members, field).catch(() => { this.staleFields.add(`${room}\n${field}`) })
  }

  private readonly staleFields = new Set<string>()

  /**
   * Joins that arrive together share one read of the member list (a join
   * storm would otherwise read the whole, growing list once per joiner).
   */
  remoteMembers (room: string): Promise<string[]> {
    let pending = this.membersInFlight.get(room)
    if (!pending) {
      pending = this.readRemoteMembers(room).finally(() => this.membersInFlight.delete(room))
      this.membersInFlight.set(room, pending)
    }
    return pending
  }

  private readonly membersInFlight = new Map<string, Promise<string[]>>()

  private async readRemoteMembers (room: string): Promise<string[]> {
    const key = this.keys(room).members
    let all: Record<string, string>
    try {
      all = await this.command.hgetall(key)
    } catch {
      return []
    }
    const byNode = new Map<string, Array<[string, string]>>()
    for (const [field, name] of Object.entries(all)) {
      const node = field.slice(0, field.indexOf('/'))
      if (node === this.options.nodeId) continue
      let list = byNode.get(node)
      if (!list) byNode.set(node, list = [])
      list.push([field, name])
    }
    if (byNode.size === 0) return []
    const nodes = [...byNode.keys()]
    const alive = await Promise.all(nodes.map((node) => this.command.exists(nodeKey(node)).catch(() => 1)))
    const names: string[] = []
    const dead: string[] = []
    nodes.forEach((node, i) => {
      for (const [field, name] of byNode.get(node) ?? []) {
        if (alive[i] === 1) names.push(name)
        else dead.push(field)
      }
    })
    // Members of a node whose heartbeat key expired are gone; tidy them up.
    if (dead.length > 0) this.command.hdel(key, ...dead).catch(() => {})
    return names
  }

  publishPresence (room: string, joined: string[], left: string[]): void {
    const wire: Wire = { k: 'p', r: room, n: this.options.nodeId, j: joined, l: left }
    this.command.publish(this.keys(room).channel, JSON.stringify(wire)).catch(() => {})
  }

  health (): BusHealth {
    if (this.command.status !== 'ready') {
      return { ok: false, check: 'redis', reason: `the Redis command connection is ${this.command.status}` }
    }
    const age = this.now() - this.lastProbeAt
    if (age > 3 * this.options.readyProbeMs) {
      return {
        ok: false,
        check: 'redis-subscription',
        reason: this.lastProbeAt === 0
          ? 'no readiness probe has come back through Redis yet'
          : `the last readiness probe came back through Redis ${age} ms ago`
      }
    }
    return { ok: true }
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.probeTimer)
    clearInterval(this.presenceTimer)
    for (const state of this.rooms.values()) clearTimeout(state.retryTimer)
    // Leave no ghosts: other nodes drop this node's members at once.
    const cleanup = [...this.localMembers].map(([room, members]) =>
      this.command.hdel(this.keys(room).members, ...members.keys()).catch(() => 0))
    await Promise.all([...cleanup, this.command.del(nodeKey(this.options.nodeId)).catch(() => 0)])
    this.handlers = undefined
  }

  /** Not cached: a cache would grow with every room ever broadcast to. */
  private keys (room: string) {
    return roomKeys(room)
  }

  private memberField (member: BusMember): string {
    return `${this.options.nodeId}/${member.id}`
  }

  /**
   * Subscribes, then learns where the log stands; messages that arrive
   * meanwhile wait. While Redis is away it tries again (a returning
   * subscriber also starts every room that has not started).
   */
  private startRoom (state: RoomState): void {
    const keys = this.keys(state.name)
    clearTimeout(state.retryTimer)
    state.retryTimer = undefined
    this.subscriber.subscribe(keys.channel)
      .then(() => this.command.hmget(keys.meta, 'e', 's'))
      .then(([epoch, seq]) => {
        // Left meanwhile, or started by another attempt: that baseline stands.
        if (this.rooms.get(state.name) !== state || state.lastSeq >= 0) return
        state.epoch = epoch ?? undefined
        state.lastSeq = Number(seq ?? 0)
        state.markStarted()
        this.finishRepair(state)
      }, () => {
        if (this.rooms.get(state.name) !== state || this.closed || state.lastSeq >= 0) return
        state.retryTimer = setTimeout(() => this.startRoom(state), REDIS_RETRY_MS)
        state.retryTimer.unref()
      })
  }

  private onChannelMessage (channel: string, payload: string): void {
    if (channel === this.probeChannel) {
      const sentAt = Number(payload)
      this.lastProbeAt = this.now()
      if (Number.isFinite(sentAt)) this.clusterStats.probeRoundTripMs = this.lastProbeAt - sentAt
      return
    }
    let wire: Wire
    try {
      wire = JSON.parse(payload) as Wire
    } catch {
      return
    }
    if (wire.k === 'p') {
      if (wire.n !== this.options.nodeId) this.handlers?.presence(wire.r, wire.j, wire.l)
      return
    }
    const state = this.rooms.get(wire.r)
    if (!state) return
    if (state.repairing) {
      if (state.pending.length < REPAIR_PENDING_MAX) state.pending.push(wire)
      else state.overflowed = true
      return
    }
    this.accept(state, wire)
  }

  /** Delivers the next message in order, drops a duplicate, or starts a repair on a gap. */
  private accept (state: RoomState, wire: WireMessage): void {
    if (wire.e !== state.epoch) {
      if (state.epoch !== undefined || state.lastSeq !== 0) {
        // The log was lost and started anew (e.g. Redis restarted without its data).
        this.clusterStats.gapsDetected++
        state.lastSeq = 0
      }
      state.epoch = wire.e
    }
    if (wire.s <= state.lastSeq) return
    if (wire.s === state.lastSeq + 1) {
      state.lastSeq = wire.s
      this.handlers?.message({ room: wire.r, id: formatMessageId(wire.e, wire.s), seq: wire.s, from: wire.f, text: wire.x, ts: wire.t })
      return
    }
    this.clusterStats.gapsDetected++
    state.pending.push(wire)
    this.repair(state)
  }

  /** Reads what this node missed from the log and delivers it before anything newer. */
  private repair (state: RoomState): void {
    state.repairing = true
    clearTimeout(state.retryTimer)
    state.retryTimer = undefined
    this.readMissing(state).then(() => this.finishRepair(state), () => {
      if (this.rooms.get(state.name) !== state || this.closed) return
      state.retryTimer = setTimeout(() => this.repair(state), REDIS_RETRY_MS)
      state.retryTimer.unref()
    })
  }

  private async readMissing (state: RoomState): Promise<void> {
    const keys = this.keys(state.name)
    for (;;) {
      const [epoch, last, entries] = await (this.command as unknown as Scripts).chatAfter(keys.meta, keys.log, state.lastSeq, REPAIR_BATCH) as [string | null, number, Entry[]]
      if (this.rooms.get(state.name) !== state) return
      if (epoch === null) return
      if (epoch !== state.epoch) {
        if (state.epoch !== undefined) {
          // A new log: start from its beginning.
          state.epoch = epoch
          state.lastSeq = 0
          continue
        }
        state.epoch = epoch
      }
      for (const entry of entries) {
        const message = toMessage(state.name, epoch, entry)
        if (message.seq <= state.lastSeq) continue
        state.lastSeq = message.seq
        this.clusterStats.messagesRepaired++
        this.handlers?.message(message)
      }
      if (entries.length < REPAIR_BATCH || state.lastSeq >= last) return
    }
  }

  /** Leaves repair mode, delivering what arrived meanwhile (which may start another repair). */
  private finishRepair (state: RoomState): void {
    if (this.rooms.get(state.name) !== state) return
    if (state.overflowed) {
      state.overflowed = false
      state.pending = []
      this.repair(state)
      return
    }
    state.repairing = false
    const pending = state.pending
    state.pending = []
    for (const wire of pending) {
      if (state.repairing) state.pending.push(wire)
      else this.accept(state, wire)
    }
  }

  /** The subscriber came back: subscribe again to everything and repair every room. */
  private onSubscriberReady (): void {
    if (!this.subscriberReadyOnce || this.closed) return
    this.clusterStats.redisReconnects++
    this.lastResubscribeAt = this.now()
    const channels = [this.probeChannel, ...[...this.rooms.keys()].map((room) => this.keys(room).channel)]
    for (const state of this.rooms.values()) state.repairing = true
    this.subscriber.subscribe(...channels).then(() => {
      for (const state of this.rooms.values()) {
        if (state.lastSeq < 0) this.startRoom(state)
        else this.repair(state)
      }
      this.probe()
    }, () => {
      // The connection dropped again; the next 'ready' tries again.
    })
  }

  /** The command connection came back: make this node's presence true again. */
  private onCommandReady (): void {
    if (this.closed) return
    this.refreshNode().catch(() => {})
    for (const [room, members] of this.localMembers) {
      if (members.size > 0) this.command.hset(this.keys(room).members, Object.fromEntries(members)).catch(() => {})
    }
    for (const stale of this.staleFields) {
      const [room, field] = stale.split('\n') as [string, string]
      this.command.hdel(this.keys(room).members, field).then(() => this.staleFields.delete(stale), () => {})
    }
  }

  private refreshNode (): Promise<unknown> {
    return this.command.set(nodeKey(this.options.nodeId), '1', 'PX', this.options.presenceTtlMs)
  }

  /**
   * Publishes a probe that must come back on this node's own subscription.
   * If probes stop coming back while Redis answers commands, the subscription
   * is silently dead: drop it and open it again (then every room is repaired).
   */
  private probe (): void {
    if (this.closed) return
    this.command.publish(this.probeChannel, String(this.now())).catch(() => {})
    const now = this.now()
    const stale = now - this.lastProbeAt > 3 * this.options.readyProbeMs
    if (stale && this.command.status === 'ready' && this.subscriber.status === 'ready' &&
        now - this.lastResubscribeAt > 3 * this.options.readyProbeMs) {
      this.lastResubscribeAt = now
      this.subscriber.disconnect(true)
    }
  }
}

interface Scripts {
  chatPublish (...args: Array<string | number>): Promise<[string, number]>
  chatRead (...args: Array<string | number>): Promise<[string | null, number, Entry[]]>
  chatAfter (...args: Array<string | number>): Promise<[string | null, number, Entry[]]>
}

function toMessage (room: string, epoch: string, [id, fields]: Entry): StoredMessage {
  const seq = Number(id.slice(0, id.indexOf('-')))
  // Fields are written in a fixed order by PUBLISH_SCRIPT: f, x, t.
  return { room, id: formatMessageId(epoch, seq), seq, from: fields[1] as string, text: fields[3] as string, ts: Number(fields[5]) }
}
