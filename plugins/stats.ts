// Decorates the instance with the plain counters the hub and the connections
// keep; the metrics plugin reads them when scraped.
import fp from 'fastify-plugin'
import { createStats, type Stats } from '../lib/stats.js'

declare module 'fastify' {
  interface FastifyInstance {
    stats: Stats
  }
}

export default fp(async function statsPlugin (fastify) {
  fastify.decorate('stats', createStats())
}, { name: 'stats' })
