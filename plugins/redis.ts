// Redis connections for cluster mode, on whichever topology the configuration
// names (lib/redis-topology.ts): one for commands and one for subscribing,
// which can do nothing else; other plugins open more subscribers through
// `connect`. At start the topology is checked and both connect, or the
// process stops with one clear line; afterwards they reconnect with backoff
// forever, and commands fail fast while Redis is away so sends get
// `unavailable`.
import fp from 'fastify-plugin'
import {
  checkTopology, type ConnectionRole, createRedisClient, describeTopology, type RedisClient, type RedisTopology, RedisTopologyError, redisTopology
} from '../lib/redis-topology.js'
import { REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS } from '../lib/limits.js'

export interface RedisConnections {
  topology: RedisTopology
  /** Commands, scripts and publishes. */
  store: RedisClient
  /** The broker's subscriber. */
  subscriber: RedisClient
  /**
   * Opens one more connection of the topology (`purpose` names it in CLIENT
   * LIST and the logs); closed with the app. Rejects with one clear line.
   */
  connect: (purpose: string, role: ConnectionRole) => Promise<RedisClient>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Present in cluster mode only. */
    redis?: RedisConnections
  }
}

/**
 * Closes one client for good. A ready one is sent QUIT first, so that replies
 * in flight still arrive, for at most REDIS_COMMAND_TIMEOUT_MS (a server that
 * just died answers nothing). Then disconnect() in every case: on a Sentinel
 * client only disconnect() ends the connections ioredis keeps to each
 * Sentinel to hear of failovers (its failover detector); QUIT ends the
 * master's connection but leaves those open, so the process kept sockets to
 * the Sentinels after close and, once they died, reconnected to them with
 * "Unhandled error event". disconnect() after QUIT is harmless on the other
 * topologies, and it also stops a client that is still reconnecting.
 */
async function closeClient (client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      client.quit().catch(() => {}),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, REDIS_COMMAND_TIMEOUT_MS) })
    ])
    clearTimeout(timer)
  }
  client.disconnect()
}

export default fp(async function redisPlugin (fastify) {
  const topology = redisTopology(fastify.config)
  if (topology === undefined) throw new Error('the redis plugin needs REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES')
  const { nodeId } = fastify.config
  const clients: RedisClient[] = []
  fastify.addHook('onClose', async () => {
    await Promise.all(clients.map(closeClient))
  })

  async function connect (purpose: string, role: ConnectionRole): Promise<RedisClient> {
    const client = createRedisClient(topology as RedisTopology, `chat:${nodeId}:${purpose}`, role)
    clients.push(client)
    // ioredis rejects connect() with "Connection is closed"; the cause is the last error event.
    let lastError: Error | undefined
    client.on('error', (error: Error) => {
      lastError = error
      fastify.log.warn({ err: error, role: purpose }, 'redis connection error')
    })
    client.on('reconnecting', () => fastify.log.warn({ role: purpose }, 'redis reconnecting'))
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([client.connect(), new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_CONNECT_TIMEOUT_MS} ms`)), REDIS_CONNECT_TIMEOUT_MS)
      })])
    } catch (error) {
      client.disconnect()
      const cause = (lastError ?? error as Error).message.replace(/\.$/, '')
      throw new RedisTopologyError(`cannot connect to ${describeTopology(topology as RedisTopology)}: ${cause}`)
    } finally {
      clearTimeout(timer)
    }
    return client
  }

  await checkTopology(topology)
  const [store, subscriber] = await Promise.all([connect('command', 'command'), connect('subscriber', 'subscriber')])
  fastify.decorate('redis', { topology, store, subscriber, connect })
}, { name: 'redis', dependencies: ['config'] })
