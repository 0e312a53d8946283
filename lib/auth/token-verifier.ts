// Verifies connection tokens (JWTs, PROTOCOL §7) with jose: HS256 with a
// shared secret, RS256/ES256/EdDSA with a remote key set picked by `kid`.
// Knows nothing of sockets: it answers who the token is for, or why not.
import {
  createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify,
  type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters
} from 'jose'
import { codePointLength } from '../rules.js'
import { parseRoomsClaim } from './grants.js'
import { displayNameFor, USER_ID_MAX_LENGTH, type Identity } from './identity.js'

/** Tokens longer than this are refused before anything in them is read. */
export const TOKEN_MAX_BYTES = 8192
/** The key set is fetched again after this long, so a removed key stops being trusted. */
export const JWKS_CACHE_MAX_AGE_MS = 5 * 60_000
/** An unknown `kid` fetches the key set again at most this often (key rotation without a restart). */
export const JWKS_COOLDOWN_MS = 10_000
/** A key-set fetch that takes longer is abandoned: the connection gets 1013, not a hung upgrade. */
export const JWKS_FETCH_TIMEOUT_MS = 3000
/** After a failed fetch, tokens that need the key set wait this long before the next try (no fetch storm on a dead endpoint). */
export const JWKS_RETRY_AFTER_FAILURE_MS = 1000

const HMAC_ALGORITHMS = ['HS256']
const JWKS_ALGORITHMS = ['RS256', 'ES256', 'EdDSA']

/**
 * Why a token was refused, as the metrics count it. `expired` closes with
 * 4001, `unavailable` (the key set could not be fetched) with 1013, every
 * other reason with 4003.
 */
export type TokenFailureReason =
  | 'malformed' | 'oversize' | 'algorithm' | 'unknown_key' | 'signature'
  | 'claims' | 'expired' | 'ttl' | 'unavailable'

export const TOKEN_FAILURE_REASONS: readonly TokenFailureReason[] = [
  'malformed', 'oversize', 'algorithm', 'unknown_key', 'signature', 'claims', 'expired', 'ttl', 'unavailable'
]

export type Verification =
  | { ok: true, identity: Identity }
  | { ok: false, reason: TokenFailureReason, message: string }

export interface TokenVerifierOptions {
  /** AUTH_JWT_SECRET: enables HS256. */
  secret?: string | undefined
  /** AUTH_JWKS_URL: enables RS256, ES256 and EdDSA. */
  jwksUrl?: string | undefined
  issuer?: string | undefined
  audience?: string | undefined
  clockToleranceS: number
  maxTokenTtlS: number
  /** Milliseconds since the epoch; Date.now by default (jose's key-set cache keeps its own clock). */
  now?: () => number
  /** Key-set fetch timeout; JWKS_FETCH_TIMEOUT_MS by default. */
  jwksTimeoutMs?: number
  /** Least time between fetches on an unknown `kid`; JWKS_COOLDOWN_MS by default (tests shorten it). */
  jwksCooldownMs?: number
}

function refused (reason: TokenFailureReason, message: string): Verification {
  return { ok: false, reason, message }
}

export class TokenVerifier {
  private readonly secret: Uint8Array | undefined
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | undefined
  private readonly now: () => number
  private lastFetchFailure = -Infinity

  constructor (private readonly options: TokenVerifierOptions) {
    this.secret = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret)
    this.jwks = options.jwksUrl === undefined
      ? undefined
      : createRemoteJWKSet(new URL(options.jwksUrl), {
        cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
        cooldownDuration: options.jwksCooldownMs ?? JWKS_COOLDOWN_MS,
        timeoutDuration: options.jwksTimeoutMs ?? JWKS_FETCH_TIMEOUT_MS
      })
    this.now = options.now ?? Date.now
  }

  /** True when some token can be verified at all (a secret or a key set is configured). */
  get enabled (): boolean {
    return this.secret !== undefined || this.jwks !== undefined
  }

  async verify (token: string): Promise<Verification> {
    // Length first: an 8 MB "token" is not base64-decoded, let alone parsed.
    if (token.length > TOKEN_MAX_BYTES || Buffer.byteLength(token) > TOKEN_MAX_BYTES) {
      return refused('oversize', `token longer than ${TOKEN_MAX_BYTES} bytes`)
    }
    let header: ProtectedHeaderParameters
    try {
      header = decodeProtectedHeader(token)
    } catch {
      return refused('malformed', 'token is not a JWT')
    }
    if (token.split('.').length !== 3) return refused('malformed', 'token is not a signed JWT')
    const alg = header.alg ?? 'none'
    if (this.secret !== undefined && HMAC_ALGORITHMS.includes(alg)) {
      return this.check(token, this.secret, HMAC_ALGORITHMS)
    }
    if (this.jwks !== undefined && JWKS_ALGORITHMS.includes(alg)) {
      return this.checkWithKeySet(token, this.jwks)
    }
    return refused('algorithm', `algorithm ${JSON.stringify(alg).slice(0, 20)} is not accepted`)
  }

  private async checkWithKeySet (token: string, jwks: ReturnType<typeof createRemoteJWKSet>): Promise<Verification> {
    if (this.now() - this.lastFetchFailure < JWKS_RETRY_AFTER_FAILURE_MS) {
      return refused('unavailable', 'the key set could not be fetched; try again later')
    }
    // An unknown kid while jose will not fetch again (it just did) is a throttled
    // lookup, not proof the token is bad: the key may have been added since.
    const throttled = jwks.coolingDown
    const verification = await this.check(token, jwks, JWKS_ALGORITHMS)
    if (!verification.ok && verification.reason === 'unknown_key' && throttled) {
      return refused('unavailable', 'no key with this kid yet and the key set was fetched moments ago; try again later')
    }
    if (!verification.ok && verification.reason === 'unavailable') this.lastFetchFailure = this.now()
    return verification
  }

  private async check (token: string, key: Uint8Array | JWTVerifyGetKey, algorithms: string[]): Promise<Verification> {
    const nowMs = this.now()
    let payload: JWTPayload
    try {
      const options = {
        algorithms,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: this.options.clockToleranceS,
        currentDate: new Date(nowMs),
        ...(this.options.issuer === undefined ? {} : { issuer: this.options.issuer }),
        ...(this.options.audience === undefined ? {} : { audience: this.options.audience })
      }
      payload = (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload
    } catch (error) {
      return describe(error)
    }
    const { sub, exp, iat, name, rooms } = payload
    if (typeof sub !== 'string' || sub.length === 0 || codePointLength(sub) > USER_ID_MAX_LENGTH) {
      return refused('claims', `"sub" must be 1-${USER_ID_MAX_LENGTH} characters`)
    }
    if (typeof exp !== 'number') return refused('claims', '"exp" must be a number')
    if (exp - nowMs / 1000 > this.options.maxTokenTtlS + this.options.clockToleranceS) {
      return refused('ttl', `"exp" is more than AUTH_MAX_TOKEN_TTL_S (${this.options.maxTokenTtlS} s) away`)
    }
    // A malformed grant map refuses the token like any bad claim: ignoring it would hide the issuer's mistake.
    const grants = parseRoomsClaim(rooms)
    if (!grants.ok) return refused('claims', grants.message)
    const identity: Identity = { user: sub, name: displayNameFor(sub, name), exp, iat: typeof iat === 'number' ? iat : undefined }
    return { ok: true, identity: grants.grants === undefined ? identity : { ...identity, grants: grants.grants } }
  }
}

/** A jose error as a reason and a message safe to show a client (never the token). */
function describe (error: unknown): Verification {
  if (error instanceof errors.JWTExpired) return refused('expired', 'token expired')
  if (error instanceof errors.JWTClaimValidationFailed) return refused('claims', `claim "${error.claim}" ${error.reason === 'missing' ? 'is missing' : 'is not accepted'}`)
  if (error instanceof errors.JOSEAlgNotAllowed) return refused('algorithm', 'algorithm not accepted')
  if (error instanceof errors.JWKSNoMatchingKey) return refused('unknown_key', 'no key in the key set matches the token')
  if (error instanceof errors.JWSSignatureVerificationFailed) return refused('signature', 'signature does not verify')
  if (error instanceof errors.JWKSTimeout) return refused('unavailable', 'the key set could not be fetched in time; try again later')
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return refused('malformed', 'token is not a valid JWT')
  if (error instanceof errors.JOSENotSupported || error instanceof errors.JWKInvalid || error instanceof errors.JWKSMultipleMatchingKeys) {
    return refused('unknown_key', 'no usable key in the key set matches the token')
  }
  // What is left: the key set's endpoint refused, answered garbage, or the network failed.
  return refused('unavailable', 'the key set could not be fetched; try again later')
}
