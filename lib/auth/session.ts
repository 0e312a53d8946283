// The token side of one authenticated connection: who it is, when its token
// expires, and the one timer that closes it with 4001 at `exp` + leeway.
import { systemTimer, type Timer, type TimerHandle } from '../timer.js'
import type { Grants } from './grants.js'
import type { Identity } from './identity.js'

export interface TokenSessionOptions {
  /** AUTH_CLOCK_TOLERANCE_S: the token stays valid this long after `exp`. */
  clockToleranceS: number
  /** Called once when the token runs out without a refresh. */
  onExpired: () => void
  /** Milliseconds since the epoch; Date.now by default. */
  now?: () => number
  /** systemTimer (unref'd) by default. */
  timer?: Timer
}

export class TokenSession {
  private identity: Identity
  private handle: TimerHandle | undefined
  private readonly now: () => number
  private readonly timer: Timer

  constructor (identity: Identity, private readonly options: TokenSessionOptions) {
    this.identity = identity
    this.now = options.now ?? Date.now
    this.timer = options.timer ?? systemTimer
    this.schedule()
  }

  get user (): string {
    return this.identity.user
  }

  /** The current token's `iat` (seconds), when it has one: what a revocation is compared with. */
  get iat (): number | undefined {
    return this.identity.iat
  }

  /** The current token's room grants (PROTOCOL §8): a refresh may widen or narrow them. */
  get grants (): Grants | undefined {
    return this.identity.grants
  }

  /** Whole seconds until `exp`: max(0, ⌊exp − now⌋), as `welcome` and the `auth` ack say. */
  get expiresIn (): number {
    return Math.max(0, Math.floor(this.identity.exp - this.now() / 1000))
  }

  /** A refreshed token for the same user: the connection carries on with its expiry. */
  renew (identity: Identity): void {
    if (identity.user !== this.identity.user) throw new Error('a session is renewed only for its own user')
    this.identity = identity
    this.schedule()
  }

  /** The connection is gone: no timer is left behind. */
  stop (): void {
    if (this.handle !== undefined) this.timer.clear(this.handle)
    this.handle = undefined
  }

  private schedule (): void {
    this.stop()
    const ms = Math.max(0, (this.identity.exp + this.options.clockToleranceS) * 1000 - this.now())
    this.handle = this.timer.set(() => {
      this.handle = undefined
      this.options.onExpired()
    }, ms)
  }
}
