// The application as a Fastify plugin (no listen): server.ts and the tests
// build it the same way.
import fp from 'fastify-plugin'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './lib/config.js'
import { withTokenRedaction } from './lib/log-redaction.js'
import { USER_ID_MAX_PARAM_LENGTH } from './routes/users.js'
import configPlugin from './plugins/config.js'
import brokerPlugin from './plugins/broker.js'
import statsPlugin from './plugins/stats.js'
import hubPlugin from './plugins/hub.js'
import websocketPlugin from './plugins/websocket.js'
import metricsPlugin from './plugins/metrics.js'
import authPlugin from './plugins/auth.js'
import staticPlugin from './plugins/static.js'
import wsRoutes from './routes/ws.js'
import healthRoutes from './routes/health.js'
import roomRoutes from './routes/rooms.js'
import metricsRoutes from './routes/metrics.js'
import pageConfigRoutes from './routes/page-config.js'
import userRoutes from './routes/users.js'

export default async function app (fastify: FastifyInstance, opts: { config: Config }) {
  await fastify.register(configPlugin, { config: opts.config })
  await fastify.register(brokerPlugin)
  await fastify.register(statsPlugin)
  await fastify.register(hubPlugin)
  await fastify.register(websocketPlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(authPlugin)
  await fastify.register(staticPlugin)

  await fastify.register(wsRoutes)
  await fastify.register(healthRoutes)
  await fastify.register(roomRoutes)
  await fastify.register(metricsRoutes)
  await fastify.register(pageConfigRoutes)
  await fastify.register(userRoutes)
}

/** A ready-to-listen instance of the application. */
export async function buildApp (config: Config, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  // Every logger this app builds redacts connection tokens (PROTOCOL §1).
  // A user id in a path (POST /users/:id/disconnect) may be longer than Fastify's default 100.
  const fastify = Fastify({ routerOptions: { maxParamLength: USER_ID_MAX_PARAM_LENGTH }, ...options, logger: withTokenRedaction(options.logger) })
  // Registered with fastify-plugin so its decorators (hub, connections…) are visible to the caller.
  await fastify.register(fp(app), { config })
  return fastify
}
