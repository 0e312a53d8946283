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

/** How long a run that must end by itself (a process refusing to start) may take. */
const EXIT_TIMEOUT_MS = 30_000

export interface FinishedRun {
  code: number | null
  /** What the process wrote to stderr (where it explains a refusal to start). */
  stderr: string
  /** stdout and stderr together, in the order they arrived. */
  output: string
}

/**
 * Runs server.ts until it exits: a process that must refuse to start, or,
 * with `stopWhenLive`, one that must start (it answers /health/live and is
 * then sent SIGTERM). A run still going after EXIT_TIMEOUT_MS is killed and
 * fails. Logs are off unless `env` sets LOG_LEVEL; PORT is a free one unless given.
 */
export async function runUntilExit (env: Record<string, string>, { stopWhenLive = false } = {}): Promise<FinishedRun> {
  const port = env.PORT ?? String(await freePort())
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', LOG_LEVEL: 'silent', HOST: '127.0.0.1', ...env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); output += chunk.toString() })
  const exited = new Promise<FinishedRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the server did not exit within ${EXIT_TIMEOUT_MS} ms:\n${output}`))
    }, EXIT_TIMEOUT_MS)
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr, output }) })
  })
  if (stopWhenLive) {
    while (child.exitCode === null && child.signalCode === null) {
      const live = await fetch(`http://127.0.0.1:${port}/health/live`, { signal: AbortSignal.timeout(1000) }).then((response) => response.status === 200, () => false)
      if (live) { child.kill('SIGTERM'); break }
      await sleep(PROBE_INTERVAL_MS)
    }
  }
  return await exited
}
