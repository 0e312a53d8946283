// Teardown for one run of one scenario: what the run started is stopped in
// reverse order when the run ends, however it ends. The test helpers
// (NodeProcess, RedisServer, TcpProxy) take tap's `t` only to register their
// teardown, so a Scope stands in for it outside tap.
import type { Test } from 'tap'

export class Scope {
  private readonly steps: Array<() => unknown> = []

  teardown (step: () => unknown): void {
    this.steps.push(step)
  }

  /** This scope where a test helper expects tap's `t`: the helpers call nothing but `t.teardown`. */
  get asTest (): Test {
    return this as unknown as Test
  }

  /** Runs every step, last registered first; a failing step does not stop the others. */
  async close (): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop() as () => unknown
      try {
        await step()
      } catch {}
    }
  }
}
