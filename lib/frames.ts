// Client → server frames (validated with zod) and server → client frames
// (serialised by hand-picked shapes, once per message, never per member).
// The rules on rooms, names and text live in rules.ts and are re-exported here.
import { z } from 'zod'
import type { PagePolicy } from './policy.js'
import { checkName, codePointLength, NAME_MAX_LENGTH, NAME_PROBLEMS, ROOM_PATTERN, ROOM_RULE, textLengthAllowed, textRule } from './rules.js'

export * from './rules.js'

/** Longest `ref` a client may attach to a frame, in code points. */
export const REF_MAX_LENGTH = 64

/** A signal's `event` (PROTOCOL §2): a short lower-case word such as `typing`, safe to show and to switch on. */
export const EVENT_PATTERN = /^[a-z0-9_-]{1,32}$/
export const EVENT_RULE = '1-32 characters of a-z 0-9 _ -'

export const SignalEvent = z.string({ error: 'expected a string' }).regex(EVENT_PATTERN, `expected ${EVENT_RULE}`)
  .meta({ description: `What the signal means to the other members, e.g. \`typing\`: ${EVENT_RULE}.` })

export const RoomId = z.string({ error: 'expected a string' }).regex(ROOM_PATTERN, `expected ${ROOM_RULE}`)
export type RoomId = z.infer<typeof RoomId>

const Ref = z.string({ error: 'expected a string' })
  .refine((value) => codePointLength(value) <= REF_MAX_LENGTH, `expected at most ${REF_MAX_LENGTH} characters`)
  // JSON Schema counts code points too: the published documents carry the rule.
  .meta({ maxLength: REF_MAX_LENGTH, description: 'A client string echoed in the `ack` or `error` this frame causes.' })

/** Message text: a frame's `text` and a broadcast's `text` alike. */
export function createTextSchema (maxTextLength: number) {
  return z.string({ error: 'expected a string' })
    .refine((value) => textLengthAllowed(value, maxTextLength), `expected ${textRule(maxTextLength)}`)
    .meta({ minLength: 1, maxLength: maxTextLength, description: `${textRule(maxTextLength)} (Unicode code points), any Unicode.` })
}

/** Any value JSON can carry. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject
/** A JSON object: what a message's `data` is. */
export interface JsonObject { [key: string]: JsonValue }

/**
 * The size of a message's `data` as MAX_DATA_BYTES counts it: the UTF-8 bytes
 * of its compact JSON encoding (`encoded`, from JSON.stringify, which is also
 * what is stored and delivered). Counted here rather than with Buffer: the
 * page type-checks this file without Node's types. JSON.stringify escapes
 * lone surrogates, so every surrogate here is half of a 4-byte pair.
 */
export function dataBytes (encoded: string): number {
  let bytes = encoded.length
  for (let i = 0; i < encoded.length; i++) {
    const unit = encoded.charCodeAt(i)
    if (unit < 0x80) continue
    bytes += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2
  }
  return bytes
}

/** A JSON object (not an array, not null) whose compact encoding fits in `maxDataBytes`. */
function dataAllowed (value: unknown, maxDataBytes: number): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && dataBytes(JSON.stringify(value)) <= maxDataBytes
}

/**
 * Structured `data`: a frame's and a broadcast's alike. The value passes
 * through as it was parsed (no copy: a copy would lose a `__proto__` key);
 * refusals name what was sent and the bound.
 */
export function createDataSchema (maxDataBytes: number) {
  const schema = z.unknown().superRefine((value, ctx) => {
    if (Array.isArray(value)) {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON object, not an array' })
    } else if (typeof value !== 'object' || value === null) {
      ctx.addIssue({ code: 'custom', message: `expected a JSON object, not ${value === null ? 'null' : `a ${typeof value}`}` })
    } else {
      const size = dataBytes(JSON.stringify(value))
      if (size > maxDataBytes) {
        ctx.addIssue({ code: 'custom', message: `expected at most ${maxDataBytes} bytes (MAX_DATA_BYTES) of compact JSON, got ${size}` })
      }
    }
  }) as unknown as z.ZodType<JsonObject>
  return schema.meta({
    type: 'object',
    description: `Structured data for programs: a JSON object of at most ${maxDataBytes} bytes (MAX_DATA_BYTES), counted as the UTF-8 bytes of its compact JSON encoding. ` +
      'Stored and delivered as the same JSON value, re-encoded compactly.'
  })
}

/** A display name given as a field (a broadcast's `from`); the output is trimmed. */
export const DisplayName = z.string({ error: 'expected a string' }).transform((value, ctx) => {
  const checked = checkName(value)
  if (checked.ok) return checked.name
  ctx.addIssue({
    code: 'custom',
    message: checked.problem === 'length' ? `expected 1-${NAME_MAX_LENGTH} characters` : `expected a name that does ${NAME_PROBLEMS[checked.problem]}`
  })
  return z.NEVER
})

export function createFrameSchemas (maxTextLength: number, maxDataBytes: number) {
  const Text = createTextSchema(maxTextLength)
  const Data = createDataSchema(maxDataBytes)

  const JoinFrame = z.strictObject({
    type: z.literal('join'),
    room: RoomId,
    since: z.string({ error: 'expected a message id string' }).optional(),
    ref: Ref.optional()
  })
  const LeaveFrame = z.strictObject({ type: z.literal('leave'), room: RoomId, ref: Ref.optional() })
  const SendFrame = z.strictObject({ type: z.literal('send'), room: RoomId, text: Text, data: Data.optional(), ref: Ref.optional() })
  const SignalFrame = z.strictObject({ type: z.literal('signal'), room: RoomId, event: SignalEvent, ref: Ref.optional() })
  // The token's own checks (size first) are the verifier's; here only its shape.
  const AuthFrame = z.strictObject({ type: z.literal('auth'), token: z.string({ error: 'expected a string' }).min(1, 'expected a token'), ref: Ref.optional() })
  const ClientFrame = z.discriminatedUnion('type', [JoinFrame, LeaveFrame, SendFrame, SignalFrame, AuthFrame], {
    error: 'expected "type" to be one of "join", "leave", "send", "signal", "auth"'
  })
  return { JoinFrame, LeaveFrame, SendFrame, SignalFrame, AuthFrame, ClientFrame }
}

type Schemas = ReturnType<typeof createFrameSchemas>
export type JoinFrame = z.infer<Schemas['JoinFrame']>
export type LeaveFrame = z.infer<Schemas['LeaveFrame']>
export type SendFrame = z.infer<Schemas['SendFrame']>
export type SignalFrame = z.infer<Schemas['SignalFrame']>
export type AuthFrame = z.infer<Schemas['AuthFrame']>
export type ClientFrame = z.infer<Schemas['ClientFrame']>

export type ParseResult =
  | { ok: true, frame: ClientFrame }
  | { ok: false, message: string, ref?: string }

/** Builds the parser for one configuration; the schemas are made once, not per frame. */
export function createFrameParser (maxTextLength: number, maxDataBytes: number): (raw: string) => ParseResult {
  const { ClientFrame } = createFrameSchemas(maxTextLength, maxDataBytes)
  return function parseClientFrame (raw) {
    let data: unknown
    try {
      data = JSON.parse(raw)
    } catch {
      return { ok: false, message: 'frame is not valid JSON' }
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      return { ok: false, message: 'frame must be a JSON object' }
    }
    const send = validSend(data as Record<string, unknown>, maxTextLength, maxDataBytes)
    if (send !== undefined) return { ok: true, frame: send }
    const result = ClientFrame.safeParse(data)
    if (result.success) return { ok: true, frame: result.data }
    // Echo the ref when it is itself valid, so the client can match the error.
    const ref = (data as { ref?: unknown }).ref
    const echo = typeof ref === 'string' && codePointLength(ref) <= REF_MAX_LENGTH ? ref : undefined
    return { ok: false, message: describeIssues(result.error, data as Record<string, unknown>), ...(echo === undefined ? {} : { ref: echo }) }
  }
}

/**
 * The hot frame, checked by hand: a well-formed `send` passes here without
 * zod's allocations (6 % of the product's CPU per message in
 * `npm run bench:hot-path`). Anything else, valid or not, returns undefined
 * and goes to the zod schema, which stays the single source of the rules and
 * of the error messages; test/lib/frames.test.ts compares the two.
 */
function validSend (data: Record<string, unknown>, maxTextLength: number, maxDataBytes: number): SendFrame | undefined {
  if (data.type !== 'send') return undefined
  const { room, text, ref, data: payload } = data
  let keys = 3
  if (ref !== undefined) {
    if (typeof ref !== 'string' || codePointLength(ref) > REF_MAX_LENGTH) return undefined
    keys = 4
  }
  if (typeof room !== 'string' || !ROOM_PATTERN.test(room) || typeof text !== 'string') return undefined
  if (!textLengthAllowed(text, maxTextLength)) return undefined
  if (payload !== undefined) return withData(data, room, text, ref, payload, keys + 1, maxDataBytes)
  // Strict: no other field (a key present with the value undefined cannot come from JSON).
  if (Object.keys(data).length !== keys) return undefined
  return ref === undefined ? { type: 'send', room, text } : { type: 'send', room, text, ref }
}

/** The rest of validSend for a `send` with `data`, kept apart so the common frame's path stays as it was. */
function withData (data: Record<string, unknown>, room: string, text: string, ref: string | undefined, payload: unknown, keys: number, maxDataBytes: number): SendFrame | undefined {
  if (Object.keys(data).length !== keys || !dataAllowed(payload, maxDataBytes)) return undefined
  return ref === undefined ? { type: 'send', room, text, data: payload } : { type: 'send', room, text, data: payload, ref }
}

/** One readable sentence about what was wrong, for the client's developer. */
function describeIssues (error: z.ZodError, data: Record<string, unknown>): string {
  return error.issues.slice(0, 3).map((issue) => {
    if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
    const field = String(issue.path[0] ?? '')
    if (field === '') return issue.message
    if (!(field in data)) return `"${field}" is required`
    if (data[field] === null) return `"${field}" must be left out rather than sent as null`
    return `"${field}": ${issue.message}`
  }).join('; ')
}

// Server → client frames: each a zod schema and its type under one name. The
// encoders below write them by hand; the schemas are for the AsyncAPI document
// (lib/asyncapi.ts) and for the test that checks the encoders' output.

export interface StoredMessage {
  room: string
  id: string
  /** Position in the room's log; ids are opaque to clients, the hub orders by this. */
  seq: number
  from: string
  text: string
  ts: number
  /** The sender's user id, when the sender was authenticated (§7). */
  user?: string
  /** Posted through the HTTP API. */
  api?: true
  /**
   * The message's `data`, as its compact JSON encoding (JSON.stringify of the
   * object sent): encoded once on arrival, stored and written into frames as
   * it is, counted in bytes against the history's bounds like `text`.
   */
  data?: string
}

/** Who published a message, beyond its display name: a verified user, or the HTTP API. */
export interface Origin {
  user?: string | undefined
  api?: true | undefined
}

/** The policies as GET /config.json shows them. */
export interface PagePolicies {
  default: PagePolicy
  namespaces: Record<string, PagePolicy>
}

/** Without NAMESPACES_FILE: every room follows §8's default policy. */
const DEFAULT_PAGE_POLICIES: PagePolicies = {
  default: { join: 'anyone', send: 'members', presence: true, signals: true },
  namespaces: {}
}

/** Every `code` an `error` frame may carry (PROTOCOL §3). */
export const ErrorCode = z.enum(['invalid_frame', 'not_joined', 'rate_limited', 'too_many_rooms', 'unavailable', 'timeout', 'token_invalid', 'forbidden'])
export type ErrorCode = z.infer<typeof ErrorCode>

const Names = z.array(z.string())
const MessageId = z.string().meta({ description: 'Opaque, unique within its room and never reused.' })
const UserId = z.string().meta({ description: "The `sub` of the sender's verified connection token." })

export const WelcomeFrame = z.strictObject({
  type: z.literal('welcome'),
  id: z.string().meta({ description: "The connection's id." }),
  name: z.string().meta({ description: 'The display name the server settled on (e.g. `guest-1a2b`).' }),
  node: z.string().meta({ description: 'The node that holds the connection.' }),
  user: UserId.optional().meta({ description: "The user id from the connection's token; absent for a guest." }),
  expiresIn: z.number().int().optional().meta({ description: 'Whole seconds until the token expires; absent for a guest.' })
}).meta({ description: 'Sent once, right after the upgrade.' })
export type WelcomeFrame = z.infer<typeof WelcomeFrame>

export const JoinedFrame = z.strictObject({
  type: z.literal('joined'),
  room: z.string(),
  members: Names.meta({ description: 'Names in the room across all nodes, the joiner included; a name twice for two connections.' }),
  recovered: z.boolean().meta({ description: 'False when `since` was unknown and recent history was sent instead.' })
}).meta({ description: 'The answer to a `join`; history and live messages follow.' })
export type JoinedFrame = z.infer<typeof JoinedFrame>

/** The fields of a stored message as clients see them (no internal `seq`). */
export const MessageFields = z.strictObject({
  room: z.string(),
  id: MessageId,
  from: z.string().meta({ description: "Set by the server: the sender's display name, or the `from` of an HTTP broadcast." }),
  text: z.string(),
  ts: z.number().int().meta({ description: 'Milliseconds since the epoch, set by the server.' }),
  user: UserId.optional().meta({ description: "The sender's user id, when the sender was authenticated; trust this, never `from`." }),
  api: z.literal(true).optional().meta({ description: 'Posted through the HTTP API.' }),
  data: z.record(z.string(), z.unknown()).optional().meta({
    description: 'The JSON object sent with the message (`send` or broadcast `data`), re-encoded compactly; absent when none was sent.'
  })
})

export const MessageFrame = z.strictObject({
  type: z.literal('message'),
  ...MessageFields.shape
}).meta({ description: 'A message in a room the client is in, in the same order for every member.' })
export type MessageFrame = z.infer<typeof MessageFrame>

export const PresenceFrame = z.strictObject({
  type: z.literal('presence'),
  room: z.string(),
  joined: Names,
  left: Names
}).meta({ description: 'Others joined or left the room; a client is never told of its own join.' })
export type PresenceFrame = z.infer<typeof PresenceFrame>

export const LeftFrame = z.strictObject({
  type: z.literal('left'),
  room: z.string()
}).meta({ description: 'The answer to a `leave`.' })
export type LeftFrame = z.infer<typeof LeftFrame>

export const AckFrame = z.strictObject({
  type: z.literal('ack'),
  ref: z.string().meta({ description: 'The `ref` of the `send`, `signal` or `auth` it answers.' }),
  id: MessageId.optional().meta({ description: "The stored message's id (an acknowledged `send`)." }),
  expiresIn: z.number().int().optional().meta({ description: 'Whole seconds until the new token expires (an accepted `auth`).' })
}).meta({ description: 'A `send` with a `ref` was stored and published, a `signal` with a `ref` was relayed (no `id`), or an `auth` with a `ref` was accepted.' })
export type AckFrame = z.infer<typeof AckFrame>

export const ErrorFrame = z.strictObject({
  type: z.literal('error'),
  code: ErrorCode,
  message: z.string().meta({ description: "Human-readable reason, for the client's developer." }),
  ref: z.string().optional().meta({ description: 'The `ref` of the frame at fault, when it had a valid one.' })
}).meta({ description: 'A client frame was refused; the connection stays open.' })
export type ErrorFrame = z.infer<typeof ErrorFrame>

/** Named apart from the client's `signal` frame, which has the same `type`. */
export const RelayedSignalFrame = z.strictObject({
  type: z.literal('signal'),
  room: z.string(),
  event: z.string().meta({ description: `The sender's event, ${EVENT_RULE} (e.g. \`typing\`).` }),
  from: z.string().meta({ description: "Set by the server: the sender's display name." }),
  user: UserId.optional().meta({ description: "The sender's user id, when the sender was authenticated; trust this, never `from`." })
}).meta({ description: "Another member's signal: never stored, never replayed, never sent back to its sender; at most once." })
export type RelayedSignalFrame = z.infer<typeof RelayedSignalFrame>

export const ServerFrame = z.discriminatedUnion('type', [WelcomeFrame, JoinedFrame, MessageFrame, RelayedSignalFrame, PresenceFrame, LeftFrame, AckFrame, ErrorFrame])
/** Every frame the server sends; `public/chat-client.js` imports this type. */
export type ServerFrame = z.infer<typeof ServerFrame>

function encode (frame: ServerFrame): string {
  return JSON.stringify(frame)
}

export function encodeWelcome (id: string, name: string, node: string, user?: string, expiresIn?: number): string {
  return encode(user === undefined ? { type: 'welcome', id, name, node } : { type: 'welcome', id, name, node, user, expiresIn })
}

export function encodeJoined (room: string, members: string[], recovered: boolean): string {
  return encode({ type: 'joined', room, members, recovered })
}

/**
 * The one frame built per message: by hand, byte for byte the JSON of the
 * MessageFrame it stands for (test/lib/frames.test.ts compares them).
 */
export function encodeMessage (message: StoredMessage): string {
  // A guest's message (the common case) is the bytes it always was: one template, no extra field.
  return `{"type":"message","room":${JSON.stringify(message.room)},"id":${JSON.stringify(message.id)},"from":${JSON.stringify(message.from)},"text":${JSON.stringify(message.text)},"ts":${JSON.stringify(message.ts)}${message.user === undefined && message.api === undefined ? '' : originFields(message)}${message.data === undefined ? '' : `,"data":${message.data}`}}`
}

/** `,"user":…` and `,"api":true`, for a message from a verified user or the HTTP API. */
function originFields ({ user, api }: StoredMessage): string {
  return `${user === undefined ? '' : `,"user":${JSON.stringify(user)}`}${api === undefined ? '' : ',"api":true'}`
}

/** Built once per signal and shared by every member it reaches. */
export function encodeSignal (room: string, event: string, from: string, user?: string): string {
  return encode(user === undefined ? { type: 'signal', room, event, from } : { type: 'signal', room, event, from, user })
}

export function encodePresence (room: string, joined: string[], left: string[]): string {
  return encode({ type: 'presence', room, joined, left })
}

export function encodeLeft (room: string): string {
  return encode({ type: 'left', room })
}

export function encodeAck (ref: string, id: string): string {
  return encode({ type: 'ack', ref, id })
}

/** A relayed `signal`'s ack: no id, nothing was stored. */
export function encodeSignalAck (ref: string): string {
  return encode({ type: 'ack', ref })
}

export function encodeAuthAck (ref: string, expiresIn: number): string {
  return encode({ type: 'ack', ref, expiresIn })
}

export function encodeError (code: ErrorCode, message: string, ref?: string): string {
  return encode(ref === undefined ? { type: 'error', code, message } : { type: 'error', code, message, ref })
}

/** What the chat page needs to check input as the server will; served as GET /config.json. */
export interface PageConfig {
  /** MAX_TEXT_LENGTH, in code points. */
  maxTextLength: number
  /** In code points, after trimming. */
  maxNameLength: number
  /** ROOM_PATTERN's source: anchored, valid with no flag, `u` or `v`. */
  roomPattern: string
  /** ROOM_PATTERN in words. */
  roomRule: string
  /** PAGE_TOKEN_URL: where the page fetches its connection token (with credentials) before each connect and refresh. */
  tokenUrl?: string
  /** AUTH_REQUIRED: guests are refused, so a page without a token should say so rather than connect. */
  authRequired?: true
  /** The room policies (NAMESPACES_FILE, PROTOCOL §8) without history sizes: what the page may offer in each room. */
  policies: PagePolicies
}

export function pageConfig (
  maxTextLength: number,
  auth: { tokenUrl?: string | undefined, authRequired?: boolean } = {},
  policies: PagePolicies = DEFAULT_PAGE_POLICIES
): PageConfig {
  const config: PageConfig = { maxTextLength, maxNameLength: NAME_MAX_LENGTH, roomPattern: ROOM_PATTERN.source, roomRule: ROOM_RULE, policies }
  if (auth.tokenUrl !== undefined) config.tokenUrl = auth.tokenUrl
  if (auth.authRequired === true) config.authRequired = true
  return config
}
