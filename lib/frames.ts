// Client → server frames (validated with zod) and server → client frames
// (serialised by hand-picked shapes, once per message, never per member).
import { z } from 'zod'

export const ROOM_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/
const ROOM_RULE = '1-64 characters of A-Z a-z 0-9 _ - . :'

/** Length in Unicode code points, as the contract counts. */
export function codePointLength (text: string): number {
  // Counts surrogate pairs instead of allocating an array of code points.
  let pairs = 0
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) { pairs++; i++ }
    }
  }
  return text.length - pairs
}

export const RoomId = z.string({ error: 'expected a string' }).regex(ROOM_PATTERN, `expected ${ROOM_RULE}`)
export type RoomId = z.infer<typeof RoomId>

const Ref = z.string({ error: 'expected a string' })
  .refine((value) => codePointLength(value) <= 64, 'expected at most 64 characters')

export function createFrameSchemas (maxTextLength: number) {
  const Text = z.string({ error: 'expected a string' })
    .refine((value) => {
      const length = codePointLength(value)
      return length >= 1 && length <= maxTextLength
    }, `expected 1-${maxTextLength} characters`)

  const JoinFrame = z.strictObject({
    type: z.literal('join'),
    room: RoomId,
    since: z.string({ error: 'expected a message id string' }).optional(),
    ref: Ref.optional()
  })
  const LeaveFrame = z.strictObject({ type: z.literal('leave'), room: RoomId, ref: Ref.optional() })
  const SendFrame = z.strictObject({ type: z.literal('send'), room: RoomId, text: Text, ref: Ref.optional() })
  const ClientFrame = z.discriminatedUnion('type', [JoinFrame, LeaveFrame, SendFrame], {
    error: 'expected "type" to be one of "join", "leave", "send"'
  })
  return { JoinFrame, LeaveFrame, SendFrame, ClientFrame }
}

type Schemas = ReturnType<typeof createFrameSchemas>
export type JoinFrame = z.infer<Schemas['JoinFrame']>
export type LeaveFrame = z.infer<Schemas['LeaveFrame']>
export type SendFrame = z.infer<Schemas['SendFrame']>
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
    const echo = typeof ref === 'string' && codePointLength(ref) <= 64 ? ref : undefined
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
    if (typeof ref !== 'string' || codePointLength(ref) > 64) return undefined
    keys = 4
  }
  if (typeof room !== 'string' || !ROOM_PATTERN.test(room) || typeof text !== 'string') return undefined
  const length = codePointLength(text)
  if (length < 1 || length > maxTextLength) return undefined
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
}

export type ErrorCode = 'invalid_frame' | 'not_joined' | 'rate_limited' | 'too_many_rooms' | 'unavailable'

export function encodeWelcome (id: string, name: string, node: string): string {
  return JSON.stringify({ type: 'welcome', id, name, node })
}

export function encodeJoined (room: string, members: string[], recovered: boolean): string {
  return JSON.stringify({ type: 'joined', room, members, recovered })
}

/** The one frame built per message: by hand, in the field order of the object it stands for. */
export function encodeMessage (message: StoredMessage): string {
  return `{"type":"message","room":${JSON.stringify(message.room)},"id":${JSON.stringify(message.id)},"from":${JSON.stringify(message.from)},"text":${JSON.stringify(message.text)},"ts":${JSON.stringify(message.ts)}}`
}

export function encodePresence (room: string, joined: string[], left: string[]): string {
  return JSON.stringify({ type: 'presence', room, joined, left })
}

export function encodeLeft (room: string): string {
  return JSON.stringify({ type: 'left', room })
}

export function encodeAck (ref: string, id: string): string {
  return JSON.stringify({ type: 'ack', ref, id })
}

export function encodeError (code: ErrorCode, message: string, ref?: string): string {
  return JSON.stringify(ref === undefined ? { type: 'error', code, message } : { type: 'error', code, message, ref })
}
