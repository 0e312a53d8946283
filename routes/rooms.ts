// Back-office HTTP API: POST /rooms/:id/broadcast and GET /rooms/:id/messages,
// both behind the bearer token.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { BrokerTimeoutError, BrokerUnavailableError } from '../lib/broker.js'
import { ROOM_PATTERN, ROOM_RULE, type JsonObject, type MessageFrame, type StoredMessage } from '../lib/frames.js'
import { createBroadcastBody, HistoryQuery, IDEMPOTENCY_KEY } from '../lib/http-schemas.js'
import { BROADCAST_BODY_LIMIT_BYTES, HISTORY_API_DEFAULT_LIMIT } from '../lib/limits.js'
import type { BroadcastResult } from '../plugins/broker.js'

/** Every message posted here is marked as the back office's (`api: true`), whatever its `from`. */
const API_ORIGIN = { api: true } as const

/** An HTTP 400 naming the field at fault. */
class FieldError extends Error {
  constructor (readonly field: string, message: string) {
    super(message)
  }
}

/** Tokens are hashed to one length first, so comparing them takes constant time. */
function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** A stored message as the history API shows it: the fields of a `message` frame. */
type PublicMessage = Omit<MessageFrame, 'type'>

/** The `:id` of both routes. */
interface RoomParams {
  id: string
}

function publicMessage ({ room, id, from, text, ts, user, api, data }: StoredMessage): PublicMessage {
  const message: PublicMessage = { room, id, from, text, ts }
  if (user !== undefined) message.user = user
  if (api !== undefined) message.api = api
  // Stored as its JSON encoding; the answer carries the object, encoded once more by the reply.
  if (data !== undefined) message.data = JSON.parse(data) as JsonObject
  return message
}

export default async function roomRoutes (fastify: FastifyInstance) {
  const { config, hub, broker, idempotency } = fastify
  const token = config.broadcastToken
  const expectedDigest = token === undefined ? undefined : digest(token)

  const BroadcastBody = createBroadcastBody(config.maxTextLength, config.maxDataBytes)

  // Authentication runs before the body is read: an anonymous caller learns nothing else.
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (expectedDigest === undefined) {
      return reply.code(403).send({
        error: 'Forbidden',
        message: 'the broadcast and history API is disabled; set BROADCAST_TOKEN to a secret of at least 16 characters to enable it'
      })
    }
    const header = request.headers.authorization
    const given = header === undefined ? undefined : /^bearer +(.+)$/i.exec(header)?.[1]
    if (given === undefined || !timingSafeEqual(digest(given), expectedDigest)) {
      return reply.code(401).header('WWW-Authenticate', 'Bearer').send({
        error: 'Unauthorized',
        message: given === undefined ? 'missing "Authorization: Bearer <token>" header' : 'wrong token'
      })
    }
  })

  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof FieldError) {
      return reply.code(400).send({ error: 'Bad Request', field: error.field, message: error.message })
    }
    if (error instanceof BrokerUnavailableError) {
      return reply.code(503).send({ error: 'Service Unavailable', message: error.message })
    }
    // Maybe published: a retry with the same Idempotency-Key publishes it at most once (PROTOCOL §4).
    if (error instanceof BrokerTimeoutError) {
      return reply.code(503).send({ error: 'Service Unavailable', message: error.message, outcome: 'unknown' })
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: 'Payload Too Large', message: `the body must be at most ${BROADCAST_BODY_LIMIT_BYTES} bytes` })
    }
    if (error.statusCode !== undefined && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ error: 'Bad Request', field: 'body', message: error.message })
    }
    request.log.error(error)
    return reply.code(500).send({ error: 'Internal Server Error', message: 'unexpected error' })
  })

  function roomParam (params: RoomParams): string {
    if (!ROOM_PATTERN.test(params.id)) throw new FieldError('room', `room id must be ${ROOM_RULE}`)
    return params.id
  }

  function fieldOf (error: z.ZodError, fallback: string): FieldError {
    const issue = error.issues[0]
    const field = issue?.path.length ? issue.path.join('.') : fallback
    const message = issue?.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue?.message ?? 'invalid'
    return new FieldError(field, message)
  }

  fastify.post<{ Params: RoomParams }>('/rooms/:id/broadcast', { bodyLimit: BROADCAST_BODY_LIMIT_BYTES }, async (request, reply) => {
    const room = roomParam(request.params)
    const key = request.headers['idempotency-key']
    if (key !== undefined && (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))) {
      throw new FieldError('Idempotency-Key', 'Idempotency-Key must be 1-128 printable ASCII characters')
    }
    // Validation is part of the work: a repeat of a stored key gets the first
    // answer whatever its own body says, and a first call that fails stores
    // nothing. The key goes with the message: in cluster mode the broker
    // records it in the same atomic step (IdempotencyStore).
    const work = async (): Promise<BroadcastResult> => {
      const body = BroadcastBody.safeParse(request.body ?? undefined)
      if (!body.success) throw fieldOf(body.error, 'body')
      const { from, text, data } = body.data
      const message = await hub.publish(room, from ?? 'system', text, {
        ...API_ORIGIN, idempotencyKey: key, ...(data === undefined ? {} : { data: JSON.stringify(data) })
      })
      return { id: message.id, room, ts: message.ts }
    }
    const result = key === undefined ? await work() : await idempotency.run(room, key, work)
    return reply.code(202).send(result)
  })

  fastify.get<{ Params: RoomParams }>('/rooms/:id/messages', async (request) => {
    const room = roomParam(request.params)
    const query = HistoryQuery.safeParse(request.query)
    if (!query.success) throw fieldOf(query.error, 'query')
    const result = await broker.read(room, { since: query.data.since, limit: query.data.limit ?? HISTORY_API_DEFAULT_LIMIT })
    return { messages: result.messages.map(publicMessage), recovered: result.recovered }
  })
}
