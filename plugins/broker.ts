// Chooses the broker and the presence: in memory on a single node, Redis in a
// cluster. Idempotency keys live beside the messages, so they follow the same
// choice.
import fp from 'fastify-plugin'
import type { Broker } from '../lib/broker.js'
import { type IdempotencyStore, MemoryIdempotencyStore } from '../lib/idempotency.js'
import { MemoryBroker } from '../lib/memory-broker.js'
import { MemoryPresence } from '../lib/memory-presence.js'
import type { Presence } from '../lib/presence.js'
import { RedisBroker } from '../lib/redis-broker.js'
import type { RedisErrorReporter } from '../lib/redis-errors.js'
import { RedisIdempotencyStore } from '../lib/redis-idempotency.js'
import { RedisPresence } from '../lib/redis-presence.js'
import redisPlugin from './redis.js'

export interface BroadcastResult {
  id: string
  room: string
  ts: number
}

declare module 'fastify' {
  interface FastifyInstance {
    broker: Broker
    presence: Presence
    idempotency: IdempotencyStore<BroadcastResult>
  }
}

export default fp(async function brokerPlugin (fastify) {
  const { config } = fastify
  if (config.redisUrl === undefined) {
    fastify.decorate('broker', new MemoryBroker({
      historySize: config.historySize,
      historyMaxBytes: config.historyMaxBytes,
      historyTotalMaxBytes: config.historyTotalMaxBytes,
      maxIdleRooms: config.maxIdleRooms
    }))
    fastify.decorate('presence', new MemoryPresence())
    fastify.decorate('idempotency', new MemoryIdempotencyStore<BroadcastResult>())
  } else {
    await fastify.register(redisPlugin)
    const { store, subscriber } = fastify.redis
    if (!store || !subscriber) throw new Error('the redis plugin did not register its connections')
    // Redis being away is logged once by the connections (plugins/redis.ts); anything else is news.
    const onError: RedisErrorReporter = (err, context) => fastify.log.error({ err, context }, 'unexpected Redis error')
    const broker = new RedisBroker({
      command: store,
      subscriber,
      nodeId: config.nodeId,
      historySize: config.historySize,
      historyMaxBytes: config.historyMaxBytes,
      historyTtlS: config.historyTtlS,
      readyProbeMs: config.readyProbeMs,
      waitReplicas: config.redisWaitReplicas,
      onError
    })
    fastify.decorate('broker', broker)
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
