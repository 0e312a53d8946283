// Idempotency keys kept in Redis, so a repeat reaching another node gets the
// first call's answer too. The first call plants a short-lived in-flight
// marker (SET NX); repeats wait for the marker to turn into the result.
import type { Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { BrokerUnavailableError } from './bus.js'
import type { IdempotencyStore } from './idempotency.js'
import { IDEMPOTENCY_PENDING_TTL_MS, IDEMPOTENCY_TTL_MS, IDEMPOTENCY_WAIT_MS } from './limits.js'
import { idempotencyKey } from './redis-scripts.js'

const IN_FLIGHT = '\u0000in-flight'
const POLL_MS = 25

export class RedisIdempotencyStore<T> implements IdempotencyStore<T> {
  constructor (private readonly redis: Redis) {}

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
      await this.redis.del(id).catch(() => {})
      throw error
    }
    // The message is stored; remembering the answer is best effort (a repeat
    // after a failure here would publish again, which the marker's TTL bounds).
    await this.redis.set(id, JSON.stringify(result), 'PX', IDEMPOTENCY_TTL_MS).catch(() => {})
    return result
  }
}
