// GET /ws: checks the upgrade request (shutdown, origin, caps, name), then
// the token once upgraded (routes/ws-auth.ts), then hands the socket to a
// registered Connection. Other methods get 405, plain GETs 426.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { Connection, newConnectionId, type ConnectionOptions, type FrameStream } from '../lib/connection.js'
import { WriteBatch } from '../lib/write-batch.js'
import type { Slot } from '../lib/connection-registry.js'
import { createFrameParser, resolveName } from '../lib/frames.js'
import { admitConnection } from './ws-auth.js'

/**
 * The origin the request was made to: scheme, host and port, as the browser
 * saw them (X-Forwarded-Proto / X-Forwarded-Host count only from a peer
 * TRUST_PROXY trusts: Fastify's request.protocol and request.host).
 */
function ownOrigin (request: FastifyRequest): string | undefined {
  try {
    // An injected request has no socket, hence no protocol: it is plain http.
    return new URL(`${request.protocol ?? 'http'}://${request.host}`).origin
  } catch {
    return undefined
  }
}

/** A browser's Origin must be the request's own origin (scheme, host and port) or one of ALLOWED_ORIGINS. */
function originAllowed (request: FastifyRequest, allowed: string[]): boolean {
  const origin = request.headers.origin
  if (origin === undefined) return true
  let parsed: URL
  try {
    parsed = new URL(origin)
  } catch {
    return false
  }
  // An opaque origin ("null") never equals one made of a scheme and a host.
  if (parsed.origin === ownOrigin(request)) return true
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
    /** The place under the connection caps this upgrade was admitted to. */
    connectionSlot: Slot | undefined
  }
}

/**
 * The client's address: the socket's peer, or the X-Forwarded-For chain as
 * far as TRUST_PROXY trusts it (Fastify's request.ip). An injected request
 * has no socket, hence no address.
 */
function clientAddress (request: FastifyRequest): string | undefined {
  return request.raw.socket === undefined ? undefined : request.ip
}

export default async function wsRoutes (fastify: FastifyInstance) {
  const { config, hub, stats, connections, auth } = fastify
  const shared: ConnectionOptions = {
    hub,
    stats,
    parse: createFrameParser(config.maxTextLength, config.maxDataBytes),
    batch: new WriteBatch(),
    sendQueueMaxBytes: config.sendQueueMaxBytes,
    frameRatePerSec: config.frameRatePerSec,
    frameBurst: config.frameBurst,
    rateLimitPerSec: config.rateLimitPerSec,
    rateLimitBurst: config.rateLimitBurst,
    signalRatePerSec: config.signalRatePerSec,
    signalBurst: config.signalBurst,
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
  fastify.decorateRequest('connectionSlot', undefined)

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
      const admission = connections.admit(clientAddress(request))
      if (!admission.ok) {
        return admission.refusal === 'node-full'
          ? reply.code(503).send({ error: 'Service Unavailable', message: 'this node is full (MAX_CONNECTIONS); connect to another node' })
          : reply.code(429).send({ error: 'Too Many Requests', message: 'too many connections from this address (MAX_CONNECTIONS_PER_IP)' })
      }
      const { slot } = admission
      const resolved = resolveName((request.query as Record<string, unknown>).name)
      if ('error' in resolved) {
        slot.release()
        return reply.code(400).send({ error: 'Bad Request', field: 'name', message: resolved.error })
      }
      request.chatName = resolved.name
      // The place is held until the socket closes, however it ends: an upgrade
      // abandoned before ws completes it never reaches wsHandler.
      const socket = request.raw.socket as Socket | undefined
      if (socket?.destroyed === true) slot.release()
      else socket?.once('close', slot.release)
      request.connectionSlot = slot
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
        connections.add(connection, request.connectionSlot)
        auth.users.add(connection)
        connection.listen(socket)
        connection.welcome(config.nodeId)
        return connection
      })
    }
  })

  const methodNotAllowed = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.code(405).header('Allow', 'GET').send({ error: 'Method Not Allowed', message: '/ws accepts only GET (a WebSocket upgrade)' })
  fastify.route({
    method: ['POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/ws',
    // Answered before the body is parsed: whatever its type (or size), the method is wrong, not the body.
    onRequest: methodNotAllowed,
    handler: methodNotAllowed
  })
}
