// A Timer (lib/timer.ts) that fires only when the test moves time on, so
// timed code (the presence window) is tested without real waits.
import type { Timer, TimerHandle } from '../../lib/timer.js'

interface Scheduled {
  at: number
  callback: () => void
}

export class ManualTimer implements Timer {
  private now = 0
  private nextHandle = 1
  private readonly scheduled = new Map<number, Scheduled>()
  /** How many times `set` was called. */
  sets = 0

  set (callback: () => void, ms: number): TimerHandle {
    const handle = this.nextHandle++
    this.scheduled.set(handle, { at: this.now + ms, callback })
    this.sets++
    return handle
  }

  clear (handle: TimerHandle): void {
    if (typeof handle === 'number') this.scheduled.delete(handle)
  }

  /** Timers set and neither fired nor cleared. */
  get pending (): number {
    return this.scheduled.size
  }

  /** Moves time on by `ms`, firing every timer that falls due, earliest (then first set) first. */
  advance (ms: number): void {
    const until = this.now + ms
    for (;;) {
      let next: [number, Scheduled] | undefined
      for (const entry of this.scheduled) {
        if (entry[1].at <= until && (next === undefined || entry[1].at < next[1].at)) next = entry
      }
      if (next === undefined) break
      this.scheduled.delete(next[0])
      this.now = next[1].at
      next[1].callback()
    }
    this.now = until
  }
}
