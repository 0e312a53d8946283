// Which Redis failures are expected while Redis is away (and already logged by
// the connection's own events), and how the Redis code reports the others
// instead of swallowing them.

/** Receives an unexpected error the Redis code does not throw to anyone, with what it was doing. */
export type RedisErrorReporter = (error: unknown, context: string) => void

/** Messages of ioredis rejections that only mean the connection is down or slow. */
const AWAY_MESSAGES = new Set([
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Command timed out'
])

/** Socket errors a command can be rejected with while the connection breaks. */
const AWAY_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'])

/**
 * True when `error` only says that Redis is unreachable for now: the
 * connection is closed, the command timed out, the offline queue is off, or
 * Redis is still loading its data after a restart. Anything else (a script
 * error, a key of the wrong type, a bug) is worth a log line.
 */
export function isRedisAway (error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (AWAY_MESSAGES.has(error.message)) return true
  // ioredis: a command in flight when the connection dropped (maxRetriesPerRequest is 0).
  if (error.name === 'MaxRetriesPerRequestError') return true
  if (error.message.startsWith('LOADING ')) return true
  return 'code' in error && typeof error.code === 'string' && AWAY_CODES.has(error.code)
}

/** A rejection handler that reports `context` unless Redis is merely away. */
export function reportUnlessAway (report: RedisErrorReporter, context: string): (error: unknown) => void {
  return (error) => {
    if (!isRedisAway(error)) report(error, context)
  }
}
