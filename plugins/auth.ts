// Connection tokens (PROTOCOL §7): the authenticator (verifier and the back
// office's revocations), the index of users' open connections, and their metrics.
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import { AUTH_FAILURE_REASONS, Authenticator } from '../lib/auth/authenticator.js'
import { Revocations } from '../lib/auth/revocations.js'
import { TokenVerifier } from '../lib/auth/token-verifier.js'
import { UserConnections } from '../lib/auth/user-connections.js'
import { CloseCode } from '../lib/close-codes.js'
import { fitCloseReason } from '../lib/close-reason.js'
import type { Connection } from '../lib/connection.js'

export interface Auth {
  authenticator: Authenticator
  revocations: Revocations
  users: UserConnections<Connection>
  /** Revokes `user`'s earlier tokens and closes its connections on this node with 4003; returns how many were closed. */
  disconnectUser (user: string, reason: string | undefined, atMs?: number): number
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: Auth
  }
}

export default fp(async function authPlugin (fastify) {
  const { config, metrics } = fastify
  const verifier = new TokenVerifier({
    secret: config.authJwtSecret,
    jwksUrl: config.authJwksUrl,
    issuer: config.authIssuer,
    audience: config.authAudience,
    clockToleranceS: config.authClockToleranceS,
    maxTokenTtlS: config.authMaxTokenTtlS
  })
  const revocations = new Revocations({ maxTokenTtlS: config.authMaxTokenTtlS })
  const authenticator = new Authenticator({ verifier, revocations, required: config.authRequired })
  const users = new UserConnections<Connection>()
  const { counters } = authenticator

  function disconnectUser (user: string, reason: string | undefined, atMs = Date.now()): number {
    revocations.revoke(user, atMs)
    const closed = users.closeAll(user, CloseCode.UNAUTHORIZED, fitCloseReason(`disconnected${reason === undefined ? ' by the back office' : `: ${reason}`}`))
    counters.apiDisconnects += closed
    return closed
  }

  fastify.decorate('auth', { authenticator, revocations, users, disconnectUser })

  /** A counter that mirrors a plain number kept elsewhere (as plugins/metrics.ts does). */
  function mirror (name: string, help: string, read: () => number): void {
    let reported = 0
    const counter: Counter = new Counter({
      name,
      help,
      registers: [metrics],
      collect () {
        const value = read()
        counter.inc(value - reported)
        reported = value
      }
    })
  }
  const reportedFailures = new Map<string, number>()
  const failures: Counter<'reason'> = new Counter({
    name: 'chat_auth_failures_total',
    help: 'Connection tokens refused (on connect and on refresh), by reason; reason "unavailable" means the key set could not be fetched',
    labelNames: ['reason'],
    registers: [metrics],
    collect () {
      for (const reason of AUTH_FAILURE_REASONS) {
        const value = counters.failures[reason]
        failures.inc({ reason }, value - (reportedFailures.get(reason) ?? 0))
        reportedFailures.set(reason, value)
      }
    }
  })
  mirror('chat_auth_refreshes_total', 'Tokens refreshed over an open connection (accepted auth frames)', () => counters.refreshes)
  mirror('chat_api_disconnects_total', 'Connections closed by POST /users/:id/disconnect', () => counters.apiDisconnects)
}, { name: 'auth', dependencies: ['config', 'metrics'] })
