// A real Redis Cluster for one test: three masters with one replica each, on
// free loopback ports (each also needs its bus port, +10000), created with
// `redis-cli --cluster create … --cluster-replicas 1` and waited on until
// `cluster_state:ok` everywhere and every replica's link to its master is up.
// Stopped (its own pids only) and its files removed in teardown.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { freePort } from './free-port.js'
import { waitFor } from './wait.js'

const run = promisify(execFile)

const MASTERS = 3
const NODES = MASTERS * 2
/** Redis Cluster's bus port is the client port plus this. */
const BUS_OFFSET = 10_000
const START_TIMEOUT_MS = 10_000
const CREATE_TIMEOUT_MS = 30_000
const PORT_ATTEMPTS = 50

export interface ClusterNode {
  port: number
  /** `127.0.0.1:<port>` */
  address: string
  process: ChildProcess
}

async function portIsFree (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A free port whose bus port is free too. */
async function freeClusterPort (taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort()
    if (port + BUS_OFFSET > 65535 || taken.has(port) || taken.has(port + BUS_OFFSET) || !(await portIsFree(port + BUS_OFFSET))) continue
    taken.add(port)
    taken.add(port + BUS_OFFSET)
    return port
  }
  throw new Error(`no free port with a free bus port in ${PORT_ATTEMPTS} attempts`)
}

export class RedisCluster {
  private readonly admins = new Map<number, Redis>()

  private constructor (readonly nodes: ClusterNode[], private readonly dir: string) {}

  /** `host:port` seeds of every node, as REDIS_CLUSTER_NODES takes them. */
  get seeds (): string {
    return this.nodes.map((node) => node.address).join(',')
  }

  static async start (t: Test): Promise<RedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'chat-redis-cluster-'))
    const taken = new Set<number>()
    const nodes: ClusterNode[] = []
    const cluster = new RedisCluster(nodes, dir)
    t.teardown(async () => {
      await cluster.stop()
      rmSync(dir, { recursive: true, force: true })
    })
    for (let i = 0; i < NODES; i++) {
      const port = await freeClusterPort(taken)
      const child = spawn('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
        '--save', '', '--appendonly', 'yes', '--appendfilename', `appendonly-${port}.aof`, '--appenddirname', `aof-${port}`
      ], { stdio: 'ignore' })
      nodes.push({ port, address: `127.0.0.1:${port}`, process: child })
    }
    for (const node of nodes) {
      await waitFor(async () => await cluster.tryCommand(node.port, 'PING') === 'PONG', `redis-server on ${node.port}`, START_TIMEOUT_MS, 50)
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((node) => node.address), '--cluster-replicas', '1', '--cluster-yes'], { timeout: CREATE_TIMEOUT_MS })
    await waitFor(async () => {
      for (const node of nodes) {
        const info = String(await cluster.tryCommand(node.port, 'CLUSTER', 'INFO'))
        if (!info.includes('cluster_state:ok')) return false
        const replication = String(await cluster.tryCommand(node.port, 'INFO', 'replication'))
        if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false
      }
      return true
    }, 'the cluster to be ok with every replica linked', CREATE_TIMEOUT_MS, 100)
    return cluster
  }

  /** The masters, by `CLUSTER NODES` on the first node that answers. */
  async masters (): Promise<ClusterNode[]> {
    for (const node of this.nodes) {
      const listing = await this.tryCommand(node.port, 'CLUSTER', 'NODES')
      if (typeof listing !== 'string') continue
      // <id> <ip:port@bus> <flags> …: flags like "myself,master" or "slave,fail".
      const ports = listing.split('\n').map((line) => line.split(' '))
        .filter((fields) => fields[2]?.split(',').includes('master') === true && !(fields[2]?.includes('fail') ?? false))
        .map((fields) => Number(/:(\d+)@/.exec(fields[1] ?? '')?.[1]))
      return this.nodes.filter((candidate) => ports.includes(candidate.port))
    }
    throw new Error('no cluster node answers')
  }

  /** Runs a command on one node, on a connection of the test's own. */
  async command (port: number, name: string, ...args: Array<string | number>): Promise<unknown> {
    let admin = this.admins.get(port)
    if (!admin) {
      admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
      admin.on('error', () => {})
      this.admins.set(port, admin)
    }
    return await admin.call(name, ...args)
  }

  /** `command`, or undefined when the node does not answer. */
  private async tryCommand (port: number, name: string, ...args: Array<string | number>): Promise<unknown> {
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await probe.connect()
      return await probe.call(name, ...args)
    } catch {
      return undefined
    } finally {
      probe.disconnect()
    }
  }

  /** Kills every node (SIGKILL) and waits for them to exit. */
  async stop (): Promise<void> {
    for (const admin of this.admins.values()) admin.disconnect()
    this.admins.clear()
    await Promise.all(this.nodes.map(async ({ process: child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }))
  }
}
