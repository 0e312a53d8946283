// The encoders of lib/frames.ts write server frames by hand; their output must
// parse with the zod schemas (strict: no missing, extra or mistyped field).
import t from 'tap'
import {
  encodeAck, encodeAuthAck, encodeError, encodeJoined, encodeLeft, encodeMessage, encodePresence, encodeSignal, encodeSignalAck, encodeWelcome,
  ErrorCode, ServerFrame, type StoredMessage
} from '../../lib/frames.js'

const stored: StoredMessage = { room: 'lobby', id: 'e1-7', seq: 7, from: 'Zoë "z" \u2028', text: 'héllo 🌍\n"quoted"', ts: 1764600000123 }

const encoded: Record<string, string> = {
  welcome: encodeWelcome('c-1', 'guest-1a2b', 'node-1'),
  'welcome of a user': encodeWelcome('c-2', 'Alice', 'node-1', 'alice', 3600),
  joined: encodeJoined('lobby', ['alice', 'alice', 'bob'], false),
  message: encodeMessage(stored),
  'message of a user': encodeMessage({ ...stored, user: 'alice' }),
  'message of the API': encodeMessage({ ...stored, api: true }),
  presence: encodePresence('lobby', ['carol'], ['dave']),
  left: encodeLeft('lobby'),
  ack: encodeAck('r1', 'e1-7'),
  'ack of an auth': encodeAuthAck('r3', 3599),
  'ack of a signal': encodeSignalAck('r4'),
  signal: encodeSignal('lobby', 'typing', 'Zoë "z"'),
  'signal of a user': encodeSignal('lobby', 'typing', 'Alice', 'alice'),
  error: encodeError('invalid_frame', '"text" is required'),
  'error with ref': encodeError('rate_limited', 'slow down', 'r2')
}

t.test('every encoder writes a frame its schema accepts', async (t) => {
  for (const [name, json] of Object.entries(encoded)) {
    const result = ServerFrame.safeParse(JSON.parse(json))
    t.ok(result.success, `${name}${result.success ? '' : ': ' + result.error.message}`)
  }
  for (const code of ErrorCode.options) t.ok(ServerFrame.safeParse(JSON.parse(encodeError(code, 'm'))).success, code)
})

t.test('the message encoder keeps every field of the stored message but seq', async (t) => {
  const { seq: _seq, ...fields } = stored
  t.same(ServerFrame.parse(JSON.parse(encoded.message as string)), { type: 'message', ...fields })
})

t.test('the schemas refuse what a client must not receive', async (t) => {
  const refused = [
    { type: 'welcome', id: 'c-1', name: 'a' },
    { type: 'ack', ref: 'r1', id: 'x', extra: true },
    { type: 'message', room: 'lobby', id: 'x', from: 'a', text: 'b', ts: 1, seq: 1 },
    { type: 'message', room: 'lobby', id: 'x', from: 'a', text: 'b', ts: 1, api: false },
    { type: 'welcome', id: 'c-1', name: 'a', node: 'n', expiresIn: 1.5 },
    { type: 'error', code: 'no_such_code', message: 'm' },
    { type: 'joined', room: 'lobby', members: 'alice', recovered: true },
    { type: 'signal', room: 'lobby', event: 'typing' },
    { type: 'signal', room: 'lobby', event: 'typing', from: 'a', id: 'x' },
    { type: 'signal', room: 'lobby', event: 'typing', from: 'a', seq: 1 },
    { type: 'unknown' }
  ]
  for (const frame of refused) t.notOk(ServerFrame.safeParse(frame).success, JSON.stringify(frame))
})
