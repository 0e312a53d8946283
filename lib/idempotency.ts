// Idempotency keys of the HTTP broadcast (PROTOCOL §4): a repeat within the
// TTL gets the first call's result; a repeat during the first call waits for
// it; a failed first call leaves nothing behind. Keys are per room.
import { IDEMPOTENCY_MAX_KEYS, IDEMPOTENCY_TTL_MS } from './limits.js'

export interface IdempotencyStore<T> {
  /**
   * Runs `work` once per (room, key) within the TTL; repeats get its result.
   * `work` must hand `key` to Broker.publish: in cluster mode the broker
   * itself records the key with the message (RedisIdempotencyStore).
   */
  run (room: string, key: string, work: () => Promise<T>): Promise<T>
}

interface Entry<T> {
  result: Promise<T>
  expiresAt: number
}

export class MemoryIdempotencyStore<T> implements IdempotencyStore<T> {
  /** Insertion order is expiry order, since every entry lives the same TTL. */
  private readonly entries = new Map<string, Entry<T>>()

  constructor (
    private readonly ttlMs = IDEMPOTENCY_TTL_MS,
    private readonly maxKeys = IDEMPOTENCY_MAX_KEYS,
    private readonly now: () => number = Date.now
  ) {}

  run (room: string, key: string, work: () => Promise<T>): Promise<T> {
    const now = this.now()
    this.expire(now)
    const id = `${room}\n${key}`
    const existing = this.entries.get(id)
    if (existing) return existing.result
    const result = work()
    const entry = { result, expiresAt: now + this.ttlMs }
    this.entries.set(id, entry)
    result.catch(() => {
      if (this.entries.get(id) === entry) this.entries.delete(id)
    })
    return result
  }

  get size (): number {
    return this.entries.size
  }

  private expire (now: number): void {
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size < this.maxKeys) break
      this.entries.delete(id)
    }
  }
}
