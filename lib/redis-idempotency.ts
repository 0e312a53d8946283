// Idempotency keys in cluster mode. The broker records each key in the same
// script as its message (PUBLISH_SCRIPT), so Redis itself serialises repeats,
// on any node: one call publishes, the others get its 202 body. What is left
// here is a repeat whose own body is invalid: it gets the first answer too.
import { BrokerTimeoutError, BrokerUnavailableError } from './broker.js'
import type { IdempotencyStore } from './idempotency.js'
import { idempotencyKey } from './redis-scripts.js'
import type { RedisClient } from './redis-topology.js'

export class RedisIdempotencyStore<T> implements IdempotencyStore<T> {
  constructor (private readonly redis: RedisClient) {}

  async run (room: string, key: string, work: () => Promise<T>): Promise<T> {
    try {
      // Publishes, or answers a key already recorded, in one script.
      return await work()
    } catch (error) {
      // The broker failing is the answer (nothing was recorded, or the outcome is unknown).
      if (error instanceof BrokerUnavailableError || error instanceof BrokerTimeoutError) throw error
      // Refused before the broker (an invalid body): a recorded key still wins.
      // Commands on a connection run in order, so a first call that this node
      // sent earlier is seen here once Redis has run it.
      let first: string | null
      try {
        first = await this.redis.get(idempotencyKey(room, key))
      } catch (lookupError) {
        throw new BrokerUnavailableError(`Redis could not check the Idempotency-Key (${(lookupError as Error).message}); nothing was published`)
      }
      if (first === null) throw error
      return JSON.parse(first) as T
    }
  }
}
