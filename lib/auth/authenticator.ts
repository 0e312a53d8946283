// Decides what a token is worth for a connection: an identity, or a refusal
// with the close code a browser can act on (PROTOCOL §3, §7). Combines the
// verifier with the back office's revocations and counts every outcome.
import { CloseCode } from '../close-codes.js'
import type { Identity } from './identity.js'
import type { OfferedToken } from './offered-token.js'
import { TOKEN_FAILURE_REASONS, type TokenFailureReason, type TokenVerifier } from './token-verifier.js'

/** Every reason a token (or its absence) is refused; the metrics count each. */
export type AuthFailureReason = TokenFailureReason | 'revoked' | 'missing' | 'conflict' | 'disabled' | 'other_user'

export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = [...TOKEN_FAILURE_REASONS, 'revoked', 'missing', 'conflict', 'disabled', 'other_user']

export type AuthOutcome =
  | { ok: true, identity: Identity }
  | { ok: false, reason: AuthFailureReason, message: string }

/** 4001 for an expired token (a fresh one will do), 1013 when the key set is away, 4003 for the rest. */
export function closeCodeFor (reason: AuthFailureReason): number {
  if (reason === 'expired') return CloseCode.TOKEN_EXPIRED
  if (reason === 'unavailable') return CloseCode.TRY_AGAIN_LATER
  return CloseCode.UNAUTHORIZED
}

export interface AuthCounters {
  failures: Record<AuthFailureReason, number>
  /** Accepted `auth` frames. */
  refreshes: number
  /** Connections closed by POST /users/:id/disconnect. */
  apiDisconnects: number
}

/** Answers whether a user's token issued at `iat` was revoked: in memory (one node) or through Redis (a cluster). */
export interface RevocationCheck {
  isRevoked (user: string, iat: number | undefined): boolean | Promise<boolean>
}

export interface AuthenticatorOptions {
  verifier: TokenVerifier
  revocations: RevocationCheck
  /** AUTH_REQUIRED: no token → 4003 instead of a guest. */
  required: boolean
}

export class Authenticator {
  readonly counters: AuthCounters = {
    failures: Object.fromEntries(AUTH_FAILURE_REASONS.map((reason) => [reason, 0])) as Record<AuthFailureReason, number>,
    refreshes: 0,
    apiDisconnects: 0
  }

  constructor (private readonly options: AuthenticatorOptions) {}

  get required (): boolean {
    return this.options.required
  }

  /** An upgrade's token: undefined for a guest the configuration allows. */
  async admit (offered: OfferedToken): Promise<AuthOutcome | undefined> {
    if (offered.kind === 'none') {
      return this.options.required ? this.fail('missing', 'a token is required (AUTH_REQUIRED)') : undefined
    }
    if (offered.kind === 'conflict') return this.fail('conflict', 'two different tokens offered')
    return this.authenticate(offered.token)
  }

  /** A refresh (`auth` frame) of `user`'s connection. */
  async refresh (user: string, token: string): Promise<AuthOutcome> {
    const outcome = await this.authenticate(token)
    if (!outcome.ok) return outcome
    if (outcome.identity.user !== user) return this.fail('other_user', 'the token is for another user')
    this.counters.refreshes++
    return outcome
  }

  /** Verifies a token and checks it against the revocations. */
  async authenticate (token: string): Promise<AuthOutcome> {
    if (!this.options.verifier.enabled) return this.fail('disabled', 'tokens are not accepted: neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is set')
    const verification = await this.options.verifier.verify(token)
    if (!verification.ok) return this.fail(verification.reason, verification.message)
    const { user, iat } = verification.identity
    let revoked: boolean
    try {
      revoked = await this.options.revocations.isRevoked(user, iat)
    } catch {
      // The shared revocations cannot be read: the token may be revoked, so it waits.
      return this.fail('unavailable', 'revocations could not be checked; try again later')
    }
    if (revoked) return this.fail('revoked', 'token revoked: the user was disconnected')
    return verification
  }

  private fail (reason: AuthFailureReason, message: string): AuthOutcome {
    this.counters.failures[reason]++
    return { ok: false, reason, message }
  }
}
