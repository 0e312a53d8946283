// Which Redis cluster mode talks to, and how its connections are made: one
// server (REDIS_URL), the master a set of Sentinels points at
// (REDIS_SENTINELS), or a Redis Cluster (REDIS_CLUSTER_NODES, sharded pub/sub
// through ioredis's `shardedSubscribers`). Every part that talks to Redis
// gets its clients here, so a topology is one choice made in one place.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { Config } from './config.js'
import {
  REDIS_CLUSTER_MAX_REDIRECTIONS, REDIS_CLUSTER_TRYAGAIN_DELAY_MS,
  REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS, REDIS_RECONNECT_MAX_MS, REDIS_RECONNECT_MIN_MS
} from './limits.js'

export interface HostPort {
  host: string
  port: number
}

export type RedisTopology =
  | { kind: 'server', url: string }
  | { kind: 'sentinel', sentinels: HostPort[], master: string, password: string | undefined, tls: boolean }
  | { kind: 'cluster', seeds: HostPort[], password: string | undefined, tls: boolean }

/** A connection to any topology: commands, scripts and sharded pub/sub look the same on both. */
export type RedisClient = Redis | Cluster

/** What the connection is for: a subscriber can do nothing but subscribe. */
export type ConnectionRole = 'command' | 'subscriber'

type TopologyConfig = Pick<Config, 'redisUrl' | 'redisSentinels' | 'redisSentinelMaster' | 'redisClusterNodes' | 'redisPassword' | 'redisTls'>

/** The topology the configuration names; undefined: no Redis (a single node in memory). */
export function redisTopology (config: TopologyConfig): RedisTopology | undefined {
  const { redisPassword: password, redisTls: tls } = config
  if (config.redisClusterNodes !== undefined) return { kind: 'cluster', seeds: config.redisClusterNodes, password, tls }
  if (config.redisSentinels !== undefined && config.redisSentinelMaster !== undefined) {
    return { kind: 'sentinel', sentinels: config.redisSentinels, master: config.redisSentinelMaster, password, tls }
  }
  if (config.redisUrl !== undefined) return { kind: 'server', url: config.redisUrl }
  return undefined
}

/** The URL without its password, for messages and logs. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'an unparsable URL'
  }
}

export function formatHostPort ({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** The topology in words, naming its variable; never a password. */
export function describeTopology (topology: RedisTopology): string {
  switch (topology.kind) {
    case 'server': return `Redis at ${redactUrl(topology.url)} (REDIS_URL)`
    case 'sentinel': return `the Redis master "${topology.master}" of the Sentinels ${topology.sentinels.map(formatHostPort).join(', ')} (REDIS_SENTINELS)`
    case 'cluster': return `the Redis Cluster seeded by ${topology.seeds.map(formatHostPort).join(', ')} (REDIS_CLUSTER_NODES)`
  }
}

/** Reconnect backoff, doubling from REDIS_RECONNECT_MIN_MS to REDIS_RECONNECT_MAX_MS. */
export function reconnectDelay (attempt: number): number {
  return Math.min(REDIS_RECONNECT_MAX_MS, REDIS_RECONNECT_MIN_MS * 2 ** Math.min(attempt, 10))
}

/** Options of every connection to one Redis server (exported so tests of the Redis code run with the same). */
export function connectionOptions (name: string): RedisOptions {
  return {
    connectionName: name,
    lazyConnect: true,
    // Fail fast while disconnected: the caller answers `unavailable` rather than waiting.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    // ShardedSubscription resubscribes in bounded chunks itself, so it knows when to repair gaps.
    autoResubscribe: false,
    // Commands issued in one turn of the event loop leave in one write, and
    // Redis reads them in one go: what a stored message costs Redis is then
    // close to the pipelined figure (docs/scaling.md). Subscribe commands
    // never wait in such a batch, and neither do (S)PUBLISH: a batch leaves
    // only once the one before it is answered, and the readiness probe must
    // not wait behind a node's burst of reads (nor presence changes).
    // (A Redis Cluster's own option stays off: not measured there yet.)
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: ['publish', 'spublish'],
    retryStrategy: reconnectDelay
  }
}

/** A new, not yet connected client of `topology` (call `connect()`); `name` shows in CLIENT LIST. */
export function createRedisClient (topology: RedisTopology, name: string, role: ConnectionRole): RedisClient {
  switch (topology.kind) {
    case 'server':
      return new Redis(topology.url, connectionOptions(name))
    case 'sentinel':
      return new Redis({
        ...connectionOptions(name),
        sentinels: topology.sentinels,
        name: topology.master,
        // REDIS_PASSWORD authenticates to the master and its replicas; Sentinels are asked without one.
        ...(topology.password === undefined ? {} : { password: topology.password }),
        ...(topology.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
        // Keep asking the Sentinels while none answers (a failover, a restart): as a lost server is retried.
        sentinelRetryStrategy: reconnectDelay,
        // A master that became a replica is left at once and the Sentinels asked again.
        failoverDetector: true
      })
    case 'cluster': {
      const options: ClusterOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
        clusterRetryStrategy: reconnectDelay,
        // A slot being moved: TRYAGAIN and ASK retried, a bounded number of times (see limits.ts).
        retryDelayOnTryAgain: REDIS_CLUSTER_TRYAGAIN_DELAY_MS,
        maxRedirections: REDIS_CLUSTER_MAX_REDIRECTIONS,
        // Only the subscriber subscribes: one sharded subscriber connection per master, resubscribed by ioredis per slot.
        shardedSubscribers: role === 'subscriber',
        redisOptions: {
          ...connectionOptions(name),
          ...(topology.password === undefined ? {} : { password: topology.password }),
          ...(topology.tls ? { tls: {} } : {})
        }
      }
      return new Cluster(topology.seeds, options)
    }
  }
}

/** Redis could not be reached or is not what the configuration says: one line, naming the variable to fix. */
export class RedisTopologyError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'RedisTopologyError'
  }
}

/** What one server says about itself (INFO cluster / CLUSTER INFO / SENTINEL …). */
interface Inspector {
  call (command: string, ...args: string[]): Promise<unknown>
  disconnect (): void
}

/** A one-shot connection to one server, no retries: for the checks at start. */
async function inspect<T> (address: HostPort | string, options: RedisOptions, use: (server: Inspector) => Promise<T>): Promise<T> {
  const settings: RedisOptions = {
    ...options,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: REDIS_CONNECT_TIMEOUT_MS
  }
  const server = typeof address === 'string' ? new Redis(address, settings) : new Redis(address.port, address.host, settings)
  let lastError: Error | undefined
  server.on('error', (error: Error) => { lastError = error })
  try {
    await server.connect()
    return await use(server)
  } catch (error) {
    // ioredis rejects connect() with "Connection is closed"; the cause is the last error event.
    throw lastError ?? error
  } finally {
    server.disconnect()
  }
}

/** "cluster_enabled:1" out of an INFO reply. */
function infoField (info: unknown, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(String(info))?.[1]?.trim()
}

/** An error's message without its final full stop, for the middle of a sentence. */
function cause (error: unknown): string {
  return (error as Error).message.replace(/\.$/, '')
}

/**
 * Checks at start that the configured Redis is there and is what the
 * configuration says (a REDIS_URL is not a Cluster node, Cluster seeds are,
 * the Sentinels know the master); throws RedisTopologyError with one line.
 */
export async function checkTopology (topology: RedisTopology): Promise<void> {
  switch (topology.kind) {
    case 'server': {
      let enabled: string | undefined
      try {
        enabled = await inspect(topology.url, {}, async (server) => infoField(await server.call('INFO', 'cluster'), 'cluster_enabled'))
      } catch (error) {
        throw new RedisTopologyError(`cannot connect to Redis at ${redactUrl(topology.url)} (REDIS_URL): ${cause(error)}. Start Redis or fix REDIS_URL; unset it to run a single node in memory`)
      }
      if (enabled === '1') throw new RedisTopologyError(`REDIS_URL points at a Redis Cluster node (${redactUrl(topology.url)}); set REDIS_CLUSTER_NODES instead`)
      return
    }
    case 'cluster': {
      const failures: string[] = []
      for (const seed of topology.seeds) {
        const credentials: RedisOptions = { ...(topology.password === undefined ? {} : { password: topology.password }), ...(topology.tls ? { tls: {} } : {}) }
        let state: { enabled: string | undefined, state: string | undefined }
        try {
          state = await inspect(seed, credentials, async (server) => {
            const enabled = infoField(await server.call('INFO', 'cluster'), 'cluster_enabled')
            return { enabled, state: enabled === '1' ? infoField(await server.call('CLUSTER', 'INFO'), 'cluster_state') : undefined }
          })
        } catch (error) {
          failures.push(`${formatHostPort(seed)}: ${cause(error)}`)
          continue
        }
        if (state.enabled !== '1') throw new RedisTopologyError(`REDIS_CLUSTER_NODES: ${formatHostPort(seed)} is not a Redis Cluster node (cluster support is disabled); set REDIS_URL instead`)
        if (state.state !== 'ok') throw new RedisTopologyError(`REDIS_CLUSTER_NODES: the Redis Cluster of ${formatHostPort(seed)} is not serving (cluster_state:${state.state ?? 'unknown'}); fix the cluster first`)
        return
      }
      throw new RedisTopologyError(`cannot reach any Redis Cluster seed of REDIS_CLUSTER_NODES (${failures.join('; ')}). Start the cluster or fix REDIS_CLUSTER_NODES`)
    }
    case 'sentinel': {
      const failures: string[] = []
      for (const sentinel of topology.sentinels) {
        let address: unknown
        try {
          address = await inspect(sentinel, topology.tls ? { tls: {} } : {}, (server) => server.call('SENTINEL', 'get-master-addr-by-name', topology.master))
        } catch (error) {
          failures.push(`${formatHostPort(sentinel)}: ${cause(error)}`)
          continue
        }
        if (address === null) throw new RedisTopologyError(`REDIS_SENTINEL_MASTER: the Sentinel at ${formatHostPort(sentinel)} knows no master named "${topology.master}"`)
        return
      }
      throw new RedisTopologyError(`cannot reach any Sentinel of REDIS_SENTINELS (${failures.join('; ')}). Start the Sentinels or fix REDIS_SENTINELS`)
    }
  }
}
