// The application as a Fastify plugin (no listen): server.ts and the tests
// build it the same way.
import fp from 'fastify-plugin'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './lib/config.js'
import { withTokenRedaction } from './lib/log-redaction.js'
import { USER_ID_MAX_PARAM_LENGTH } from './routes/users.js'
import { CONNECTIONS_CHECK_INTERVAL_MS, HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from './lib/limits.js'
import configPlugin from './plugins/config.js'
import brokerPlugin from './plugins/broker.js'
import statsPlugin from './plugins/stats.js'
import hubPlugin from './plugins/hub.js'
import websocketPlugin from './plugins/websocket.js'
import metricsPlugin from './plugins/metrics.js'
import authPlugin from './plugins/auth.js'
import staticPlugin from './plugins/static.js'
import headersPlugin from './plugins/headers.js'
import wsRoutes from './routes/ws.js'
import healthRoutes from './routes/health.js'
import roomRoutes from './routes/rooms.js'
import metricsRoutes from './routes/metrics.js'
import pageConfigRoutes from './routes/page-config.js'
import userRoutes from './routes/users.js'
import openApiRoutes from './routes/openapi.js'

export default async function app (fastify: FastifyInstance, opts: { config: Config }) {
  await fastify.register(configPlugin, { config: opts.config })
  await fastify.register(headersPlugin)
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
  // With INTERNAL_PORT the metrics are served by buildInternalApp only, off the public port.
  if (opts.config.internalPort === undefined) await fastify.register(metricsRoutes)
  await fastify.register(pageConfigRoutes)
  await fastify.register(userRoutes)
  await fastify.register(openApiRoutes)
}

/**
 * Slow requests are cut off (lib/limits.ts). An upgraded WebSocket is not a
 * request any more, so none of these applies to it.
 */
const TIMEOUTS = {
  requestTimeout: REQUEST_TIMEOUT_MS,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  // No idle-socket timeout: a quiet WebSocket is the heartbeat's to judge.
  connectionTimeout: 0,
  http: { headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS }
}

/** A ready-to-listen instance of the application. */
export async function buildApp (config: Config, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const fastify = Fastify({
    // A user id in a path (POST /users/:id/disconnect) may be longer than Fastify's default 100.
    routerOptions: { maxParamLength: USER_ID_MAX_PARAM_LENGTH },
    // request.ip, request.protocol and request.host believe X-Forwarded-* only from these peers.
    trustProxy: config.trustProxy ?? false,
    ...TIMEOUTS,
    ...options,
    // Every logger this app builds redacts connection tokens (PROTOCOL §1).
    logger: withTokenRedaction(options.logger)
  })
  // Registered with fastify-plugin so its decorators (hub, connections…) are visible to the caller.
  await fastify.register(fp(app), { config })
  return fastify
}

/**
 * The internal listener for INTERNAL_PORT (PROTOCOL §4): GET /metrics of
 * `app`, and nothing else, so the public port need not expose them.
 */
export async function buildInternalApp (app: FastifyInstance, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const internal = Fastify({ ...TIMEOUTS, ...options, logger: withTokenRedaction(options.logger) })
  internal.decorate('metrics', app.metrics)
  await internal.register(metricsRoutes)
  return internal
}
