// Signals between nodes: the payload a `signal` travels as on the broker's
// ephemeral path (no sequence, never stored), and its check on arrival:
// another node's payload is unvalidated until it passes here.
import { z } from 'zod'
import { USER_ID_MAX_LENGTH } from './auth/identity.js'
import type { EphemeralPayload } from './broker.js'
import { codePointLength, NAME_MAX_LENGTH, SignalEvent } from './frames.js'

/** The ephemeral topic signals travel under (presence has its own). */
export const SIGNAL_TOPIC = 'signal'

/** A signal as it travels: event, sender's display name, and its user id when it had a token. Short keys: it is sent per keystroke burst. */
const SignalPayload = z.strictObject({
  e: SignalEvent,
  // Bounded as the sending node bounds them: a display name (§1) and a token's `sub` (§7).
  f: z.string().refine((from) => from.length > 0 && codePointLength(from) <= NAME_MAX_LENGTH),
  u: z.string().refine((user) => user.length > 0 && codePointLength(user) <= USER_ID_MAX_LENGTH).optional()
})

export interface RemoteSignal {
  event: string
  from: string
  user?: string | undefined
}

export function signalPayload (event: string, from: string, user: string | undefined): EphemeralPayload {
  return user === undefined ? { e: event, f: from } : { e: event, f: from, u: user }
}

/** The signal another node sent, or undefined when the payload is not one (then it is dropped, never relayed). */
export function parseSignalPayload (payload: unknown): RemoteSignal | undefined {
  const result = SignalPayload.safeParse(payload)
  if (!result.success) return undefined
  const { e: event, f: from, u: user } = result.data
  return { event, from, user }
}
