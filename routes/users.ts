// Back-office HTTP API on users: POST /users/:id/disconnect closes every
// connection of a user with 4003 and revokes its earlier tokens (PROTOCOL §4, §7).
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyError, FastifyInstance } from 'fastify'
import { USER_ID_MAX_LENGTH } from '../lib/auth/identity.js'
import { DISCONNECT_BODY_LIMIT_BYTES, DisconnectBody } from '../lib/http-schemas.js'
import { codePointLength } from '../lib/rules.js'

/**
 * Longest path parameter the router takes: a 128-code-point user id,
 * percent-encoded (up to 4 UTF-8 bytes of 3 characters each per code point).
 */
export const USER_ID_MAX_PARAM_LENGTH = USER_ID_MAX_LENGTH * 12

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

export default async function userRoutes (fastify: FastifyInstance) {
  const { config, auth } = fastify
  const expectedDigest = config.broadcastToken === undefined ? undefined : digest(config.broadcastToken)

  // Fastify's own refusals of a body, in the API's shape (lib/openapi.ts documents them).
  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: 'Payload Too Large', message: `the body must be at most ${DISCONNECT_BODY_LIMIT_BYTES} bytes` })
    }
    if (error.statusCode !== undefined && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ error: 'Bad Request', field: 'body', message: error.message })
    }
    request.log.error(error)
    return reply.code(500).send({ error: 'Internal Server Error', message: 'unexpected error' })
  })

  fastify.post<{ Params: { id: string } }>('/users/:id/disconnect', {
    bodyLimit: DISCONNECT_BODY_LIMIT_BYTES,
    // Authentication runs before the body is read: an anonymous caller learns nothing else.
    async onRequest (request, reply) {
      if (expectedDigest === undefined) {
        return reply.code(403).send({ error: 'Forbidden', message: 'the back-office API is disabled; set BROADCAST_TOKEN to a secret of at least 16 characters to enable it' })
      }
      const header = request.headers.authorization ?? ''
      const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : ''
      if (!timingSafeEqual(digest(given), expectedDigest)) {
        return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: 'Unauthorized', message: 'expected Authorization: Bearer <BROADCAST_TOKEN>' })
      }
    }
  }, async (request, reply) => {
    const user = request.params.id
    if (user.length === 0 || codePointLength(user) > USER_ID_MAX_LENGTH) {
      return reply.code(400).send({ error: 'Bad Request', field: 'id', message: `expected a user id of 1-${USER_ID_MAX_LENGTH} characters` })
    }
    const body = DisconnectBody.safeParse(request.body ?? {})
    if (!body.success) {
      const issue = body.error.issues[0]
      const field = String(issue?.path[0] ?? 'body')
      return reply.code(400).send({ error: 'Bad Request', field, message: issue?.message ?? 'invalid body' })
    }
    try {
      await auth.disconnectUser(user, body.data.reason)
    } catch {
      // This node's connections are closed; the others and the revocation could not be told.
      return reply.code(503).send({ error: 'Service Unavailable', message: 'Redis is unavailable: the user was disconnected on this node only and the revocation was not stored; retry' })
    }
    return reply.code(202).send({ user })
  })
}
