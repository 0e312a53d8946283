// Decorates the instance with the hub (rooms, members, fan-out) and the
// counters it keeps.
import fp from 'fastify-plugin'
import { Hub } from '../lib/hub.js'
import { createStats, type Stats } from '../lib/stats.js'

declare module 'fastify' {
  interface FastifyInstance {
    hub: Hub
    stats: Stats
  }
}

export default fp(async function hubPlugin (fastify) {
  const { config, broker, presence } = fastify
  const stats = createStats()
  const hub = new Hub({
    broker,
    presence,
    stats,
    historyOnJoin: config.historyOnJoin,
    historySize: config.historySize,
    presenceBatchMs: config.presenceBatchMs,
    maxRoomsPerConnection: config.maxRoomsPerConnection
  })
  await hub.start()
  fastify.decorate('stats', stats)
  fastify.decorate('hub', hub)
  fastify.addHook('onClose', async () => {
    hub.close()
  })
}, { name: 'hub', dependencies: ['config', 'broker'] })
