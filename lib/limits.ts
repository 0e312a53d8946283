// Fixed limits that are not worth an environment variable, in one place,
// each with the reason for its value (in the manner of gorilla's chat example).

/** A 1013 close waits behind the backlog; a peer that still reads nothing is cut off after this. */
export const SLOW_CONSUMER_CLOSE_TIMEOUT_MS = 5000

/** Consecutive rate-limited `send` frames before the connection is closed with 1008. */
export const RATE_LIMIT_STRIKES_BEFORE_CLOSE = 100

/** Live messages held for a member while its join history is read; past this it is closed with 1013 and resumes. */
export const CATCH_UP_BUFFER_MAX = 10_000

/** Idempotency keys are remembered this long (PROTOCOL §4: five minutes). */
export const IDEMPOTENCY_TTL_MS = 5 * 60 * 1000

/** Idempotency keys kept in memory at most; the oldest are forgotten first. */
export const IDEMPOTENCY_MAX_KEYS = 100_000

/** Largest HTTP broadcast body; bigger bodies get 413. */
export const BROADCAST_BODY_LIMIT_BYTES = 64 * 1024

/** `GET /rooms/:id/messages` default and maximum `limit` (PROTOCOL §4). */
export const HISTORY_API_DEFAULT_LIMIT = 50
export const HISTORY_API_MAX_LIMIT = 1000

/** Shutdown closes connections in ticks of this length over the first half of the grace period. */
export const DRAIN_TICK_MS = 100
