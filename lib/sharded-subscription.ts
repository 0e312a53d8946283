// The channels a subscriber connection listens to, by sharded pub/sub
// (SSUBSCRIBE/SPUBLISH), alike on every topology: on a Redis Cluster each
// channel is heard from the master serving its slot only (ioredis keeps one
// subscriber connection per master), and a single Redis 7 or a Sentinel's
// master treats sharded channels like any other, so there is one code path.
//
// When the connection comes back after a drop, the channels are subscribed
// again — in chunks of RESUBSCRIBE_CHUNK on one server, by ioredis itself per
// slot on a Cluster — and the owner is told once every one is in effect, so
// it can repair what was published meanwhile.
//
// A slot moved to another master (resharding) is the same on a Cluster: the
// old master unsubscribes the slot's channels, ioredis refreshes its slot map
// and, finding it changed, subscribes every slot on its owner and says
// `subscribersReady`. That refresh may ask a node that has not heard of the
// move yet and find nothing changed, so the map is also re-read every
// REDIS_CLUSTER_SLOTS_REFRESH_MS (not ioredis's `slotsRefreshInterval`: its
// timer re-arms itself after a quit that meets a refresh in flight).
import { Cluster } from 'ioredis'
import { keySlot } from './key-slot.js'
import { REDIS_CLUSTER_SLOTS_REFRESH_MS, RESUBSCRIBE_CHUNK } from './limits.js'
import type { RedisClient } from './redis-topology.js'

export interface ShardedSubscriptionHandlers {
  /** A payload on one of the channels. */
  message: (channel: string, payload: string) => void
  /** The connection came back: the channels are being subscribed again, and what arrives may have gaps. */
  interrupted: () => void
  /** Every channel is subscribed again: what was published before is to be read from where it is stored. */
  restored: () => void
  /** Subscribing again failed (the connection dropped again: its return tries again). */
  restoreFailed: (error: unknown) => void
}

/** The part of ioredis's Cluster internals `reconnect` reaches into: its sharded subscriber per master. */
interface ClusterInternals {
  shardedSubscribers?: { shardedSubscribers?: Map<string, { getInstance: () => { disconnect: () => void } | null }> }
}

export class ShardedSubscription {
  private readonly channels = new Set<string>()
  private handlers: ShardedSubscriptionHandlers | undefined
  /** Nothing to restore before the first subscription (the connection's first `ready` is not a return). */
  private subscribedOnce = false
  private readonly cluster: Cluster | undefined
  private awaitingReady = false
  private refreshTimer: NodeJS.Timeout | undefined

  constructor (readonly client: RedisClient) {
    this.cluster = client instanceof Cluster ? client : undefined
  }

  /** Starts listening; call once, before subscribing. */
  listen (handlers: ShardedSubscriptionHandlers): void {
    this.handlers = handlers
    this.client.on('smessage', (channel: string, payload: string) => this.handlers?.message(channel, payload))
    // A Cluster has subscribed every slot's channels again on its own when it says `subscribersReady`.
    this.client.on(this.cluster ? 'subscribersReady' : 'ready', () => this.onReturn())
    const cluster = this.cluster
    if (cluster) {
      this.refreshTimer = setInterval(() => {
        if (cluster.status === 'ready') cluster.refreshSlotsCache()
      }, REDIS_CLUSTER_SLOTS_REFRESH_MS)
      this.refreshTimer.unref()
    }
  }

  stop (): void {
    this.handlers = undefined
    clearInterval(this.refreshTimer)
  }

  get size (): number {
    return this.channels.size
  }

  /** Subscribes to `channels`; resolves once they are in effect. */
  async subscribe (channels: string[]): Promise<void> {
    this.subscribedOnce = true
    for (const channel of channels) this.channels.add(channel)
    await this.send(channels)
  }

  async unsubscribe (channel: string): Promise<void> {
    this.channels.delete(channel)
    await this.client.sunsubscribe(channel)
  }

  /**
   * Drops the subscriber connection so that it reconnects (a silently dead
   * one looks open): on one server the only one, on a Cluster the one to
   * `master` (a `host:port` of its slot map), or all of them.
   */
  reconnect (master?: string): void {
    if (!this.cluster) {
      this.client.disconnect(true)
      return
    }
    // Not Cluster#disconnect(true): it stops every sharded subscriber, and in
    // ioredis 6.0 one stopped while it connects never settles, so the
    // Cluster's resubscription waits forever. A connection closed under it is
    // replaced and resubscribed as after any lost connection.
    const group = (this.cluster as unknown as ClusterInternals).shardedSubscribers?.shardedSubscribers
    for (const [node, subscriber] of group ?? []) {
      if (master === undefined || node === master) subscriber.getInstance()?.disconnect()
    }
  }

  private async send (channels: string[]): Promise<void> {
    if (this.cluster) {
      // ioredis takes the channels of one slot per call; rooms rarely share one.
      await Promise.all(channels.map((channel) => this.client.ssubscribe(channel)))
      return
    }
    for (let from = 0; from < channels.length; from += RESUBSCRIBE_CHUNK) {
      await this.client.ssubscribe(...channels.slice(from, from + RESUBSCRIBE_CHUNK))
    }
  }

  private onReturn (): void {
    if (!this.subscribedOnce || !this.handlers) return
    this.handlers.interrupted()
    // A reconnecting Cluster may have its subscribers back before it is ready for commands: restore once it is.
    if (this.cluster && this.cluster.status !== 'ready') {
      if (!this.awaitingReady) {
        this.awaitingReady = true
        this.cluster.once('ready', () => {
          this.awaitingReady = false
          this.onReturn()
        })
      }
      return
    }
    this.restore().then(() => this.handlers?.restored(), (error: unknown) => this.handlers?.restoreFailed(error))
  }

  private async restore (): Promise<void> {
    if (!this.cluster) {
      await this.send([...this.channels])
      return
    }
    // ioredis sent each slot's SSUBSCRIBE without waiting for the replies.
    // Redis answers a connection's commands in order, so one more
    // subscription per master, sent after them, answers once they are all in
    // effect. Unsubscribed first: ioredis would otherwise list it twice.
    await Promise.all(this.markers().map(async (channel) => {
      await this.client.sunsubscribe(channel)
      await this.client.ssubscribe(channel)
    }))
  }

  /** One of the channels on each master that serves any (the Cluster's current slot map). */
  private markers (): string[] {
    const slots = (this.cluster as Cluster).slots
    const byMaster = new Map<string, string>()
    for (const channel of this.channels) {
      const master = slots[keySlot(channel)]?.[0]
      if (master !== undefined && !byMaster.has(master)) byMaster.set(master, channel)
    }
    return [...byMaster.values()]
  }
}
