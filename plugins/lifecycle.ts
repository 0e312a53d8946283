// Graceful shutdown (PROTOCOL §5): readiness fails at once, upgrades are
// refused, connections are closed with 1001 in batches over the first half
// of the grace period so clients do not all reconnect at the same instant,
// and the HTTP listener keeps answering until the drain is over.
import fp from 'fastify-plugin'
import { setTimeout as sleep } from 'node:timers/promises'
import { CloseCode } from '../lib/close-codes.js'
import { DRAIN_TICK_MS } from '../lib/limits.js'

export interface Lifecycle {
  /** True from the moment shutdown begins. */
  readonly draining: boolean
  /** Closes every connection as the contract says; resolves when all are gone or the grace period ran out. */
  drain (): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

export default fp(async function lifecyclePlugin (fastify) {
  const { config, connections, log } = fastify
  let draining = false
  let drained: Promise<void> | undefined

  async function drain (): Promise<void> {
    draining = true
    const deadline = Date.now() + config.shutdownGraceMs
    const ticks = Math.max(1, Math.floor(config.shutdownGraceMs / 2 / DRAIN_TICK_MS))
    const perTick = Math.max(1, Math.ceil(connections.size / ticks))
    log.info({ connections: connections.size, ticks, perTick }, 'draining connections')
    for (let tick = 0; tick < ticks; tick++) {
      let closed = 0
      for (const connection of connections) {
        if (closed === perTick) break
        if (connection.isClosing) continue
        connection.close(CloseCode.GOING_AWAY, 'server shutting down')
        closed++
      }
      if (closed === 0) break
      if (tick < ticks - 1) await sleep(DRAIN_TICK_MS)
    }
    // Close handshakes finish by themselves; whoever is left at the deadline is cut off.
    while (connections.size > 0 && Date.now() < deadline) await sleep(DRAIN_TICK_MS / 2)
    for (const connection of connections) connection.terminate()
    log.info('drain complete')
  }

  fastify.decorate('lifecycle', {
    get draining () {
      return draining
    },
    drain () {
      drained ??= drain()
      return drained
    }
  })
}, { name: 'lifecycle', dependencies: ['config', 'websocket'] })
