// The AsyncAPI 3.0 description of the WebSocket protocol (PROTOCOL §1-§3),
// generated from the zod frame schemas of lib/frames.ts into docs/asyncapi.json.
// Run `npm run docs:asyncapi` after changing a frame; test/docs/asyncapi.test.ts fails until then.
import { writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { z } from 'zod'
import { CloseCode } from '../lib/close-codes.js'
import { loadConfig } from '../lib/config.js'
import {
  AckFrame, createFrameSchemas, encodeAck, encodeError, encodeJoined, encodeLeft, encodeMessage, encodePresence, encodeSignal, encodeWelcome,
  ErrorFrame, EVENT_RULE, JoinedFrame, LeftFrame, MessageFrame, NAME_MAX_LENGTH, PresenceFrame, RelayedSignalFrame, WelcomeFrame, type ErrorCode
} from '../lib/frames.js'

/** The version of the WebSocket contract this document describes, not of the package. */
export const ASYNCAPI_API_VERSION = '1.0.0'

export const ASYNCAPI_PATH = fileURLToPath(new URL('../docs/asyncapi.json', import.meta.url))

/** What each error code tells a client; a new ErrorCode does not compile until it is described here. */
const ERROR_CODES: Record<ErrorCode, string> = {
  invalid_frame: 'Invalid JSON, unknown `type`, a missing, wrong or extra field; `message` says what. The connection stays open.',
  not_joined: '`send`, `signal` or `leave` for a room the client has not joined.',
  rate_limited: 'Over a rate limit (frames of any kind, `send` frames, or `signal` frames); after 100 in a row the connection is closed with 1008.',
  too_many_rooms: 'The connection is in MAX_ROOMS_PER_CONNECTION rooms already: leave one first.',
  unavailable: 'The broker cannot take the message right now: nothing was published, the client may retry.',
  timeout: 'The store did not answer in time: the message may or may not have been published; if it was, it arrives like any other.',
  token_invalid: 'An `auth` frame\'s token was refused (another `sub`, expired, revoked, bad), or the connection is a guest\'s: the connection keeps its current token.',
  forbidden: 'The room\'s policy or the token\'s grants do not allow this `join`, `send` or `signal` (PROTOCOL §8); nothing else changed and the connection stays open.'
}

/**
 * Close codes the server sends, from lib/close-codes.ts, and the two the `ws`
 * library sends on its own (1007, 1009); a new CloseCode does not compile until it is described here.
 */
const CLOSE_CODES: Record<CloseCode | 1007 | 1009, string> = {
  [CloseCode.GOING_AWAY]: 'Server shutting down: reconnect (to another node) and resume with `since`.',
  [CloseCode.UNSUPPORTED_DATA]: 'A binary frame: every client frame must be a text frame.',
  1007: 'A text frame that is not valid UTF-8.',
  [CloseCode.POLICY]: 'Repeated rate-limit abuse: do not reconnect at once.',
  1009: 'A frame larger than MAX_PAYLOAD_BYTES.',
  [CloseCode.INTERNAL_ERROR]: 'An internal error on the server.',
  [CloseCode.TRY_AGAIN_LATER]: 'Try again later (slow consumer, or the token\'s key set could not be fetched): reconnect after a jittered backoff of at least 1 s and resume with `since`.',
  [CloseCode.TOKEN_EXPIRED]: 'The token expired (on connect, or not refreshed before `exp` plus the leeway): get a fresh token, reconnect and resume with `since`.',
  [CloseCode.UNAUTHORIZED]: 'Token missing (when required), invalid or revoked, or the user was disconnected by the back office: do not reconnect with the same token.'
}

type JsonSchema = Record<string, unknown>

/** AsyncAPI 3's default schema format is a superset of JSON Schema draft-07. */
function jsonSchema (schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-7' })
  return rest
}

interface MessageSpec {
  /** The frame's `type`, when the key differs: a server frame that shares its `type` with a client frame (`signal`). */
  type?: string
  schema: z.ZodType
  summary: string
  example: unknown
}

export function buildAsyncApiDocument ({ maxTextLength, maxDataBytes }: { maxTextLength: number, maxDataBytes: number }) {
  const { JoinFrame, LeaveFrame, SendFrame, SignalFrame, AuthFrame } = createFrameSchemas(maxTextLength, maxDataBytes)
  const stored = { room: 'lobby', id: '01J9Z3-42', seq: 42, from: 'alice', text: 'hello', ts: 1764600000000 }

  const clientMessages: Record<string, MessageSpec> = {
    join: { schema: JoinFrame, summary: 'Join a room; `since` is the id of the last message seen there, to resume.', example: { type: 'join', room: 'lobby', since: '01J9Z3-41' } },
    leave: { schema: LeaveFrame, summary: 'Leave a room.', example: { type: 'leave', room: 'lobby' } },
    send: {
      schema: SendFrame,
      summary: 'Post text, and optionally structured `data` (a JSON object), to a joined room; with `ref`, the server answers `ack`.',
      example: { type: 'send', room: 'lobby', text: 'hello', data: { kind: 'greeting', mentions: ['bob'] }, ref: 'r1' }
    },
    signal: {
      schema: SignalFrame,
      summary: `An ephemeral signal (\`event\`: ${EVENT_RULE}, e.g. \`typing\`) to the other members of a joined room, on every node: never stored, never replayed, not sent back to the sender, at most once. ` +
        'Limited by its own bucket (SIGNAL_RATE_PER_SEC / SIGNAL_BURST); with `ref`, the server answers `ack` (no `id`) once relayed.',
      example: { type: 'signal', room: 'lobby', event: 'typing', ref: 'r3' }
    },
    auth: {
      schema: AuthFrame,
      summary: 'Refresh the connection\'s token with a new one for the same `sub`; with `ref`, the server answers `ack` with the new `expiresIn`.',
      example: { type: 'auth', token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl', ref: 'r2' }
    }
  }
  // The examples are the real encoders' output.
  const serverMessages: Record<string, MessageSpec> = {
    welcome: {
      schema: WelcomeFrame,
      summary: 'Right after the upgrade; `user` and `expiresIn` for a connection with a token.',
      example: JSON.parse(encodeWelcome('c-7f3a', 'Alice', 'node-1', 'alice', 3600))
    },
    joined: { schema: JoinedFrame, summary: 'After a `join`: then the history, oldest first, then live messages.', example: JSON.parse(encodeJoined('lobby', ['alice', 'bob'], true)) },
    message: {
      schema: MessageFrame,
      summary: 'A message in a room the client is in; `user` when the sender had a verified token, `api` when posted through the HTTP API, `data` when the sender sent some.',
      example: JSON.parse(encodeMessage({ ...stored, user: 'alice', data: JSON.stringify({ kind: 'greeting', mentions: ['bob'] }) }))
    },
    relayedSignal: {
      type: 'signal',
      schema: RelayedSignalFrame,
      summary: 'Another member\'s `signal`; `user` when the sender had a verified token. Never stored or replayed: a client that was away missed it.',
      example: JSON.parse(encodeSignal('lobby', 'typing', 'Alice', 'alice'))
    },
    presence: { schema: PresenceFrame, summary: 'Others joined or left (batched).', example: JSON.parse(encodePresence('lobby', ['carol'], [])) },
    left: { schema: LeftFrame, summary: 'After a `leave`.', example: JSON.parse(encodeLeft('lobby')) },
    ack: { schema: AckFrame, summary: 'A `send` with `ref` was stored and published (`id`), a `signal` with `ref` relayed (no `id`), or an `auth` with `ref` accepted (`expiresIn`).', example: JSON.parse(encodeAck('r1', stored.id)) },
    error: {
      schema: ErrorFrame,
      summary: 'A client frame was refused. Codes: ' + Object.entries(ERROR_CODES).map(([code, meaning]) => `\`${code}\`: ${meaning}`).join(' '),
      example: JSON.parse(encodeError('not_joined', 'join room "lobby" before sending to it', 'r1'))
    }
  }

  const messages: Record<string, unknown> = {}
  const schemas: Record<string, JsonSchema> = {}
  for (const [side, specs, io] of [['client', clientMessages, 'input'], ['server', serverMessages, 'output']] as const) {
    for (const [key, { type, schema, summary, example }] of Object.entries(specs)) {
      const name = type ?? key
      const schemaName = `${key[0]?.toUpperCase()}${key.slice(1)}Frame`
      schemas[schemaName] = jsonSchema(schema, io)
      messages[key] = {
        name,
        title: `${name} (${side} → ${side === 'client' ? 'server' : 'client'})`,
        summary,
        contentType: 'application/json',
        payload: { $ref: `#/components/schemas/${schemaName}` },
        examples: [{ name, payload: example }]
      }
    }
  }

  const channelRef = { $ref: '#/channels/chat' }
  const messageRef = (name: string) => ({ $ref: `#/channels/chat/messages/${name}` })
  const replies: Record<string, string[]> = { join: ['joined', 'error'], leave: ['left', 'error'], send: ['ack', 'error'], signal: ['ack', 'error'], auth: ['ack', 'error'] }
  const operations: Record<string, unknown> = {}
  for (const name of Object.keys(clientMessages)) {
    operations[`receive${name[0]?.toUpperCase()}${name.slice(1)}`] = {
      action: 'receive',
      channel: channelRef,
      summary: clientMessages[name]?.summary,
      messages: [messageRef(name)],
      reply: { channel: channelRef, messages: (replies[name] ?? []).map(messageRef) }
    }
  }
  for (const name of Object.keys(serverMessages)) {
    operations[`send${name[0]?.toUpperCase()}${name.slice(1)}`] = {
      action: 'send',
      channel: channelRef,
      summary: serverMessages[name]?.summary,
      messages: [messageRef(name)]
    }
  }

  const closeCodes = Object.entries(CLOSE_CODES).map(([code, reason]) => ({ code: Number(code), reason }))
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Chat service WebSocket protocol',
      version: ASYNCAPI_API_VERSION,
      description: 'Rooms over one WebSocket per client. Every frame is a text frame holding one JSON object; `type` selects the frame. ' +
        'The operations are the server\'s: it receives client frames and sends server frames. ' +
        `Generated from lib/frames.ts with the default MAX_TEXT_LENGTH (${maxTextLength}) and MAX_DATA_BYTES (${maxDataBytes}) by \`npm run docs:asyncapi\`. ` +
        'The HTTP API, including the answers to a refused upgrade, is at GET /openapi.json.\n\n' +
        'Close codes:\n\n| code | reason |\n|---|---|\n' + closeCodes.map(({ code, reason }) => `| ${code} | ${reason} |`).join('\n')
    },
    defaultContentType: 'application/json',
    servers: {
      node: {
        host: '{host}',
        protocol: 'ws',
        description: 'Any node of the service (use wss behind TLS).',
        variables: { host: { default: 'localhost:3000', description: 'Host and port of the service.' } }
      }
    },
    channels: {
      chat: {
        address: '/ws',
        title: 'The connection',
        description: 'One WebSocket carries every room the client has joined.',
        messages: Object.fromEntries(Object.keys(messages).map((name) => [name, { $ref: `#/components/messages/${name}` }])),
        bindings: {
          ws: {
            method: 'GET',
            query: {
              type: 'object',
              properties: {
                name: {
                  type: 'string',
                  description: `Display name: 1-${NAME_MAX_LENGTH} characters after trimming, no control or format characters. Absent: the server assigns \`guest-XXXX\`. Ignored with a token.`
                },
                token: {
                  type: 'string',
                  description: 'A connection token (JWT), for clients that cannot offer the `bearer.<token>` subprotocol (preferred: `Sec-WebSocket-Protocol: chat, bearer.<token>`; the server answers `chat`).'
                }
              }
            },
            bindingVersion: '0.1.0'
          }
        },
        'x-close-codes': closeCodes
      }
    },
    operations,
    components: { messages, schemas }
  }
}

/** The document as committed: the contract's default MAX_TEXT_LENGTH and MAX_DATA_BYTES, two-space JSON. */
export function asyncApiJson (): string {
  const { maxTextLength, maxDataBytes } = loadConfig({ NODE_ID: 'asyncapi' })
  return JSON.stringify(buildAsyncApiDocument({ maxTextLength, maxDataBytes }), null, 2) + '\n'
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(ASYNCAPI_PATH, asyncApiJson())
  console.log(`wrote ${ASYNCAPI_PATH}`)
}
