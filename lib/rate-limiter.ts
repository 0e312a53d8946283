// Token bucket: `ratePerSec` tokens a second, holding at most `burst`.
export class TokenBucket {
  private tokens: number
  private updatedAt: number

  constructor (
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly now: () => number = performance.now.bind(performance)
  ) {
    this.tokens = burst
    this.updatedAt = now()
  }

  /** Takes one token if there is one; `now` lets a caller read the clock once for several buckets. */
  take (now: number = this.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.ratePerSec)
    this.updatedAt = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
