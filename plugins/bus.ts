// Chooses the broker: in memory on a single node, Redis in a cluster.
// Idempotency keys live beside the messages, so they follow the same choice.
import fp from 'fastify-plugin'
import type { Bus } from '../lib/bus.js'
import { MemoryBus } from '../lib/memory-bus.js'
import { type IdempotencyStore, MemoryIdempotencyStore } from '../lib/idempotency.js'
import { RedisBus } from '../lib/redis-bus.js'
import { RedisIdempotencyStore } from '../lib/redis-idempotency.js'
import redisPlugin from './redis.js'

export interface BroadcastResult {
  id: string
  room: string
  ts: number
}

declare module 'fastify' {
  interface FastifyInstance {
    bus: Bus
    idempotency: IdempotencyStore<BroadcastResult>
  }
}

export default fp(async function busPlugin (fastify) {
  const { config } = fastify
  if (config.redisUrl === undefined) {
    fastify.decorate('bus', new MemoryBus({ historySize: config.historySize, maxIdleRooms: config.maxIdleRooms }))
    fastify.decorate('idempotency', new MemoryIdempotencyStore<BroadcastResult>())
  } else {
    await fastify.register(redisPlugin)
    const { store, subscriber } = fastify.redis
    if (!store || !subscriber) throw new Error('the redis plugin did not register its connections')
    fastify.decorate('bus', new RedisBus({
      command: store,
      subscriber,
      nodeId: config.nodeId,
      historySize: config.historySize,
      presenceTtlMs: config.presenceTtlMs,
      readyProbeMs: config.readyProbeMs
    }))
    fastify.decorate('idempotency', new RedisIdempotencyStore<BroadcastResult>(store))
  }
  fastify.addHook('onClose', async () => {
    await fastify.bus.close()
  })
}, { name: 'bus', dependencies: ['config'] })
