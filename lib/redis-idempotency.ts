// Idempotency keys kept in Redis, so a repeat reaching another node gets the
// first call's answer too. The first call plants a short-lived in-flight
// marker (SET NX); repeats wait for the marker to turn into the result.
import type { Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { BrokerUnavailableError } from './broker.js'
import type { IdempotencyStore } from './idempotency.js'
import { IDEMPOTENCY_PENDING_TTL_MS, IDEMPOTENCY_TTL_MS, IDEMPOTENCY_WAIT_MS } from './limits.js'
import { type RedisErrorReporter, reportUnlessAway } from './redis-errors.js'
import { idempotencyKey } from './redis-scripts.js'

const IN_FLIGHT = '\u0000in-flight'
const POLL_MS = 25

export class RedisIdempotencyStore<T> implements IdempotencyStore<T> {
  /** `onError` hears of unexpected failures of the best-effort writes (Redis being away is expected). */
  constructor (private readonly redis: Redis, private readonly onError: RedisErrorReporter) {}

  async run (room: string, key: string, work: () => Promise<T>): Promise<T> {
    const id = idempotencyKey(room, key)
    const deadline = Date.now() + IDEMPOTENCY_WAIT_MS
    for (;;) {
      let claimed: string | null
      try {
        claimed = await this.redis.set(id, IN_FLIGHT, 'PX', IDEMPOTENCY_PENDING_TTL_MS, 'NX')
      } catch (error) {
        throw new BrokerUnavailableError(`Redis could not check the Idempotency-Key (${(error as Error).message}); nothing was published`)
      }
      if (claimed === 'OK') return this.runFirst(id, work)
      // Someone else has (or had) this key: wait for its result, or for it to fail and free the key.
      while (Date.now() < deadline) {
        let value: string | null
        try {
          value = await this.redis.get(id)
        } catch (error) {
          throw new BrokerUnavailableError(`Redis could not check the Idempotency-Key (${(error as Error).message}); nothing was published`)
        }
        if (value === null) break
        if (value !== IN_FLIGHT) return JSON.parse(value) as T
        await sleep(POLL_MS)
      }
      if (Date.now() >= deadline) {
        throw new BrokerUnavailableError('an earlier call with this Idempotency-Key is still in flight; try again')
      }
    }
  }

  private async runFirst (id: string, work: () => Promise<T>): Promise<T> {
    let result: T
    try {
      result = await work()
    } catch (error) {
      // Frees the key for a retry; if this fails, the in-flight marker's TTL frees it.
      await this.redis.del(id).catch(reportUnlessAway(this.onError, 'freeing an Idempotency-Key after a failed call'))
      throw error
    }
    // The message is stored; remembering the answer is best effort (a repeat
    // after a failure here would publish again, which the marker's TTL bounds).
    await this.redis.set(id, JSON.stringify(result), 'PX', IDEMPOTENCY_TTL_MS)
      .catch(reportUnlessAway(this.onError, 'remembering the result of an Idempotency-Key'))
    return result
  }
}
