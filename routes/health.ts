// Kubernetes probes: liveness while the process runs; readiness while the
// node can serve (not draining, broker healthy).
import type { FastifyInstance } from 'fastify'

export default async function healthRoutes (fastify: FastifyInstance) {
  const { connections, broker } = fastify

  fastify.get('/health/live', async () => ({ status: 'ok' }))

  fastify.get('/health/ready', async (_request, reply) => {
    if (connections.draining) {
      return reply.code(503).send({ status: 'unavailable', check: 'shutdown', reason: 'the server is shutting down' })
    }
    const health = broker.health()
    if (!health.ok) return reply.code(503).send({ status: 'unavailable', check: health.check, reason: health.reason })
    return { status: 'ok' }
  })
}
