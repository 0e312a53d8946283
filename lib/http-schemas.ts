// The zod schemas of the HTTP API: what routes/rooms.ts validates requests
// with, and the bodies every route answers; lib/openapi.ts describes the API from these.
import { z } from 'zod'
import { USER_ID_MAX_LENGTH } from './auth/identity.js'
import { createDataSchema, createTextSchema, DisplayName, MessageFields, NAME_MAX_LENGTH, RoomId } from './frames.js'
import { codePointLength } from './rules.js'
import { HISTORY_API_DEFAULT_LIMIT, HISTORY_API_MAX_LIMIT } from './limits.js'
import { JOIN_RULES, SEND_RULES } from './policy.js'

/** The optional Idempotency-Key header of a broadcast: 1-128 printable ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,128}$/

export const IdempotencyKey = z.string().regex(IDEMPOTENCY_KEY).meta({
  description: 'Optional, per room: a repeat with the same key within 5 minutes publishes nothing new and answers the first 202 again.'
})

export function createBroadcastBody (maxTextLength: number, maxDataBytes: number) {
  return z.strictObject({
    text: createTextSchema(maxTextLength),
    from: DisplayName.optional().meta({
      description: `Display name shown as the sender: 1-${NAME_MAX_LENGTH} characters after trimming, no control characters; default "system".`
    }),
    data: createDataSchema(maxDataBytes).optional()
  }, { error: 'expected a JSON object {"text": string, "from"?: string, "data"?: object}' })
}
export type BroadcastBody = z.infer<ReturnType<typeof createBroadcastBody>>

/** Longest `reason` of a disconnect, in code points; it becomes the close reason. */
export const DISCONNECT_REASON_MAX_LENGTH = 128

/** A disconnect body is `{"reason"?: string}`: a few hundred bytes at most. */
export const DISCONNECT_BODY_LIMIT_BYTES = 4096

export const DisconnectBody = z.strictObject({
  reason: z.string({ error: 'expected a string' })
    .refine((value) => codePointLength(value) <= DISCONNECT_REASON_MAX_LENGTH, `expected at most ${DISCONNECT_REASON_MAX_LENGTH} characters`)
    .meta({ maxLength: DISCONNECT_REASON_MAX_LENGTH, description: 'Sent to the user\'s connections as the reason of their 4003 close.' })
    .optional()
}, { error: 'expected a JSON object {"reason"?: string}' })

/** The `:id` of POST /users/:id/disconnect: a token's `sub`. */
export const UserIdParam = z.string().meta({
  minLength: 1,
  maxLength: USER_ID_MAX_LENGTH,
  description: `The user id (a token's \`sub\`), 1-${USER_ID_MAX_LENGTH} characters, percent-encoded in the path.`
})

const limitRule = `expected 1-${HISTORY_API_MAX_LIMIT}`

export const HistoryQuery = z.strictObject({
  since: z.string().min(1, 'expected a message id').optional().meta({
    description: 'The id of the last message the caller has; an unknown or trimmed id answers the most recent messages with "recovered": false.'
  }),
  limit: z.string().regex(/^\d+$/, 'expected a whole number').transform(Number)
    .pipe(z.number().int().min(1, limitRule).max(HISTORY_API_MAX_LIMIT, limitRule))
    .optional()
    .meta({ description: `How many messages, 1-${HISTORY_API_MAX_LIMIT} (default ${HISTORY_API_DEFAULT_LIMIT}).` })
})

// Response bodies.

export const Status = z.strictObject({ status: z.literal('ok') })

export const NotReady = z.strictObject({
  status: z.literal('unavailable'),
  check: z.string().meta({ description: 'The failing check: "shutdown" while draining, else the broker\'s (e.g. "redis").' }),
  reason: z.string()
})

export const BroadcastAccepted = z.strictObject({
  id: z.string().meta({ description: "The message's id, as members receive it in the `message` frame." }),
  room: RoomId,
  ts: z.number().int().meta({ description: 'Milliseconds since the epoch, set by the server.' })
})
export type BroadcastAccepted = z.infer<typeof BroadcastAccepted>

export const HistoryPage = z.strictObject({
  messages: z.array(MessageFields).meta({ description: 'Oldest first.' }),
  recovered: z.boolean().meta({ description: 'False when `since` was unknown or trimmed away.' })
})
export type HistoryPage = z.infer<typeof HistoryPage>

export const DisconnectAccepted = z.strictObject({
  user: z.string().meta({ description: 'The user whose connections on this node were closed and whose earlier tokens are revoked.' })
})

/** Every refusal of the API: a status name and a sentence for the caller's developer. */
export const HttpError = z.strictObject({
  error: z.string().meta({ description: 'The status name, e.g. "Unauthorized".' }),
  message: z.string()
})

export const FieldError = z.strictObject({
  ...HttpError.shape,
  field: z.string().meta({ description: 'What was wrong: "room", "Idempotency-Key", "body", "query" or the name of a field, e.g. "text" or "limit".' })
})

export const OutcomeUnknown = z.strictObject({
  ...HttpError.shape,
  outcome: z.literal('unknown').meta({
    description: 'The store did not answer in time: the message may have been published. Retry with the same Idempotency-Key.'
  })
})

/** A room policy as the page sees it (PROTOCOL §8). */
export const PagePolicy = z.strictObject({
  join: z.enum(JOIN_RULES).meta({ description: 'Who may join: anyone, connections with a token, tokens granting `join`, or only the owner (`inbox:alice` → alice).' }),
  send: z.enum(SEND_RULES).meta({ description: 'Who may send: any member, members whose token grants `send`, or nobody (read-only).' }),
  presence: z.boolean().meta({ description: 'false: `joined.members` is empty and no `presence` frames come.' }),
  signals: z.boolean().meta({ description: 'Whether members may send `signal` frames (they also need the right to send).' })
})

export const PageConfig = z.strictObject({
  maxTextLength: z.number().int().meta({ description: 'MAX_TEXT_LENGTH, in code points.' }),
  maxNameLength: z.number().int().meta({ description: 'In code points, after trimming.' }),
  roomPattern: z.string().meta({ description: 'The room-id regular expression: anchored, valid with no flag, `u` or `v`.' }),
  roomRule: z.string().meta({ description: 'The room-id rule in words.' }),
  tokenUrl: z.string().optional().meta({ description: 'PAGE_TOKEN_URL: where the page fetches its connection token (with credentials) before each connect and refresh.' }),
  authRequired: z.literal(true).optional().meta({ description: 'AUTH_REQUIRED: guests are refused, so a page without a token says so rather than connect.' }),
  policies: z.strictObject({
    default: PagePolicy.meta({ description: 'For rooms in no namespace, or in one not listed.' }),
    namespaces: z.record(z.string(), PagePolicy).meta({ description: 'Namespace (the part of a room id before its first `:`) → its policy.' })
  }).meta({ description: 'The room policies (NAMESPACES_FILE), without history sizes: what the page may offer in each room.' })
})
