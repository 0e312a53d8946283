// The processes of a bench run: the product (the real server.ts), the ws
// baseline, redis-server for the cluster scenario, and the load generator.
// Each is spawned pinned to a core when taskset exists, stopped by its own
// pid, and waited for with a deadline.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { EnvSchema } from '../../lib/config.js'
import { freePort } from '../../test/helpers/free-port.js'
import type { GeneratorReply, Job, JobResult } from './jobs.js'

const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 5_000
/** Kept from a child's output, to explain a failure. */
const OUTPUT_TAIL_CHARS = 4000

/** Every environment variable the service reads (its config schema): the bench sets them, nothing is inherited. */
const SERVICE_VARIABLES = Object.keys(EnvSchema.shape)

/** The product's settings for the bench; everything else is its default. */
export const PRODUCT_ENV: Record<string, string> = {
  LOG_LEVEL: 'warn',
  // One publisher per room sends up to a few hundred messages a second.
  RATE_LIMIT_PER_SEC: '1000000',
  RATE_LIMIT_BURST: '1000000',
  FRAME_RATE_PER_SEC: '1000000',
  FRAME_BURST: '1000000',
  // Every simulated client connects from 127.0.0.1.
  MAX_CONNECTIONS: '1000000',
  MAX_CONNECTIONS_PER_IP: '1000000',
  // Joins comparable with the baseline, which has no history.
  HISTORY_ON_JOIN: '0'
}

export interface Placement {
  /** Core for servers (and redis), core for the generator; undefined: no pinning. */
  serverCore: number | undefined
  generatorCore: number | undefined
  /** Open-files limit to ask for in children (ulimit -n), when above the current soft limit. */
  fileLimit: number | undefined
}

/** Live children, killed by pid if the bench stops early. */
const children = new Set<ChildProcess>()

export function killAllChildren (): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

function command (placement: Placement, core: number | undefined, file: string, args: string[]): [string, string[]] {
  let argv = [file, ...args]
  if (core !== undefined) argv = ['taskset', '-c', String(core), ...argv]
  // exec keeps the pid: the pid we hold is the node (or redis) process itself.
  if (placement.fileLimit !== undefined) return ['bash', ['-c', `ulimit -n ${placement.fileLimit} 2>/dev/null; exec "$@"`, 'bench', ...argv]]
  return [argv[0] as string, argv.slice(1)]
}

export class Child {
  output = ''
  readonly exited: Promise<void>

  constructor (readonly label: string, readonly proc: ChildProcess, readonly port: number) {
    children.add(proc)
    const keep = (chunk: Buffer) => { this.output = (this.output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS) }
    proc.stdout?.on('data', keep)
    proc.stderr?.on('data', keep)
    this.exited = new Promise((resolve) => proc.once('exit', () => {
      children.delete(proc)
      resolve()
    }))
  }

  get pid (): number {
    return this.proc.pid as number
  }

  get running (): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  get wsUrl (): string {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  /** SIGKILL by pid, then waits (bounded) for the exit. */
  async stop (): Promise<void> {
    if (this.running) this.proc.kill('SIGKILL')
    await Promise.race([this.exited, sleep(STOP_TIMEOUT_MS)])
  }
}

async function waitForHttp (child: Child, path: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (!child.running) throw new Error(`${child.label} exited at start:\n${child.output}`)
    try {
      const response = await fetch(`http://127.0.0.1:${child.port}${path}`, { signal: AbortSignal.timeout(2000) })
      if (response.status === 200) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${child.label} did not answer ${path} within ${START_TIMEOUT_MS} ms:\n${child.output}`)
    await sleep(50)
  }
}

function cleanEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of SERVICE_VARIABLES) delete env[name]
  return { ...env, ...extra }
}

/**
 * Both servers run as compiled JavaScript, as the service does in production
 * (`npm start` runs dist/server.js): under the tsx loader each would carry a
 * loader thread whose idle-time garbage collection (20-40 ms on the pinned
 * core) landed inside measured windows at different times for each side.
 */
const BUILD_DIR = 'dist-bench'

/** Compiles the service and the baseline into dist-bench/ (tsconfig.bench.json). */
export function buildServers (root: string): void {
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.bench.json'], { cwd: root, encoding: 'utf8' })
  if (tsc.status !== 0) throw new Error(`could not compile the servers (tsc -p tsconfig.bench.json):\n${tsc.stdout}${tsc.stderr}`)
}

/** The real server, single node or (with `redisUrl`) a cluster node. */
export async function startProduct (
  root: string, placement: Placement, options: { redisUrl?: string, redisClusterNodes?: string, nodeId?: string } = {}
): Promise<Child> {
  const port = await freePort()
  const env = cleanEnv({
    ...PRODUCT_ENV,
    HOST: '127.0.0.1',
    PORT: String(port),
    ...(options.redisUrl === undefined ? {} : { REDIS_URL: options.redisUrl }),
    ...(options.redisClusterNodes === undefined ? {} : { REDIS_CLUSTER_NODES: options.redisClusterNodes }),
    ...(options.nodeId === undefined ? {} : { NODE_ID: options.nodeId })
  })
  const [file, args] = command(placement, placement.serverCore, process.execPath, [join(BUILD_DIR, 'server.js')])
  const child = new Child(options.nodeId ?? 'product', spawn(file, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] }), port)
  // A cluster node is ready once its probe came back through Redis.
  await waitForHttp(child, options.redisUrl === undefined && options.redisClusterNodes === undefined ? '/health/live' : '/health/ready')
  return child
}

export async function startBaseline (root: string, placement: Placement): Promise<Child> {
  const port = await freePort()
  const env = cleanEnv({ HOST: '127.0.0.1', PORT: String(port) })
  const [file, args] = command(placement, placement.serverCore, process.execPath, [join(BUILD_DIR, 'bench', 'baseline-server.js')])
  const child = new Child('baseline', spawn(file, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] }), port)
  await waitForHttp(child, '/health/live')
  return child
}

export class RedisProcess {
  private admin: Redis | undefined

  private constructor (readonly child: Child, private readonly dir: string) {}

  get url (): string {
    return `redis://127.0.0.1:${this.child.port}`
  }

  /**
   * By default an append-only file synced once a second (Redis's default with
   * AOF on): durable across a crash of the process, not of the machine.
   * `persistence` replaces those options (bench/redis-cost.ts compares them).
   */
  static async start (placement: Placement, persistence: string[] = ['--appendonly', 'yes', '--appendfsync', 'everysec']): Promise<RedisProcess> {
    const port = await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'chat-bench-redis-'))
    const [file, args] = command(placement, placement.serverCore, 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence
    ])
    const redis = new RedisProcess(new Child('redis', spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] }), port), dir)
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (!redis.child.running) throw new Error(`redis-server exited at start:\n${redis.child.output}`)
      try {
        await redis.command('PING')
        return redis
      } catch {
        redis.admin?.disconnect()
        redis.admin = undefined
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`)
        await sleep(50)
      }
    }
  }

  async command (name: string, ...args: string[]): Promise<unknown> {
    if (!this.admin) {
      this.admin = new Redis(this.child.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true })
      this.admin.on('error', () => {})
      await this.admin.connect()
    }
    return this.admin.call(name, ...args)
  }

  async stop (): Promise<void> {
    this.admin?.disconnect()
    this.admin = undefined
    await this.child.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** The load generator process; one job at a time over IPC. */
export class Generator {
  private child: Child | undefined
  private nextId = 1
  private pending: { id: number, resolve: (result: JobResult) => void, reject: (error: Error) => void } | undefined

  constructor (private readonly root: string, private readonly placement: Placement) {}

  get pid (): number | undefined {
    return this.child?.pid
  }

  private async start (): Promise<Child> {
    const [file, args] = command(this.placement, this.placement.generatorCore, process.execPath, ['--import', 'tsx', 'bench/load-generator.ts'])
    const child = new Child('generator', spawn(file, args, { cwd: this.root, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' }), 0)
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the load generator did not start:\n${child.output}`)), START_TIMEOUT_MS)
      child.proc.on('message', (message: GeneratorReply) => {
        if ('ready' in message) {
          clearTimeout(timer)
          resolve()
          return
        }
        const pending = this.pending
        if (pending === undefined || pending.id !== message.id) return
        this.pending = undefined
        if (message.ok) pending.resolve(message.result)
        else pending.reject(new Error(message.error))
      })
      child.proc.once('exit', (code, signal) => {
        clearTimeout(timer)
        const error = new Error(`the load generator exited (${code ?? signal}):\n${child.output}`)
        if (this.child === child) this.child = undefined
        this.pending?.reject(error)
        this.pending = undefined
        reject(error)
      })
    })
    await ready
    return child
  }

  /** Runs a job; a generator that died is started again for the next one. */
  async run (job: Job, timeoutMs: number): Promise<JobResult> {
    this.child ??= await this.start()
    const child = this.child
    const id = this.nextId++
    return new Promise<JobResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined
        // A stuck generator is replaced rather than trusted with the next job.
        child.stop().catch(() => {})
        reject(new Error(`job ${job.kind} took longer than ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending = {
        id,
        resolve: (result) => { clearTimeout(timer); resolve(result) },
        reject: (error) => { clearTimeout(timer); reject(error) }
      }
      child.proc.send({ id, job })
    })
  }

  async stop (): Promise<void> {
    const child = this.child
    this.child = undefined
    if (child === undefined) return
    if (child.proc.connected) child.proc.disconnect()
    await Promise.race([child.exited, sleep(STOP_TIMEOUT_MS)])
    await child.stop()
  }
}
