// Who a verified token says the connection is: the user id (`sub`) and the
// display name derived from the token's claims, and its room grants (PROTOCOL §7, §8).
import { createHash } from 'node:crypto'
import { checkName } from '../rules.js'
import type { Grants } from './grants.js'

/** Longest `sub` accepted, in code points. */
export const USER_ID_MAX_LENGTH = 128

export interface Identity {
  /** The token's `sub`. */
  readonly user: string
  /** The display name: the `name` claim, else `sub`, else `user-` and a hash, whichever passes the name rules first. */
  readonly name: string
  /** The token's `exp`, in seconds since the epoch. */
  readonly exp: number
  /** The token's `iat`, when it has one (revocations compare it). */
  readonly iat: number | undefined
  /** The token's `rooms` claim (PROTOCOL §8); undefined when it has none. */
  readonly grants?: Grants | undefined
}

/** `name` when it passes the display-name rules, else `sub` when it does, else `user-` and 8 hex characters of a SHA-256 of `sub`. */
export function displayNameFor (sub: string, name: unknown): string {
  if (typeof name === 'string') {
    const checked = checkName(name)
    if (checked.ok) return checked.name
  }
  const fromSub = checkName(sub)
  if (fromSub.ok) return fromSub.name
  return `user-${createHash('sha256').update(sub).digest('hex').slice(0, 8)}`
}
