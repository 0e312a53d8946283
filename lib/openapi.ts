// The OpenAPI 3.1 description of the HTTP API (PROTOCOL §4), built from the
// zod schemas the routes validate with and answer in; served as GET /openapi.json.
import { z } from 'zod'
import { RoomId } from './frames.js'
import {
  BroadcastAccepted, createBroadcastBody, DISCONNECT_BODY_LIMIT_BYTES, DisconnectAccepted, DisconnectBody, FieldError, HistoryPage,
  HistoryQuery, HttpError, IdempotencyKey, NotReady, OutcomeUnknown, PageConfig, Status, UserIdParam
} from './http-schemas.js'
import { BROADCAST_BODY_LIMIT_BYTES } from './limits.js'

/** The version of the HTTP contract this document describes, not of the package. */
export const OPENAPI_API_VERSION = '1.0.0'

type JsonSchema = Record<string, unknown>

export interface OpenApiOptions {
  /** MAX_TEXT_LENGTH: the broadcast's `text` rule depends on it. */
  maxTextLength: number
  /** MAX_DATA_BYTES: the bound of the broadcast's `data`. */
  maxDataBytes: number
}

/** JSON Schema 2020-12, OpenAPI 3.1's own dialect; `io` picks a request's side of a transform. */
function jsonSchema (schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-2020-12' })
  return rest
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })

function json (description: string, schema: string, headers?: Record<string, { description: string, schema: JsonSchema }>) {
  return { description, ...(headers === undefined ? {} : { headers }), content: { 'application/json': { schema: ref(schema) } } }
}

/** Fastify's own answer to a path nothing serves. */
function notFound (description: string) {
  return json(description, 'NotFound')
}

function error (description: string) {
  return json(description, 'HttpError')
}

/** A parameter; the schema's description becomes the parameter's. */
function parameter (name: string, where: 'path' | 'query' | 'header', required: boolean, { description, ...schema }: JsonSchema) {
  return { name, in: where, required, ...(description === undefined ? {} : { description }), schema }
}

/** Query parameters from the object schema a route parses its query with. */
function queryParameters (schema: z.ZodType) {
  const { properties = {}, required = [] } = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>, required?: string[] }
  return Object.entries(properties).map(([name, property]) => parameter(name, 'query', required.includes(name), property))
}

const roomParameter = parameter('id', 'path', true, { description: 'The room id.', ...jsonSchema(RoomId, 'input') })

const BEARER = [{ broadcastToken: [] }]

/** The answers every back-office route shares: auth, the disabled API, validation, the unexpected. */
const apiErrors = {
  400: json('Invalid room id, user id, body, query or header: `field` names it.', 'FieldError'),
  401: json('Missing or wrong bearer token.', 'HttpError', {
    'WWW-Authenticate': { description: 'Always `Bearer`.', schema: { const: 'Bearer' } }
  }),
  403: error('The API is disabled: no BROADCAST_TOKEN is configured. The message says how to enable it.'),
  500: error('An unexpected error on the server.')
}

export function buildOpenApiDocument ({ maxTextLength, maxDataBytes }: OpenApiOptions) {
  const schemas: Record<string, JsonSchema> = {
    Status: jsonSchema(Status, 'output'),
    NotReady: jsonSchema(NotReady, 'output'),
    BroadcastBody: jsonSchema(createBroadcastBody(maxTextLength, maxDataBytes), 'input'),
    BroadcastAccepted: jsonSchema(BroadcastAccepted, 'output'),
    HistoryPage: jsonSchema(HistoryPage, 'output'),
    DisconnectBody: jsonSchema(DisconnectBody, 'input'),
    DisconnectAccepted: jsonSchema(DisconnectAccepted, 'output'),
    PageConfig: jsonSchema(PageConfig, 'output'),
    HttpError: jsonSchema(HttpError, 'output'),
    FieldError: jsonSchema(FieldError, 'output'),
    OutcomeUnknown: jsonSchema(OutcomeUnknown, 'output'),
    // Fastify's own answer to a path nothing serves.
    NotFound: {
      type: 'object',
      properties: { statusCode: { const: 404 }, error: { type: 'string' }, message: { type: 'string' } },
      required: ['statusCode', 'error', 'message'],
      additionalProperties: false
    }
  }

  const text = (description: string, type: string) => ({ description, content: { [type]: { schema: { type: 'string' } } } })
  const upgradeRefused = (description: string) => error(`${description} Refused before the upgrade.`)

  return {
    openapi: '3.1.0',
    info: {
      title: 'Chat service HTTP API',
      version: OPENAPI_API_VERSION,
      description: 'Health probes, metrics, the chat page, and the back-office API (broadcast to a room, read its history, disconnect a user). ' +
        'The WebSocket protocol behind GET /ws is described in docs/asyncapi.json.'
    },
    paths: {
      '/': {
        get: {
          operationId: 'getPage',
          summary: 'The chat page (its assets are under /{asset})',
          responses: { 200: text('The chat page.', 'text/html') }
        }
      },
      '/{asset}': {
        get: {
          operationId: 'getAsset',
          summary: 'A static asset of the chat page (scripts, styles, icon)',
          parameters: [{ name: 'asset', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            200: { description: 'The file, with its own content type.', content: { '*/*': { schema: {} } } },
            404: notFound('No such file.')
          }
        }
      },
      '/health/live': {
        get: {
          operationId: 'getLive',
          summary: 'Liveness: 200 while the process runs',
          responses: { 200: json('The process runs.', 'Status') }
        }
      },
      '/health/ready': {
        get: {
          operationId: 'getReady',
          summary: 'Readiness: 200 while the node can serve',
          responses: {
            200: json('The node can serve.', 'Status'),
            503: json('The node cannot serve (the failing check is named), or it is shutting down (check "shutdown").', 'NotReady')
          }
        }
      },
      '/rooms/{id}/broadcast': {
        post: {
          operationId: 'broadcast',
          summary: 'Post a message to a room',
          description: 'Every member of the room, on every node, receives it as a `message` frame.',
          security: BEARER,
          parameters: [
            roomParameter,
            parameter('Idempotency-Key', 'header', false, jsonSchema(IdempotencyKey, 'input'))
          ],
          requestBody: { required: true, content: { 'application/json': { schema: ref('BroadcastBody') } } },
          responses: {
            202: json('Stored and published (or a repeat of an Idempotency-Key: the first call\'s answer).', 'BroadcastAccepted'),
            ...apiErrors,
            413: error(`The body is larger than ${BROADCAST_BODY_LIMIT_BYTES} bytes.`),
            415: json('The body is neither JSON nor text (field "body").', 'FieldError'),
            503: {
              description: 'The broker cannot take the message. Without `outcome`, nothing was published: retry. ' +
                'With `"outcome": "unknown"` it may have been: retry with the same Idempotency-Key.',
              content: { 'application/json': { schema: { anyOf: [ref('HttpError'), ref('OutcomeUnknown')] } } }
            }
          }
        }
      },
      '/rooms/{id}/messages': {
        get: {
          operationId: 'getHistory',
          summary: 'Read a room\'s history',
          description: 'With `since`, the first `limit` messages after it; without, the most recent `limit`. Oldest first.',
          security: BEARER,
          parameters: [roomParameter, ...queryParameters(HistoryQuery)],
          responses: {
            200: json('The messages.', 'HistoryPage'),
            ...apiErrors,
            503: error('The store cannot be read right now.')
          }
        }
      },
      '/users/{id}/disconnect': {
        post: {
          operationId: 'disconnectUser',
          summary: 'Disconnect a user and revoke its earlier tokens',
          description: 'Closes every connection of the user with 4003, on every node (in cluster mode through Redis), and refuses its tokens ' +
            'issued up to now (or without `iat`) for AUTH_MAX_TOKEN_TTL_S, on connect and on refresh.',
          security: BEARER,
          parameters: [parameter('id', 'path', true, jsonSchema(UserIdParam, 'input'))],
          requestBody: { required: false, content: { 'application/json': { schema: ref('DisconnectBody') } } },
          responses: {
            202: json('The user\'s connections on this node are closed and the revocation is stored and announced.', 'DisconnectAccepted'),
            ...apiErrors,
            413: error(`The body is larger than ${DISCONNECT_BODY_LIMIT_BYTES} bytes.`),
            415: json('The body is not JSON (field "body").', 'FieldError'),
            503: error('Redis is unavailable: the user was disconnected on this node only and the revocation was not stored; retry.')
          }
        }
      },
      '/metrics': {
        get: {
          operationId: 'getMetrics',
          summary: 'Prometheus metrics',
          description: 'On INTERNAL_PORT only when that is set (404 on the public port).',
          responses: {
            200: text('Prometheus text exposition format.', 'text/plain'),
            404: notFound('Asked on the public port while INTERNAL_PORT is set.')
          }
        }
      },
      '/config.json': {
        get: {
          operationId: 'getPageConfig',
          summary: 'The limits the chat page checks input against',
          responses: { 200: json('The limits, from the server\'s own rules and configuration.', 'PageConfig') }
        }
      },
      '/openapi.json': {
        get: {
          operationId: 'getOpenApi',
          summary: 'This document',
          responses: { 200: { description: 'The OpenAPI 3.1 document.', content: { 'application/json': { schema: { type: 'object' } } } } }
        }
      },
      '/ws': {
        get: {
          operationId: 'connect',
          summary: 'Open a WebSocket (RFC 6455)',
          description: 'The frames are described in docs/asyncapi.json. Checks, in this order: shutting down (503), origin (403), ' +
            'node full (503), per-address cap (429), `name` (400). A connection token goes in the `bearer.<token>` subprotocol ' +
            '(offered with `chat`; the server answers `chat`) or the `token` query parameter; it is checked after the upgrade, ' +
            'and a refused one closes the WebSocket at once: 4001 expired, 4003 invalid, revoked or missing when required, 1013 key set unreachable.',
          parameters: [{
            name: 'name',
            in: 'query',
            required: false,
            description: 'Display name: 1-32 characters after trimming, no control or format characters. Absent: the server assigns `guest-XXXX`.',
            schema: { type: 'string' }
          }, {
            name: 'token',
            in: 'query',
            required: false,
            description: 'A connection token (JWT), for clients that cannot set the subprotocol; never logged. With a token, `name` is ignored.',
            schema: { type: 'string' }
          }],
          responses: {
            101: { description: 'Switching Protocols: the WebSocket is open; the server sends `welcome` first.' },
            400: json('Invalid `name` (field "name"). Refused before the upgrade.', 'FieldError'),
            403: upgradeRefused('A browser Origin that is neither the request\'s own nor in ALLOWED_ORIGINS.'),
            426: json('A plain GET without the upgrade headers.', 'HttpError', {
              Upgrade: { description: 'Always `websocket`.', schema: { const: 'websocket' } }
            }),
            429: upgradeRefused('This client address holds MAX_CONNECTIONS_PER_IP connections already.'),
            503: upgradeRefused('The node is shutting down (connect to another node) or holds MAX_CONNECTIONS.')
          }
        },
        ...Object.fromEntries(['post', 'put', 'patch', 'delete'].map((method) => [method, {
          operationId: `ws${method[0]?.toUpperCase()}${method.slice(1)}`,
          summary: 'Not allowed: /ws accepts only GET',
          responses: {
            405: json('Method Not Allowed.', 'HttpError', { Allow: { description: 'Always `GET`.', schema: { const: 'GET' } } })
          }
        }]))
      }
    },
    components: {
      schemas,
      securitySchemes: {
        broadcastToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'BROADCAST_TOKEN, compared in constant time. Without one configured, the API answers 403.'
        }
      }
    }
  }
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>
