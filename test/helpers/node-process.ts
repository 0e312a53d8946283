// The real server as a child process (`node --import tsx server.ts`), for
// tests that kill nodes or send them signals. Stopped by its own pid.
import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { freePort } from './free-port.js'
import { sleep } from './wait.js'
import { TEST_TOKEN } from './server.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const START_TIMEOUT_MS = 30_000
/** How often a starting server is asked whether it is up. */
const PROBE_INTERVAL_MS = 50

export class NodeProcess {
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  output = ''

  private constructor (readonly child: ChildProcess, readonly port: number) {
    child.stdout?.on('data', (chunk: Buffer) => { this.output += chunk.toString() })
    child.stderr?.on('data', (chunk: Buffer) => { this.output += chunk.toString() })
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  get wsUrl (): string {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  /** Spawns a node and waits until it answers /health/live; killed in teardown if still running. */
  static async start (t: Test, env: Record<string, string>): Promise<NodeProcess> {
    const port = await freePort()
    const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
      cwd: ROOT,
      // NODE_OPTIONS cleared: tap's coverage hooks would slow the child's start and exit.
      env: { ...process.env, NODE_OPTIONS: '', BROADCAST_TOKEN: TEST_TOKEN, LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const node = new NodeProcess(child, port)
    t.teardown(() => node.kill('SIGKILL'))
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} at start:\n${node.output}`)
      try {
        const response = await fetch(`${node.url}/health/live`, { signal: AbortSignal.timeout(1000) })
        if (response.status === 200) return node
      } catch {}
      if (Date.now() > deadline) throw new Error(`server did not start within ${START_TIMEOUT_MS} ms:\n${node.output}`)
      await sleep(PROBE_INTERVAL_MS)
    }
  }

  kill (signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
  }
}
