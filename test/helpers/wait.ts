// Bounded waiting for tests: poll a condition until it holds, or sleep.
// Every wait fails with what it was waiting for instead of hanging the test.

export const WAIT_TIMEOUT_MS = 5000
/** Short enough for in-process state, long enough not to spin on a busy machine. */
export const POLL_INTERVAL_MS = 10

/** Polls `check` every `intervalMs` until it returns true; throws after `timeoutMs`. */
export async function waitFor (check: () => boolean | Promise<boolean>, what: string, timeoutMs = WAIT_TIMEOUT_MS, intervalMs = POLL_INTERVAL_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
