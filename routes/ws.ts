// GET /ws: checks the upgrade request (shutdown, origin, name), then the
// token once upgraded (routes/ws-auth.ts), then hands the socket to a
// registered Connection. Other methods get 405, plain GETs 426.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { Connection, newConnectionId, type ConnectionOptions, type FrameStream } from '../lib/connection.js'
import { WriteBatch } from '../lib/write-batch.js'
import { createFrameParser, resolveName } from '../lib/frames.js'
import { admitConnection } from './ws-auth.js'

function originAllowed (request: FastifyRequest, allowed: string[]): boolean {
  const origin = request.headers.origin
  if (origin === undefined) return true
  let parsed: URL
  try {
    parsed = new URL(origin)
  } catch {
    return false
  }
  if (parsed.host === request.headers.host) return true
  return allowed.includes(parsed.origin)
}

/**
 * The TCP stream under a `ws` WebSocket. `ws` keeps it in a private field;
 * writing pre-built frames to it is what lets one buffer serve every member.
 */
function streamOf (socket: WebSocket): FrameStream {
  const stream = (socket as unknown as { _socket?: FrameStream })._socket
  if (stream === undefined) throw new Error('ws no longer exposes its socket; see routes/ws.ts streamOf')
  return stream
}

declare module 'fastify' {
  interface FastifyRequest {
    chatName: string
  }
}

export default async function wsRoutes (fastify: FastifyInstance) {
  const { config, hub, stats, connections, auth } = fastify
  const shared: ConnectionOptions = {
    hub,
    stats,
    parse: createFrameParser(config.maxTextLength),
    batch: new WriteBatch(),
    sendQueueMaxBytes: config.sendQueueMaxBytes,
    rateLimitPerSec: config.rateLimitPerSec,
    rateLimitBurst: config.rateLimitBurst,
    onClosed: (connection) => {
      connections.delete(connection)
      auth.users.delete(connection)
    },
    auth: {
      clockToleranceS: config.authClockToleranceS,
      refresh: (user, token) => auth.authenticator.refresh(user, token)
    }
  }
  fastify.decorateRequest('chatName', '')

  fastify.route({
    method: 'GET',
    url: '/ws',
    async preValidation (request, reply) {
      if (!request.ws) return
      if (connections.draining) {
        return reply.code(503).send({ error: 'Service Unavailable', message: 'server is shutting down; connect to another node' })
      }
      if (!originAllowed(request, config.allowedOrigins)) {
        return reply.code(403).send({ error: 'Forbidden', message: `origin ${request.headers.origin} is not allowed; add it to ALLOWED_ORIGINS` })
      }
      const resolved = resolveName((request.query as Record<string, unknown>).name)
      if ('error' in resolved) return reply.code(400).send({ error: 'Bad Request', field: 'name', message: resolved.error })
      request.chatName = resolved.name
    },
    handler (_request, reply) {
      return reply.code(426).header('Upgrade', 'websocket').send({ error: 'Upgrade Required', message: 'GET /ws must be a WebSocket upgrade' })
    },
    wsHandler (socket, request) {
      admitConnection(socket, request, auth.authenticator, (identity) => {
        const connection = new Connection(newConnectionId(), identity?.name ?? request.chatName, socket, streamOf(socket), {
          ...shared,
          onInternalError: (error, consequence) => request.log.error({ err: error }, consequence)
        }, identity)
        connections.add(connection)
        auth.users.add(connection)
        connection.listen(socket)
        connection.welcome(config.nodeId)
        return connection
      })
    }
  })

  fastify.route({
    method: ['POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/ws',
    handler (_request, reply) {
      return reply.code(405).header('Allow', 'GET').send({ error: 'Method Not Allowed', message: '/ws accepts only GET (a WebSocket upgrade)' })
    }
  })
}
