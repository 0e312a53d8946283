// WebSocket transport: @fastify/websocket with the contract's read limit,
// the set of open connections, and one heartbeat timer for all of them.
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { Connection } from '../lib/connection.js'
import { CloseCode } from '../lib/connection.js'
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
