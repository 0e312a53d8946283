// A real redis-server for one test, on a free loopback port, that the test
// can stop (as if it crashed), start again on the same port with its data,
// and talk to directly (CLIENT KILL and friends). Append-only file with
// fsync on every write, as production should run it: a restart loses nothing.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { freePort } from './free-port.js'
import { sleep } from './wait.js'

const START_TIMEOUT_MS = 10_000
const PROBE_INTERVAL_MS = 50

export class RedisServer {
  private child: ChildProcess | undefined
  private admin: Redis | undefined

  private constructor (readonly port: number, private readonly dir: string, private readonly extraArgs: string[]) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /**
   * Starts a server for this test; it is stopped and its files removed in
   * teardown. `extraArgs` are more redis-server options (`--maxmemory 2mb`).
   */
  static async start (t: Test, extraArgs: string[] = []): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'chat-redis-')), extraArgs)
    t.teardown(async () => {
      await server.stop()
      rmSync(server.dir, { recursive: true, force: true })
    })
    await server.restart()
    return server
  }

  /** Starts the process (again) on the same port and data directory. */
  async restart (): Promise<void> {
    if (this.child) throw new Error('redis-server is already running')
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', ...this.extraArgs
    ], { stdio: 'ignore' })
    this.child = child
    child.once('exit', () => { if (this.child === child) this.child = undefined })
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      const probe = new Redis(this.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      probe.on('error', () => {})
      try {
        await probe.connect()
        await probe.ping()
        probe.disconnect()
        return
      } catch {
        probe.disconnect()
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${this.port}`)
        await sleep(PROBE_INTERVAL_MS)
      }
    }
  }

  /** Kills the process (SIGKILL, like a crash) and waits for it to exit. */
  async stop (): Promise<void> {
    this.admin?.disconnect()
    this.admin = undefined
    const child = this.child
    if (!child) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  /** Suspends (SIGSTOP) or resumes (SIGCONT) the process: sockets stay open but nothing answers. */
  freeze (frozen: boolean): void {
    this.child?.kill(frozen ? 'SIGSTOP' : 'SIGCONT')
  }

  /** Runs a command on a connection of the test's own. */
  async command (name: string, ...args: Array<string | number>): Promise<unknown> {
    if (!this.admin) {
      this.admin = new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 1 })
      this.admin.on('error', () => {})
    }
    return this.admin.call(name, ...args)
  }
}
