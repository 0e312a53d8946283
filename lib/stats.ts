// Plain counters kept by the hub and the connections. They cost an integer
// increment on the hot path; the metrics plugin reads them when scraped.
import type { ErrorCode } from './frames.js'

export interface Stats {
  messagesIn: number
  /** One per message frame written to a member. */
  messagesOut: number
  /** Signals accepted from this node's clients. */
  signalsIn: number
  /** One per signal frame written to a member (from this node's clients or another node's). */
  signalsOut: number
  errors: Record<ErrorCode, number>
  slowConsumerCloses: number
  rateLimitedFrames: number
  heartbeatTerminations: number
}

export function createStats (): Stats {
  return {
    messagesIn: 0,
    messagesOut: 0,
    signalsIn: 0,
    signalsOut: 0,
    errors: { invalid_frame: 0, not_joined: 0, rate_limited: 0, too_many_rooms: 0, unavailable: 0, timeout: 0, token_invalid: 0, forbidden: 0 },
    slowConsumerCloses: 0,
    rateLimitedFrames: 0,
    heartbeatTerminations: 0
  }
}
