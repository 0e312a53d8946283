// A one-shot timer behind an interface, so code that waits (the presence
// window) is driven by a manual timer in its tests instead of real waits.

/** What `set` returns and `clear` takes: a Node timeout, or a fake's number. */
export type TimerHandle = NodeJS.Timeout | number

export interface Timer {
  /** Calls `callback` once, `ms` from now. */
  set (callback: () => void, ms: number): TimerHandle
  /** Cancels a timer that has not fired; harmless on one that has. */
  clear (handle: TimerHandle): void
}

/** The global `setTimeout`, unref'd: a pending timer never keeps the process alive. */
export const systemTimer: Timer = {
  set (callback, ms) {
    const handle = setTimeout(callback, ms)
    handle.unref()
    return handle
  },
  clear (handle) {
    clearTimeout(handle)
  }
}
