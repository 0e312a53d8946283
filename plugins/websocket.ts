// WebSocket transport: @fastify/websocket with the contract's read limit,
// the set of open connections, and one heartbeat timer for all of them.
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { Connection } from '../lib/connection.js'
import { CloseCode } from '../lib/close-codes.js'
import { startHeartbeat } from '../lib/heartbeat.js'

declare module 'fastify' {
  interface FastifyInstance {
    connections: Set<Connection>
  }
}

export default fp(async function websocketPlugin (fastify) {
  const { config, stats } = fastify
  const connections = new Set<Connection>()
  fastify.decorate('connections', connections)

  await fastify.register(websocket, {
    options: {
      maxPayload: config.maxPayloadBytes,
      // Compression costs CPU per member on fan-out; chat frames are small.
      perMessageDeflate: false
    },
    // Protocol errors (frame too large → 1009, bad UTF-8 → 1007…) are the
    // client's: ws has already sent the close frame, so note it and let the
    // close finish rather than logging a stack trace per bad client.
    errorHandler (error, socket, request) {
      const code = (error as { code?: unknown }).code
      if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
        request.log.info({ code, reason: error.message }, 'WebSocket protocol error from client')
        return
      }
      request.log.error({ err: error }, 'WebSocket error')
      socket.terminate()
    },
    // Closing with 1001 tells clients to reconnect elsewhere and resume.
    preClose (done) {
      for (const connection of connections) connection.close(CloseCode.GOING_AWAY, 'server shutting down')
      fastify.websocketServer.close()
      done()
    }
  })

  const stopHeartbeat = startHeartbeat(connections, config.pingIntervalMs, () => {
    stats.heartbeatTerminations++
  })
  fastify.addHook('onClose', async () => stopHeartbeat())
}, { name: 'websocket', dependencies: ['config', 'hub'] })
