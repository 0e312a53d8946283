// Is this node's Redis subscription alive? A probe published on the command
// connection must come back on the node's own subscription — on every master:
// a Redis Cluster gets one probe channel hashed to each master's slots, one
// server or a Sentinel's master one channel. If probes stop coming back while
// Redis answers commands, a subscription is silently dead (a black-holed
// connection looks open): drop it, so it reconnects.
import { Cluster } from 'ioredis'
import type { BrokerHealth } from './broker.js'
import { keySlot } from './key-slot.js'
import { probeChannel } from './redis-scripts.js'
import type { RedisClient } from './redis-topology.js'
import type { ShardedSubscription } from './sharded-subscription.js'

/** Probes missed in a row before the subscription counts as dead. */
const STALE_AFTER_PROBES = 3

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
  /** When a probe last came back on it; 0: none yet. */
  lastAt: number
}

export class RedisProbe {
  /** Round trip of the last probe that came back, in milliseconds. */
  roundTripMs = 0
  /** Current probe channels (one per master). */
  private readonly channels = new Map<string, ProbeChannel>()
  private readonly prefix: string
  private slotMapSignature = ''
  private lastResubscribeAt = 0
  private timer: NodeJS.Timeout | undefined
  private stopped = false

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
    this.lastResubscribeAt = this.options.now()
  }

  /** A probe came back (the payload is its send time). */
  received (channel: string, payload: string): void {
    const probe = this.channels.get(channel)
    if (!probe) return
    const sentAt = Number(payload)
    probe.lastAt = this.options.now()
    if (Number.isFinite(sentAt)) this.roundTripMs = probe.lastAt - sentAt
  }

  health (): BrokerHealth {
    const { command, readyProbeMs, now } = this.options
    if (command.status !== 'ready') {
      return { ok: false, check: 'redis', reason: `the Redis command connection is ${command.status}` }
    }
    const stale = this.stalest()
    if (stale && now() - stale.lastAt > STALE_AFTER_PROBES * readyProbeMs) {
      const where = stale.master === ONLY_MASTER ? 'through Redis' : `through the Redis master ${stale.master}`
      return {
        ok: false,
        check: 'redis-subscription',
        reason: stale.lastAt === 0
          ? `no readiness probe has come back ${where} yet`
          : `the last readiness probe came back ${where} ${now() - stale.lastAt} ms ago`
      }
    }
    return { ok: true }
  }

  /** Publishes a probe on every master; if they have stopped coming back while both connections look ready, reconnects the subscriber. */
  send (): void {
    if (this.stopped) return
    const { command, subscription, readyProbeMs, onPublishError } = this.options
    const added = this.refreshChannels()
    if (added.length > 0) subscription.subscribe(added).catch(onPublishError)
    const sentAt = String(this.options.now())
    for (const channel of this.channels.keys()) command.spublish(channel, sentAt).catch(onPublishError)
    const now = this.options.now()
    const stale = this.stalest()
    if (stale && now - stale.lastAt > STALE_AFTER_PROBES * readyProbeMs && command.status === 'ready' && subscription.client.status === 'ready' &&
        now - this.lastResubscribeAt > STALE_AFTER_PROBES * readyProbeMs) {
      this.lastResubscribeAt = now
      // Reconnects at once; the subscription resubscribes, and its owner repairs.
      subscription.reconnect(stale.master === ONLY_MASTER ? undefined : stale.master)
    }
  }

  /** The probe channel heard from least recently. */
  private stalest (): ProbeChannel | undefined {
    let stalest: ProbeChannel | undefined
    for (const probe of this.channels.values()) if (!stalest || probe.lastAt < stalest.lastAt) stalest = probe
    return stalest
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
        this.channels.set(channel, { master, lastAt: 0 })
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
