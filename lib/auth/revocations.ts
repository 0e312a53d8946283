// Revocations by the back office (POST /users/:id/disconnect): a user's
// tokens issued before the disconnect (or without `iat`) are refused for as
// long as such a token could still be valid, AUTH_MAX_TOKEN_TTL_S.

/** Most users remembered as revoked at once; beyond it the oldest revocation is forgotten first. */
export const REVOCATIONS_MAX = 100_000

export interface RevocationsOptions {
  /** AUTH_MAX_TOKEN_TTL_S: no token issued before a revocation outlives it by more. */
  maxTokenTtlS: number
  /** Milliseconds since the epoch; Date.now by default. */
  now?: () => number
  /** REVOCATIONS_MAX by default. */
  max?: number
}

/** The revocations one node knows of, oldest first, each forgotten once it can no longer matter. */
export class Revocations {
  /** User id → when it was revoked (ms); insertion order is revocation order. */
  private readonly revokedAt = new Map<string, number>()
  private readonly now: () => number
  private readonly max: number

  constructor (private readonly options: RevocationsOptions) {
    this.now = options.now ?? Date.now
    this.max = options.max ?? REVOCATIONS_MAX
  }

  get size (): number {
    return this.revokedAt.size
  }

  /** Records that `user`'s tokens issued before `atMs` are no longer accepted; a later revocation replaces an earlier one. */
  revoke (user: string, atMs: number = this.now()): void {
    const known = this.revokedAt.get(user)
    if (known !== undefined && known >= atMs) return
    this.revokedAt.delete(user)
    this.revokedAt.set(user, atMs)
    this.prune()
  }

  /**
   * Whether a token of `user` issued at `iat` (seconds; undefined when the
   * token has none) is revoked. `iat` has whole seconds only: a token whose
   * `iat` is the second of the revocation is refused, since it may predate it.
   */
  isRevoked (user: string, iat: number | undefined): boolean {
    const at = this.revokedAt.get(user)
    if (at === undefined) return false
    if (this.now() - at > this.options.maxTokenTtlS * 1000) {
      this.revokedAt.delete(user)
      return false
    }
    return iat === undefined || iat * 1000 <= Math.floor(at / 1000) * 1000
  }

  /** Every revocation still in force, for a node that re-reads them (cluster). */
  entries (): IterableIterator<[string, number]> {
    return this.revokedAt.entries()
  }

  /** Drops the revocations that have run their course, and the oldest beyond `max`. */
  private prune (): void {
    const horizon = this.now() - this.options.maxTokenTtlS * 1000
    for (const [user, at] of this.revokedAt) {
      if (at >= horizon && this.revokedAt.size <= this.max) break
      this.revokedAt.delete(user)
    }
  }
}
