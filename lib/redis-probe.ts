// Is this node's Redis subscription alive? A probe published on the command
// connection must come back on the node's own subscription — on every master:
// a Redis Cluster gets one probe channel hashed to each master's slots, one
// server or a Sentinel's master one channel. If probes stop coming back while
// Redis answers commands, a subscription is silently dead (a black-holed
// connection looks open): drop it, so it reconnects. Any other message coming
// back from a master keeps its subscription alive even when the probe is
// late, queued behind them (subscription-liveness.ts).
import { Cluster } from 'ioredis'
import type { BrokerHealth } from './broker.js'
import { keySlot } from './key-slot.js'
import { probeChannel } from './redis-scripts.js'
import type { RedisClient } from './redis-topology.js'
import type { ShardedSubscription } from './sharded-subscription.js'
import { SubscriptionLiveness } from './subscription-liveness.js'

/** Probes missed in a row before the subscription counts as dead. */
const STALE_AFTER_PROBES = 3
/** A probe tick this many periods after the previous one found the node's event loop blocked. */
const LATE_TICK_PROBES = 2

/** Candidate channel names tried to find one per master; a master serving a single slot needs ~16k on average. */
const PROBE_CHANNEL_SEARCH_LIMIT = 1_000_000

/** The one "master" of a single server or a Sentinel's master. */
const ONLY_MASTER = 'redis'

export interface RedisProbeOptions {
  command: RedisClient
  subscription: ShardedSubscription
  nodeId: string
  readyProbeMs: number
  now: () => number
  /** A probe could not be published, or its channel subscribed, for a reason other than Redis being away. */
  onPublishError: (error: unknown) => void
}

interface ProbeChannel {
  master: string
  /** Whether the master's subscription makes progress (its probe, or any message, coming back). */
  liveness: SubscriptionLiveness
}

export class RedisProbe {
  /** Round trip of the last probe that came back, in milliseconds. */
  roundTripMs = 0
  /** Current probe channels (one per master). */
  private readonly channels = new Map<string, ProbeChannel>()
  private readonly prefix: string
  private slotMapSignature = ''
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  /** When `send` last ran: a tick far later than planned means the node's own loop was blocked. */
  private lastTickAt: number | undefined
  /** Slot → master, as the probe channels were last chosen (Cluster only). */
  private owners: string[] = []

  constructor (private readonly options: RedisProbeOptions) {
    this.prefix = probeChannel(options.nodeId, 0).replace(/0\}$/, '')
  }

  /** Whether `channel` is one of this node's probe channels (the subscriber's owner routes them to `received`). */
  owns (channel: string): boolean {
    return channel.startsWith(this.prefix)
  }

  /** Subscribes the probe channels, then probes every `readyProbeMs`. */
  async start (): Promise<void> {
    this.resubscribed()
    await this.options.subscription.subscribe(this.refreshChannels())
    this.timer = setInterval(() => this.send(), this.options.readyProbeMs)
    this.timer.unref()
    this.send()
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
  }

  /** The subscriber has just subscribed again: give it time before judging it dead. */
  resubscribed (): void {
    const now = this.options.now()
    for (const probe of this.channels.values()) probe.liveness.resubscribed(now)
  }

  /** A probe came back (the payload is its send time). */
  received (channel: string, payload: string): void {
    const probe = this.channels.get(channel)
    if (!probe) return
    const sentAt = Number(payload)
    const now = this.options.now()
    probe.liveness.probeReturned(now)
    if (Number.isFinite(sentAt)) this.roundTripMs = now - sentAt
  }

  /** Any other message arrived on `channel`: its master's subscription is alive, whatever its probe's delay. */
  messageArrived (channel: string): void {
    const now = this.options.now()
    const master = this.owners.length === 0 ? undefined : this.owners[keySlot(channel)]
    for (const probe of this.channels.values()) {
      if (master === undefined || probe.master === master) probe.liveness.messageArrived(now)
    }
  }

  health (): BrokerHealth {
    const { command, now } = this.options
    if (command.status !== 'ready') {
      return { ok: false, check: 'redis', reason: `the Redis command connection is ${command.status}` }
    }
    for (const probe of this.channels.values()) {
      const reason = probe.liveness.staleReason(now(), probe.master === ONLY_MASTER ? 'through Redis' : `through the Redis master ${probe.master}`)
      if (reason !== undefined) return { ok: false, check: 'redis-subscription', reason }
    }
    return { ok: true }
  }

  /** Publishes a probe on every master; if they have stopped coming back while both connections look ready, reconnects the subscriber. */
  send (): void {
    if (this.stopped) return
    const { command, subscription, onPublishError } = this.options
    const added = this.refreshChannels()
    if (added.length > 0) subscription.subscribe(added).catch(onPublishError)
    const sentAt = String(this.options.now())
    for (const channel of this.channels.keys()) command.spublish(channel, sentAt).catch(onPublishError)
    const now = this.options.now()
    // After a blocked loop (a join storm, a long GC) what Redis sent is still
    // unread in the socket, read only after this timer: judge on the next tick.
    const late = this.lastTickAt !== undefined && now - this.lastTickAt > LATE_TICK_PROBES * this.options.readyProbeMs
    this.lastTickAt = now
    if (late || command.status !== 'ready' || subscription.client.status !== 'ready') return
    for (const probe of this.channels.values()) {
      if (!probe.liveness.isDead(now)) continue
      for (const same of this.channels.values()) if (same.master === probe.master) same.liveness.resubscribed(now)
      // Reconnects at once; the subscription resubscribes, and its owner repairs.
      subscription.reconnect(probe.master === ONLY_MASTER ? undefined : probe.master)
      return
    }
  }

  /**
   * Brings the channels in line with the masters the subscriber knows (a
   * failover or a resharding changes them); returns the channels added.
   */
  private refreshChannels (): string[] {
    const wanted = this.wantedChannels()
    if (wanted === undefined) return []
    const added: string[] = []
    for (const [channel, master] of wanted) {
      const probe = this.channels.get(channel)
      if (probe) probe.master = master
      else {
        this.channels.set(channel, { master, liveness: new SubscriptionLiveness(STALE_AFTER_PROBES * this.options.readyProbeMs, this.options.now()) })
        added.push(channel)
      }
    }
    for (const channel of [...this.channels.keys()]) {
      if (!wanted.has(channel)) {
        this.channels.delete(channel)
        this.options.subscription.unsubscribe(channel).catch(this.options.onPublishError)
      }
    }
    return added
  }

  /** Channel → master: the first candidate channel whose slot each master serves. Undefined: unchanged since last time. */
  private wantedChannels (): Map<string, string> | undefined {
    const client = this.options.subscription.client
    if (!(client instanceof Cluster)) {
      return this.channels.size === 0 ? new Map([[probeChannel(this.options.nodeId, 0), ONLY_MASTER]]) : undefined
    }
    const slots = client.slots
    const owners = slots.map((nodes) => nodes[0] ?? '')
    const signature = owners.join(',')
    // Not known yet (before the first slot map), or the same as last time.
    if (signature === this.slotMapSignature || owners.every((owner) => owner === '')) return undefined
    this.slotMapSignature = signature
    this.owners = owners
    const masters = new Set(owners.filter((owner) => owner !== ''))
    const wanted = new Map<string, string>()
    const found = new Set<string>()
    for (let i = 0; i < PROBE_CHANNEL_SEARCH_LIMIT && found.size < masters.size; i++) {
      const channel = probeChannel(this.options.nodeId, i)
      const owner = owners[keySlot(channel)]
      if (owner !== undefined && owner !== '' && !found.has(owner)) {
        found.add(owner)
        wanted.set(channel, owner)
      }
    }
    return wanted
  }
}
