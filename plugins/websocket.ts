// WebSocket transport: @fastify/websocket with the contract's read limit, and
// the registry of open connections (heartbeat, close-all, shutdown drain).
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { Connection } from '../lib/connection.js'
import { ConnectionRegistry } from '../lib/connection-registry.js'
import { DRAIN_TICK_MS } from '../lib/limits.js'
import { chooseProtocol } from '../lib/auth/offered-token.js'

declare module 'fastify' {
  interface FastifyInstance {
    connections: ConnectionRegistry<Connection>
  }
}

export default fp(async function websocketPlugin (fastify) {
  const { config, stats } = fastify
  const connections = new ConnectionRegistry<Connection>({
    pingIntervalMs: config.pingIntervalMs,
    shutdownGraceMs: config.shutdownGraceMs,
    drainTickMs: DRAIN_TICK_MS,
    maxConnections: config.maxConnections,
    maxConnectionsPerAddress: config.maxConnectionsPerIp,
    onHeartbeatTermination: () => { stats.heartbeatTerminations++ }
  })
  fastify.decorate('connections', connections)

  await fastify.register(websocket, {
    options: {
      maxPayload: config.maxPayloadBytes,
      // Compression costs CPU per member on fan-out; chat frames are small.
      perMessageDeflate: false,
      // Answers `chat`; a `bearer.<token>` offer is read by routes/ws.ts, never echoed.
      handleProtocols: chooseProtocol
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
    // After a drain nobody is left; without one (tests), 1001 tells clients
    // to reconnect elsewhere and resume.
    preClose (done) {
      connections.closeAll()
      fastify.websocketServer.close()
      done()
    }
  })

  connections.startHeartbeat()
  fastify.addHook('onClose', async () => connections.stopHeartbeat())
}, { name: 'websocket', dependencies: ['config', 'stats'] })
