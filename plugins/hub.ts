// Decorates the instance with the hub (rooms, members, fan-out).
import fp from 'fastify-plugin'
import { Hub } from '../lib/hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    hub: Hub
  }
}

export default fp(async function hubPlugin (fastify) {
  const { config, broker, ephemeral, presence, stats } = fastify
  const hub = new Hub({
    broker,
    presence,
    stats,
    historyOnJoin: config.historyOnJoin,
    historySize: config.historySize,
    policies: config.namespacesFile,
    presenceBatchMs: config.presenceBatchMs,
    maxRoomsPerConnection: config.maxRoomsPerConnection,
    ephemeral,
    onError: (error, context) => fastify.log.error({ err: error }, context)
  })
  await hub.start()
  fastify.decorate('hub', hub)
  fastify.addHook('onClose', async () => {
    hub.close()
  })
}, { name: 'hub', dependencies: ['config', 'broker', 'stats'] })
