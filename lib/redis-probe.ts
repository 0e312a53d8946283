// Is this node's Redis subscription alive? A probe published on the command
// connection must come back on the node's own subscription. If neither probes
// nor any other message come back while Redis answers commands, the
// subscription is silently dead (a black-holed connection looks open): drop
// it, so it reconnects. Messages still arriving keep it alive even when the
// probe is late, queued behind them (subscription-liveness.ts).
import type { Redis } from 'ioredis'
import type { BrokerHealth } from './broker.js'
import { probeChannel } from './redis-scripts.js'
import { SubscriptionLiveness } from './subscription-liveness.js'

/** Probes missed in a row before the subscription counts as dead. */
const STALE_AFTER_PROBES = 3
/** A probe tick this many periods after the previous one found the node's event loop blocked. */
const LATE_TICK_PROBES = 2

export interface RedisProbeOptions {
  command: Redis
  subscriber: Redis
  nodeId: string
  readyProbeMs: number
  now: () => number
  /** A probe could not be published for a reason other than Redis being away. */
  onPublishError: (error: unknown) => void
}

export class RedisProbe {
  /** The channel the probe travels on; the subscriber's owner routes its messages to `received`. */
  readonly channel: string
  /** Round trip of the last probe that came back, in milliseconds. */
  roundTripMs = 0
  private readonly liveness: SubscriptionLiveness
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  /** When `send` last ran: a tick far later than planned means the node's own loop was blocked. */
  private lastTickAt: number | undefined

  constructor (private readonly options: RedisProbeOptions) {
    this.channel = probeChannel(options.nodeId)
    this.liveness = new SubscriptionLiveness(STALE_AFTER_PROBES * options.readyProbeMs, options.now())
  }

  /** Probes every `readyProbeMs` from now on; the channel must be subscribed already. */
  start (): void {
    this.resubscribed()
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
    this.liveness.resubscribed(this.options.now())
  }

  /** A probe came back (the payload is its send time). */
  received (payload: string): void {
    const sentAt = Number(payload)
    const now = this.options.now()
    this.liveness.probeReturned(now)
    if (Number.isFinite(sentAt)) this.roundTripMs = now - sentAt
  }

  /** Any other message arrived on the subscription: it is alive, whatever the probe's delay. */
  messageArrived (): void {
    this.liveness.messageArrived(this.options.now())
  }

  health (): BrokerHealth {
    const { command, now } = this.options
    if (command.status !== 'ready') {
      return { ok: false, check: 'redis', reason: `the Redis command connection is ${command.status}` }
    }
    const reason = this.liveness.staleReason(now())
    if (reason !== undefined) return { ok: false, check: 'redis-subscription', reason }
    return { ok: true }
  }

  /** Publishes a probe; if nothing has come back for a while though both connections look ready, reconnects the subscriber. */
  send (): void {
    if (this.stopped) return
    const { command, subscriber } = this.options
    command.publish(this.channel, String(this.options.now())).catch(this.options.onPublishError)
    const now = this.options.now()
    // After a blocked loop (a join storm, a long GC) what Redis sent is still
    // unread in the socket, read only after this timer: judge on the next tick.
    const late = this.lastTickAt !== undefined && now - this.lastTickAt > LATE_TICK_PROBES * this.options.readyProbeMs
    this.lastTickAt = now
    if (!late && this.liveness.isDead(now) && command.status === 'ready' && subscriber.status === 'ready') {
      this.liveness.resubscribed(now)
      // Reconnects at once; the subscriber's owner resubscribes and repairs on 'ready'.
      subscriber.disconnect(true)
    }
  }
}
