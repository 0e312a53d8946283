// Connection tokens (PROTOCOL §7): the authenticator (verifier and the back
// office's revocations, shared through Redis in a cluster), the index of
// users' open connections, and their metrics.
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import { AUTH_FAILURE_REASONS, Authenticator, type RevocationCheck } from '../lib/auth/authenticator.js'
import { ClusterRevocations, parseNotice, USER_DISCONNECT_CHANNEL } from '../lib/auth/cluster-revocations.js'
import { Revocations } from '../lib/auth/revocations.js'
import { TokenVerifier } from '../lib/auth/token-verifier.js'
import { UserConnections } from '../lib/auth/user-connections.js'
import { CloseCode } from '../lib/close-codes.js'
import { fitCloseReason } from '../lib/close-reason.js'
import type { Connection } from '../lib/connection.js'
import { ShardedSubscription } from '../lib/sharded-subscription.js'

export interface Auth {
  authenticator: Authenticator
  revocations: Revocations
  users: UserConnections<Connection>
  /**
   * Revokes `user`'s earlier tokens and closes its connections with 4003: on
   * this node at once, on the others through Redis. Rejects when Redis is away
   * (this node's connections are closed all the same).
   */
  disconnectUser (user: string, reason: string | undefined): Promise<void>
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
  const store = fastify.redis?.store
  const cluster = store === undefined ? undefined : new ClusterRevocations(store, revocations, config.authMaxTokenTtlS)
  const check: RevocationCheck = cluster ?? revocations
  const authenticator = new Authenticator({ verifier, revocations: check, required: config.authRequired })
  const users = new UserConnections<Connection>()
  const { counters } = authenticator

  /** Closes `user`'s connections on this node. */
  function closeLocal (user: string, reason: string | undefined): void {
    const closed = users.closeAll(user, CloseCode.UNAUTHORIZED, fitCloseReason(`disconnected${reason === undefined ? ' by the back office' : `: ${reason}`}`))
    counters.apiDisconnects += closed
  }

  /** Re-reads the revocations of this node's connected users and closes the connections they revoke. */
  async function applyMissedRevocations (cluster: ClusterRevocations): Promise<void> {
    const connected = [...users.users()]
    await cluster.reread(connected)
    const reason = fitCloseReason('disconnected by the back office (token revoked)')
    for (const user of connected) {
      counters.apiDisconnects += users.closeRevoked(user, (iat) => revocations.isRevoked(user, iat), CloseCode.UNAUTHORIZED, reason)
    }
  }

  async function disconnectUser (user: string, reason: string | undefined): Promise<void> {
    const notice = reason === undefined ? { user, at: Date.now() } : { user, at: Date.now(), reason }
    revocations.revoke(user, notice.at)
    closeLocal(user, reason)
    await cluster?.revoke(notice)
  }

  if (cluster !== undefined && fastify.redis !== undefined) {
    // A connection of its own (closed by the redis plugin): the broker's subscriber reads only room channels.
    const subscription = new ShardedSubscription(await fastify.redis.connect('users', 'subscriber'))
    const retryLater = (error: unknown) => fastify.log.warn({ err: error, role: 'users' }, 'could not re-read revocations after a reconnect; the next reconnect tries again')
    subscription.listen({
      message: (_channel, payload) => {
        const notice = parseNotice(payload)
        if (notice === undefined) return
        revocations.revoke(notice.user, notice.at)
        closeLocal(notice.user, notice.reason)
      },
      interrupted: () => {},
      // Notices published while the connection was down were lost: once the
      // channel is heard again, re-read what Redis holds for the users
      // connected here and close those whose token is now revoked.
      restored: () => { applyMissedRevocations(cluster).catch(retryLater) },
      restoreFailed: retryLater
    })
    await subscription.subscribe([USER_DISCONNECT_CHANNEL])
    fastify.addHook('onClose', async () => { subscription.stop() })
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
}, { name: 'auth', dependencies: ['config', 'broker', 'metrics'] })
