// Is this node's Redis subscription alive? A probe published on the command
// connection must come back on the node's own subscription. If probes stop
// coming back while Redis answers commands, the subscription is silently dead
// (a black-holed connection looks open): drop it, so it reconnects.
import type { Redis } from 'ioredis'
import type { BrokerHealth } from './broker.js'
import { probeChannel } from './redis-scripts.js'

/** Probes missed in a row before the subscription counts as dead. */
const STALE_AFTER_PROBES = 3

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
  private lastProbeAt = 0
  private lastResubscribeAt = 0
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly options: RedisProbeOptions) {
    this.channel = probeChannel(options.nodeId)
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
    this.lastResubscribeAt = this.options.now()
  }

  /** A probe came back (the payload is its send time). */
  received (payload: string): void {
    const sentAt = Number(payload)
    this.lastProbeAt = this.options.now()
    if (Number.isFinite(sentAt)) this.roundTripMs = this.lastProbeAt - sentAt
  }

  health (): BrokerHealth {
    const { command, readyProbeMs, now } = this.options
    if (command.status !== 'ready') {
      return { ok: false, check: 'redis', reason: `the Redis command connection is ${command.status}` }
    }
    const age = now() - this.lastProbeAt
    if (age > STALE_AFTER_PROBES * readyProbeMs) {
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

  /** Publishes a probe; if they have stopped coming back while both connections look ready, reconnects the subscriber. */
  send (): void {
    if (this.stopped) return
    const { command, subscriber, readyProbeMs } = this.options
    command.publish(this.channel, String(this.options.now())).catch(this.options.onPublishError)
    const now = this.options.now()
    const stale = now - this.lastProbeAt > STALE_AFTER_PROBES * readyProbeMs
    if (stale && command.status === 'ready' && subscriber.status === 'ready' &&
        now - this.lastResubscribeAt > STALE_AFTER_PROBES * readyProbeMs) {
      this.lastResubscribeAt = now
      // Reconnects at once; the subscriber's owner resubscribes and repairs on 'ready'.
      subscriber.disconnect(true)
    }
  }
}
