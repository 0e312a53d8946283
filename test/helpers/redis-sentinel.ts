// Replication fixtures for failover tests, all real redis-server processes on
// free loopback ports: a replica of a RedisServer, and a Sentinel set (a
// master, a replica, three sentinels) that can lose its master and promote
// the replica. Every wait is bounded; teardown stops only the processes
// started here, by their own handles.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { freePort } from './free-port.js'
import { RedisServer } from './redis-server.js'
import { waitFor } from './wait.js'

/** The master's name the sentinels monitor (REDIS_SENTINEL_MASTER). */
export const SENTINEL_MASTER = 'chat'
/** Sentinels that must agree the master is down; a majority of three. */
const QUORUM = 2
/** How long the master may be silent before a sentinel thinks it down: short, so a test fails over in seconds. */
const DOWN_AFTER_MS = 1000
const FAILOVER_TIMEOUT_MS = 5000
/** Replication link, sentinels discovering each other: a few seconds on a busy machine. */
const SETUP_TIMEOUT_MS = 15_000
/** Detection (DOWN_AFTER_MS), election and promotion, with room for a loaded machine. */
const PROMOTION_TIMEOUT_MS = 20_000
const POLL_MS = 50

/** `INFO replication` of `server` as a map of its fields. */
export async function replicationInfo (server: RedisServer): Promise<Map<string, string>> {
  const text = await server.command('INFO', 'replication') as string
  return new Map(text.split('\r\n').filter((line) => line.includes(':')).map((line) => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon), line.slice(colon + 1)]
  }))
}

/**
 * Starts a replica of `master` and waits until its link is up and it has the
 * master's data. It connects to `port` (the master's own, or a TcpProxy's in
 * front of it, which can black-hole the link so the replica falls behind).
 */
export async function startReplica (t: Test, master: RedisServer, port = master.port): Promise<RedisServer> {
  const replica = await RedisServer.start(t, ['--replicaof', '127.0.0.1', String(port)])
  await waitFor(async () => (await replicationInfo(replica)).get('master_link_status') === 'up', 'the replica\'s link to its master', SETUP_TIMEOUT_MS, POLL_MS)
  await caughtUp(master, replica)
  return replica
}

/** Waits until `replica` has everything `master` wrote so far (same replication offset). */
export async function caughtUp (master: RedisServer, replica: RedisServer, timeoutMs = SETUP_TIMEOUT_MS): Promise<void> {
  const target = Number((await replicationInfo(master)).get('master_repl_offset'))
  await waitFor(async () => Number((await replicationInfo(replica)).get('master_repl_offset')) >= target,
    `the replica to reach offset ${target}`, timeoutMs, POLL_MS)
}

/** One sentinel process, with its own config file (sentinels rewrite it). */
class Sentinel {
  private child: ChildProcess | undefined
  private client: Redis | undefined

  constructor (readonly port: number, private readonly dir: string) {}

  start (masterPort: number): void {
    const config = join(this.dir, 'sentinel.conf')
    writeFileSync(config, [
      `port ${this.port}`,
      'bind 127.0.0.1',
      `dir ${this.dir}`,
      `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} ${QUORUM}`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER} ${DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${SENTINEL_MASTER} ${FAILOVER_TIMEOUT_MS}`,
      `sentinel parallel-syncs ${SENTINEL_MASTER} 1`,
      ''
    ].join('\n'))
    const child = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' })
    this.child = child
    child.once('exit', () => { if (this.child === child) this.child = undefined })
  }

  async command (...args: Array<string | number>): Promise<unknown> {
    if (!this.client) {
      this.client = new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => POLL_MS })
      this.client.on('error', () => {})
    }
    const [name, ...rest] = args
    return this.client.call(String(name), ...rest)
  }

  async stop (): Promise<void> {
    this.client?.disconnect()
    this.client = undefined
    const child = this.child
    if (!child) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
}

export class SentinelSet {
  private constructor (
    /** The master at start; after `failover`, dead. */
    readonly master: RedisServer,
    /** The replica at start; after `failover`, the master. */
    readonly replica: RedisServer,
    private readonly sentinels: Sentinel[]
  ) {}

  /** REDIS_SENTINELS: the sentinels' addresses. */
  get addresses (): string {
    return this.sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(',')
  }

  /**
   * A master, its replica (link up, caught up) and three sentinels that know
   * both and each other. Everything is stopped in the test's teardown.
   */
  static async start (t: Test): Promise<SentinelSet> {
    const master = await RedisServer.start(t)
    const replica = await startReplica(t, master)
    const dir = mkdtempSync(join(tmpdir(), 'chat-sentinel-'))
    const sentinels: Sentinel[] = []
    t.teardown(async () => {
      await Promise.all(sentinels.map((sentinel) => sentinel.stop()))
      rmSync(dir, { recursive: true, force: true })
    })
    for (let i = 0; i < 3; i++) {
      const sentinel = new Sentinel(await freePort(), mkdtempSync(join(dir, `${i}-`)))
      sentinels.push(sentinel)
      sentinel.start(master.port)
    }
    const set = new SentinelSet(master, replica, sentinels)
    await waitFor(async () => {
      for (const sentinel of sentinels) {
        try {
          const fields = await sentinel.command('SENTINEL', 'MASTER', SENTINEL_MASTER) as string[]
          const field = (name: string) => fields[fields.indexOf(name) + 1]
          if (field('num-slaves') !== '1' || field('num-other-sentinels') !== '2') return false
        } catch {
          return false
        }
      }
      return true
    }, 'the sentinels to know the replica and each other', SETUP_TIMEOUT_MS, POLL_MS)
    return set
  }

  /** The master's port as the sentinels tell it. */
  async masterPort (): Promise<number> {
    const [, port] = await this.sentinels[0]?.command('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER) as [string, string]
    return Number(port)
  }

  /**
   * Per sentinel, how many of its clients are subscribed to something: the
   * connections ioredis keeps to hear of failovers (the fixture's own are not).
   */
  async subscribedClients (): Promise<number[]> {
    return await Promise.all(this.sentinels.map(async (sentinel) => {
      const list = String(await sentinel.command('CLIENT', 'LIST'))
      return list.split('\n').filter((line) => / sub=[1-9]/.test(line) || / psub=[1-9]/.test(line)).length
    }))
  }

  /** Kills everything: the master, the replica and the three sentinels (SIGKILL). */
  async stopAll (): Promise<void> {
    await Promise.all([this.master.stop(), this.replica.stop(), ...this.sentinels.map((sentinel) => sentinel.stop())])
  }

  /** Kills the master (SIGKILL) and waits until the sentinels have promoted the replica and it answers as master. */
  async failover (): Promise<void> {
    await this.master.stop()
    await waitFor(async () => {
      try {
        return await this.masterPort() === this.replica.port && (await replicationInfo(this.replica)).get('role') === 'master'
      } catch {
        return false
      }
    }, 'the sentinels to promote the replica', PROMOTION_TIMEOUT_MS, POLL_MS)
  }
}
