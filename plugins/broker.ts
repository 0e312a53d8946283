// Chooses the broker and the presence: in memory on a single node, Redis in a
// cluster (one server, Sentinel or Redis Cluster: plugins/redis.ts). Idempotency keys live beside the messages, so they follow the same
// choice.
import fp from 'fastify-plugin'
import type { Broker, EphemeralChannel } from '../lib/broker.js'
import { type IdempotencyStore, MemoryIdempotencyStore } from '../lib/idempotency.js'
import { MemoryBroker } from '../lib/memory-broker.js'
import { MemoryPresence } from '../lib/memory-presence.js'
import { policyFor } from '../lib/policy.js'
import type { Presence } from '../lib/presence.js'
import { RedisBroker } from '../lib/redis-broker.js'
import type { RedisErrorReporter } from '../lib/redis-errors.js'
import { RedisIdempotencyStore } from '../lib/redis-idempotency.js'
import { RedisPresence } from '../lib/redis-presence.js'
import { redisTopology } from '../lib/redis-topology.js'
import redisPlugin from './redis.js'

export interface BroadcastResult {
  id: string
  room: string
  ts: number
}

declare module 'fastify' {
  interface FastifyInstance {
    broker: Broker
    /** The other nodes serving a room, past the message sequencing (signals); undefined on a single node. */
    ephemeral: EphemeralChannel | undefined
    presence: Presence
    idempotency: IdempotencyStore<BroadcastResult>
  }
}

export default fp(async function brokerPlugin (fastify) {
  const { config } = fastify
  // Each room's log is capped at its namespace's historySize (NAMESPACES_FILE).
  const roomHistorySize = (room: string): number => policyFor(config.namespacesFile, room).historySize
  if (redisTopology(config) === undefined) {
    fastify.decorate('broker', new MemoryBroker({
      historySize: config.historySize,
      roomHistorySize,
      historyMaxBytes: config.historyMaxBytes,
      historyTotalMaxBytes: config.historyTotalMaxBytes,
      maxIdleRooms: config.maxIdleRooms
    }))
    fastify.decorate('ephemeral', undefined)
    fastify.decorate('presence', new MemoryPresence())
    fastify.decorate('idempotency', new MemoryIdempotencyStore<BroadcastResult>())
  } else {
    await fastify.register(redisPlugin)
    if (!fastify.redis) throw new Error('the redis plugin did not register its connections')
    const { store, subscriber } = fastify.redis
    // Redis being away is logged once by the connections (plugins/redis.ts); anything else is news.
    const onError: RedisErrorReporter = (err, context) => fastify.log.error({ err, context }, 'unexpected Redis error')
    // A WAIT holds its connection: replicated publishes get their own (RedisBrokerOptions.replicatedPublisher).
    const replicatedPublisher = config.redisWaitReplicas > 0 ? await fastify.redis.connect('publisher', 'command') : undefined
    const broker = new RedisBroker({
      command: store,
      replicatedPublisher,
      subscriber,
      nodeId: config.nodeId,
      historySize: config.historySize,
      roomHistorySize,
      historyMaxBytes: config.historyMaxBytes,
      historyTtlS: config.historyTtlS,
      readyProbeMs: config.readyProbeMs,
      waitReplicas: config.redisWaitReplicas,
      onError
    })
    fastify.decorate('broker', broker)
    fastify.decorate('ephemeral', broker)
    fastify.decorate('presence', new RedisPresence({
      command: store,
      channel: broker,
      nodeId: config.nodeId,
      presenceTtlMs: config.presenceTtlMs,
      onError
    }))
    fastify.decorate('idempotency', new RedisIdempotencyStore<BroadcastResult>(store))
  }
  fastify.addHook('onClose', async () => {
    await Promise.all([fastify.presence.close(), fastify.broker.close()])
  })
}, { name: 'broker', dependencies: ['config'] })
