// Client → server frames (validated with zod) and server → client frames
// (serialised by hand-picked shapes, once per message, never per member).
// The rules on rooms, names and text live in rules.ts and are re-exported here.
import { z } from 'zod'
import { checkName, codePointLength, NAME_MAX_LENGTH, ROOM_PATTERN, ROOM_RULE, textLengthAllowed, textRule } from './rules.js'

export * from './rules.js'

/** Longest `ref` a client may attach to a frame, in code points. */
export const REF_MAX_LENGTH = 64

export const RoomId = z.string({ error: 'expected a string' }).regex(ROOM_PATTERN, `expected ${ROOM_RULE}`)
export type RoomId = z.infer<typeof RoomId>

const Ref = z.string({ error: 'expected a string' })
  .refine((value) => codePointLength(value) <= REF_MAX_LENGTH, `expected at most ${REF_MAX_LENGTH} characters`)

/** Message text: a frame's `text` and a broadcast's `text` alike. */
export function createTextSchema (maxTextLength: number) {
  return z.string({ error: 'expected a string' })
    .refine((value) => textLengthAllowed(value, maxTextLength), `expected ${textRule(maxTextLength)}`)
}

/** A display name given as a field (a broadcast's `from`); the output is trimmed. */
export const DisplayName = z.string({ error: 'expected a string' }).transform((value, ctx) => {
  const checked = checkName(value)
  if (checked.ok) return checked.name
  ctx.addIssue({
    code: 'custom',
    message: checked.problem === 'length' ? `expected 1-${NAME_MAX_LENGTH} characters` : 'expected no control characters'
  })
  return z.NEVER
})

export function createFrameSchemas (maxTextLength: number) {
  const Text = createTextSchema(maxTextLength)

  const JoinFrame = z.strictObject({
    type: z.literal('join'),
    room: RoomId,
    since: z.string({ error: 'expected a message id string' }).optional(),
    ref: Ref.optional()
  })
  const LeaveFrame = z.strictObject({ type: z.literal('leave'), room: RoomId, ref: Ref.optional() })
  const SendFrame = z.strictObject({ type: z.literal('send'), room: RoomId, text: Text, ref: Ref.optional() })
  // The token's own checks (size first) are the verifier's; here only its shape.
  const AuthFrame = z.strictObject({ type: z.literal('auth'), token: z.string({ error: 'expected a string' }).min(1, 'expected a token'), ref: Ref.optional() })
  const ClientFrame = z.discriminatedUnion('type', [JoinFrame, LeaveFrame, SendFrame, AuthFrame], {
    error: 'expected "type" to be one of "join", "leave", "send", "auth"'
  })
  return { JoinFrame, LeaveFrame, SendFrame, AuthFrame, ClientFrame }
}

type Schemas = ReturnType<typeof createFrameSchemas>
export type JoinFrame = z.infer<Schemas['JoinFrame']>
export type LeaveFrame = z.infer<Schemas['LeaveFrame']>
export type SendFrame = z.infer<Schemas['SendFrame']>
export type AuthFrame = z.infer<Schemas['AuthFrame']>
export type ClientFrame = z.infer<Schemas['ClientFrame']>

export type ParseResult =
  | { ok: true, frame: ClientFrame }
  | { ok: false, message: string, ref?: string }

/** Builds the parser for one configuration; the schemas are made once, not per frame. */
export function createFrameParser (maxTextLength: number): (raw: string) => ParseResult {
  const { ClientFrame } = createFrameSchemas(maxTextLength)
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
    const send = validSend(data as Record<string, unknown>, maxTextLength)
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
function validSend (data: Record<string, unknown>, maxTextLength: number): SendFrame | undefined {
  if (data.type !== 'send') return undefined
  const { room, text, ref } = data
  let keys = 3
  if (ref !== undefined) {
    if (typeof ref !== 'string' || codePointLength(ref) > REF_MAX_LENGTH) return undefined
    keys = 4
  }
  if (typeof room !== 'string' || !ROOM_PATTERN.test(room) || typeof text !== 'string') return undefined
  if (!textLengthAllowed(text, maxTextLength)) return undefined
  // Strict: no other field (a key present with the value undefined cannot come from JSON).
  if (Object.keys(data).length !== keys) return undefined
  return ref === undefined ? { type: 'send', room, text } : { type: 'send', room, text, ref }
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

// Server → client frames.

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
}

/** Who published a message, beyond its display name: a verified user, or the HTTP API. */
export interface Origin {
  user?: string | undefined
  api?: true | undefined
}

export type ErrorCode = 'invalid_frame' | 'not_joined' | 'rate_limited' | 'too_many_rooms' | 'unavailable' | 'timeout' | 'token_invalid'

/** Sent once, right after the upgrade. */
export interface WelcomeFrame {
  type: 'welcome'
  /** The connection's id. */
  id: string
  /** The display name the server settled on (e.g. `guest-1a2b`). */
  name: string
  /** The node that holds the connection. */
  node: string
  /** The user id from the connection's token; absent for a guest. */
  user?: string
  /** Whole seconds until the token expires; absent for a guest. */
  expiresIn?: number
}

export interface JoinedFrame {
  type: 'joined'
  room: string
  /** Names in the room across all nodes, the joiner included; a name twice for two connections. */
  members: string[]
  /** False when `since` was unknown and recent history was sent instead. */
  recovered: boolean
}

/** A StoredMessage without its internal `seq`. */
export interface MessageFrame {
  type: 'message'
  room: string
  /** Opaque, unique within the room. */
  id: string
  from: string
  text: string
  /** Milliseconds since the epoch, set by the server. */
  ts: number
  /** The sender's user id, when the sender was authenticated. */
  user?: string
  /** Posted through the HTTP API. */
  api?: true
}

export interface PresenceFrame {
  type: 'presence'
  room: string
  joined: string[]
  left: string[]
}

export interface LeftFrame {
  type: 'left'
  room: string
}

export interface AckFrame {
  type: 'ack'
  ref: string
  /** The stored message's id (an acknowledged `send`). */
  id?: string
  /** Whole seconds until the new token expires (an accepted `auth`). */
  expiresIn?: number
}

export interface ErrorFrame {
  type: 'error'
  code: ErrorCode
  /** Human-readable reason, for the client's developer. */
  message: string
  /** The `ref` of the frame at fault, when it had a valid one. */
  ref?: string
}

/** Every frame the server sends; `public/chat-client.js` imports this type. */
export type ServerFrame = WelcomeFrame | JoinedFrame | MessageFrame | PresenceFrame | LeftFrame | AckFrame | ErrorFrame

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
  return `{"type":"message","room":${JSON.stringify(message.room)},"id":${JSON.stringify(message.id)},"from":${JSON.stringify(message.from)},"text":${JSON.stringify(message.text)},"ts":${JSON.stringify(message.ts)}${message.user === undefined && message.api === undefined ? '' : originFields(message)}}`
}

/** `,"user":…` and `,"api":true`, for a message from a verified user or the HTTP API. */
function originFields ({ user, api }: StoredMessage): string {
  return `${user === undefined ? '' : `,"user":${JSON.stringify(user)}`}${api === undefined ? '' : ',"api":true'}`
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
}

export function pageConfig (maxTextLength: number, auth: { tokenUrl?: string | undefined, authRequired?: boolean } = {}): PageConfig {
  const config: PageConfig = { maxTextLength, maxNameLength: NAME_MAX_LENGTH, roomPattern: ROOM_PATTERN.source, roomRule: ROOM_RULE }
  if (auth.tokenUrl !== undefined) config.tokenUrl = auth.tokenUrl
  if (auth.authRequired === true) config.authRequired = true
  return config
}
