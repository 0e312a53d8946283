// Signals between nodes: the payload a `signal` travels as on the broker's
// ephemeral path (no sequence, never stored), and its check on arrival:
// another node's payload is unvalidated until it passes here.
import { z } from 'zod'
import type { EphemeralPayload } from './broker.js'
import { SignalEvent } from './frames.js'

/** The ephemeral topic signals travel under (presence has its own). */
export const SIGNAL_TOPIC = 'signal'

/** A signal as it travels: event, sender's display name, and its user id when it had a token. Short keys: it is sent per keystroke burst. */
const SignalPayload = z.strictObject({
  e: SignalEvent,
  f: z.string().min(1),
  u: z.string().min(1).optional()
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
