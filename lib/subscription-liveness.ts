// Is a Redis subscription alive? Free of Redis and of clocks: the owner
// reports what it sees, with the time, and asks.
//
// A subscription proves itself alive by making progress: a readiness probe
// coming back, or any other message arriving on it. Judging by the probe
// alone drops healthy subscriptions under load: Redis delivers a
// subscription's messages in order, so a probe published behind a backlog of
// room messages comes back only after the node has read all of them, however
// long that takes. Messages still arriving mean the connection is not the
// silent, black-holed kind that the probe is there to find.
//
// One instance per subscriber connection (with Redis Cluster, one per
// master's connection).

export class SubscriptionLiveness {
  private lastProbeAt: number | undefined
  private lastMessageAt: number | undefined
  /** When the subscription was last made again: it is not judged before a full window has passed. */
  private lastResubscribeAt: number

  /**
   * @param staleAfterMs silence after which the subscription counts as dead
   * @param now when the subscription was first made
   */
  constructor (private readonly staleAfterMs: number, now: number) {
    this.lastResubscribeAt = now
  }

  /** A message other than the probe arrived on the subscription. */
  messageArrived (now: number): void {
    this.lastMessageAt = now
  }

  /** A probe came back through the subscription. */
  probeReturned (now: number): void {
    this.lastProbeAt = now
  }

  /** The subscription is being made again (a reconnect): it gets a full window before it is judged. */
  resubscribed (now: number): void {
    this.lastResubscribeAt = now
  }

  /**
   * Why the subscription does not count as alive, for readiness; undefined
   * when it does. Alive: a probe has come back once, and since then something
   * (a probe or any message) arrived within the last `staleAfterMs`.
   * `where` names the subscription (a master of a Redis Cluster).
   */
  staleReason (now: number, where = 'through Redis'): string | undefined {
    if (this.lastProbeAt === undefined) return `no readiness probe has come back ${where} yet`
    const silence = now - Math.max(this.lastProbeAt, this.lastMessageAt ?? 0)
    if (silence <= this.staleAfterMs) return undefined
    return `nothing has come back ${where} for ${silence} ms (the last readiness probe ${now - this.lastProbeAt} ms ago)`
  }

  /**
   * The subscription is silent past `staleAfterMs` (no probe, no message),
   * and has not been made again within that time: it is dead, drop it.
   * A subscription that never returned a probe is judged from when it was made.
   */
  isDead (now: number): boolean {
    const lastSign = Math.max(this.lastProbeAt ?? 0, this.lastMessageAt ?? 0, this.lastResubscribeAt)
    return now - lastSign > this.staleAfterMs
  }
}
