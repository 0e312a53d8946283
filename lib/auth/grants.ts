// Grants: the token's `rooms` claim (PROTOCOL §8), a map of room patterns to
// rights, e.g. {"support:*": ["join","send"], "news:daily": ["join"]}. A
// pattern is a room id or a prefix followed by `*`. Matching is equality and
// startsWith only: nothing from a token ever becomes a regular expression.
import { ROOM_PATTERN } from '../rules.js'

export type Right = 'join' | 'send'
export const RIGHTS: readonly Right[] = ['join', 'send']

/** What a token grants, ready for matching. */
export interface Grants {
  /** Room id → its rights. */
  readonly exact: ReadonlyMap<string, ReadonlySet<Right>>
  /** `prefix*` patterns, the `*` dropped; an empty prefix matches every room. */
  readonly prefixes: ReadonlyArray<{ readonly prefix: string, readonly rights: ReadonlySet<Right> }>
}

/** A prefix is what a room id may start with: the room alphabet, up to 63 characters (at least one more must follow). */
// eslint-disable-next-line no-useless-escape
const PREFIX_PATTERN = /^[A-Za-z0-9_.:\-]{0,63}$/

export type GrantsParse = { ok: true, grants: Grants | undefined } | { ok: false, message: string }

/** The one shape a `rooms` claim may have, in words (the 4003 reason quotes it). */
export const ROOMS_CLAIM_RULE = '"rooms" must map room ids or prefix* patterns to lists of "join" and "send"'

/**
 * Reads a token's `rooms` claim. Absent: no grants. Anything else that is not
 * exactly the documented shape is refused (the whole token is then refused,
 * never downgraded to "no grants"): a typo in an issuer's claim must show up,
 * not silently lock users out or in.
 */
export function parseRoomsClaim (claim: unknown): GrantsParse {
  if (claim === undefined) return { ok: true, grants: undefined }
  if (typeof claim !== 'object' || claim === null || Array.isArray(claim)) return { ok: false, message: ROOMS_CLAIM_RULE }
  const exact = new Map<string, ReadonlySet<Right>>()
  const prefixes: Array<{ prefix: string, rights: ReadonlySet<Right> }> = []
  for (const [pattern, value] of Object.entries(claim)) {
    if (!Array.isArray(value) || !value.every((right) => right === 'join' || right === 'send')) {
      return { ok: false, message: `${ROOMS_CLAIM_RULE}; a value is not such a list` }
    }
    const rights = new Set<Right>(value as Right[])
    if (pattern.endsWith('*')) {
      const prefix = pattern.slice(0, -1)
      if (!PREFIX_PATTERN.test(prefix)) return { ok: false, message: `${ROOMS_CLAIM_RULE}; a pattern is not valid` }
      prefixes.push({ prefix, rights })
    } else {
      if (!ROOM_PATTERN.test(pattern)) return { ok: false, message: `${ROOMS_CLAIM_RULE}; a pattern is not valid` }
      exact.set(pattern, rights)
    }
  }
  return { ok: true, grants: { exact, prefixes } }
}

/** Whether `grants` give `right` on `room`: an exact entry, or any prefix pattern the room starts with. */
export function granted (grants: Grants | undefined, room: string, right: Right): boolean {
  if (grants === undefined) return false
  if (grants.exact.get(room)?.has(right) === true) return true
  for (const { prefix, rights } of grants.prefixes) {
    if (rights.has(right) && room.startsWith(prefix)) return true
  }
  return false
}
