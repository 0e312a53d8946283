// Unit tests of lib/frames.ts: every client frame valid and invalid, with the
// message a client's developer gets, and the server frames' shapes.
import t, { type Test } from 'tap'
import {
  codePointLength, createFrameParser, createFrameSchemas, dataBytes, encodeAck, encodeError, encodeJoined, encodeLeft,
  encodeMessage, encodePresence, encodeWelcome, ROOM_PATTERN, type MessageFrame, type ParseResult
} from '../../lib/frames.js'

const MAX = 10
/** MAX_DATA_BYTES of these tests. */
const MAX_DATA = 64
const parse = createFrameParser(MAX, MAX_DATA)

function accepted (t: Test, raw: unknown): Record<string, unknown> {
  const result = parse(typeof raw === 'string' ? raw : JSON.stringify(raw))
  if (!result.ok) {
    t.fail(`refused ${JSON.stringify(raw)}: ${result.message}`)
    return {}
  }
  t.pass(`accepted ${JSON.stringify(raw)}`)
  return result.frame as unknown as Record<string, unknown>
}

function refused (t: Test, raw: unknown, message: RegExp | string): Extract<ParseResult, { ok: false }> {
  const result = parse(typeof raw === 'string' ? raw : JSON.stringify(raw))
  if (result.ok) {
    t.fail(`accepted ${JSON.stringify(raw)}`)
    return { ok: false, message: '' }
  }
  t.match(result.message, message, `refused ${JSON.stringify(raw)}: ${result.message}`)
  return result
}

const emoji = '😀' // one code point, two UTF-16 units

t.test('codePointLength counts code points, not UTF-16 units', async (t) => {
  t.equal(codePointLength(''), 0)
  t.equal(codePointLength('abc'), 3)
  t.equal(codePointLength(emoji), 1)
  t.equal(codePointLength(emoji.repeat(3) + 'a'), 4)
  t.equal(codePointLength('a' + emoji), 2, 'a pair at the very end')
  t.equal(codePointLength('é'), 1)
  t.equal(codePointLength('\ud83d'), 1, 'a lone high surrogate is one')
  t.equal(codePointLength('\ude00\ud83d'), 2, 'surrogates in the wrong order are two')
  t.equal(codePointLength('👍🏽'), 2, 'emoji with a skin tone modifier are two code points')
  for (const text of ['', 'x', emoji, 'a😀b😀c', '\ud83d', '𝔘𝔫𝔦']) t.equal(codePointLength(text), [...text].length, JSON.stringify(text))
})

t.test('join: valid frames', async (t) => {
  t.same(accepted(t, { type: 'join', room: 'lobby' }), { type: 'join', room: 'lobby' })
  t.same(accepted(t, { type: 'join', room: 'lobby', since: 'abcd-12', ref: 'r1' }), { type: 'join', room: 'lobby', since: 'abcd-12', ref: 'r1' })
  accepted(t, { type: 'join', room: 'A-Z_a.z:0-9' })
  accepted(t, { type: 'join', room: 'x'.repeat(64) })
  accepted(t, { type: 'join', room: 'r', since: 'not-a-known-id' })
  accepted(t, { type: 'join', room: 'r', since: '' })
  // Any string is an id; one the server does not know gives recovered: false, not invalid_frame.
  accepted(t, { type: 'join', room: 'r', since: 'x'.repeat(500) })
})

t.test('join: invalid frames', async (t) => {
  refused(t, { type: 'join' }, '"room" is required')
  refused(t, { type: 'join', room: 5 }, '"room": expected a string')
  refused(t, { type: 'join', room: 'lobby', extra: true }, 'unknown field "extra"')
  refused(t, { type: 'join', room: 'lobby', since: 5 }, /"since": expected a message id string/)
  refused(t, { type: 'join', room: 'lobby', since: {} }, /"since": expected a message id string/)
  refused(t, { type: 'join', room: 'lobby', since: null }, '"since" must be left out rather than sent as null')
})

t.test('leave: valid and invalid frames', async (t) => {
  t.same(accepted(t, { type: 'leave', room: 'lobby' }), { type: 'leave', room: 'lobby' })
  t.same(accepted(t, { type: 'leave', room: 'lobby', ref: 'x' }), { type: 'leave', room: 'lobby', ref: 'x' })
  refused(t, { type: 'leave' }, '"room" is required')
  refused(t, { type: 'leave', room: ['lobby'] }, '"room": expected a string')
  refused(t, { type: 'leave', room: 'lobby', since: 'a-1' }, 'unknown field "since"')
  refused(t, { type: 'leave', room: 'lobby', ref: null }, '"ref" must be left out rather than sent as null')
})

t.test('send: valid and invalid frames', async (t) => {
  t.same(accepted(t, { type: 'send', room: 'lobby', text: 'hi' }), { type: 'send', room: 'lobby', text: 'hi' })
  t.same(accepted(t, { type: 'send', room: 'lobby', text: 'hi', ref: 'r' }), { type: 'send', room: 'lobby', text: 'hi', ref: 'r' })
  refused(t, { type: 'send', room: 'lobby' }, '"text" is required')
  refused(t, { type: 'send', text: 'hi' }, '"room" is required')
  refused(t, { type: 'send', room: 'lobby', text: 42 }, '"text": expected a string')
  refused(t, { type: 'send', room: 'lobby', text: null }, '"text" must be left out rather than sent as null')
  refused(t, { type: 'send', room: 'lobby', text: '' }, `"text": expected 1-${MAX} characters`)
  refused(t, { type: 'send', room: 'lobby', text: 'hi', from: 'mallory' }, 'unknown field "from"')
  refused(t, { type: 'send', room: 'lobby', text: 'hi', a: 1, b: 2 }, 'unknown fields "a", "b"')
})

t.test('signal: valid and invalid frames', async (t) => {
  t.same(accepted(t, { type: 'signal', room: 'lobby', event: 'typing' }), { type: 'signal', room: 'lobby', event: 'typing' })
  t.same(accepted(t, { type: 'signal', room: 'lobby', event: 'typing', ref: 'r' }), { type: 'signal', room: 'lobby', event: 'typing', ref: 'r' })
  for (const event of ['a', 'x'.repeat(32), 'stopped-typing', 'read_up_to', '0']) accepted(t, { type: 'signal', room: 'r', event })
  for (const event of ['', 'x'.repeat(33), 'Typing', 'has space', 'é', emoji, 'a.b', 'a:b', 'line\n']) {
    refused(t, { type: 'signal', room: 'r', event }, '"event": expected 1-32 characters of a-z 0-9 _ -')
  }
  refused(t, { type: 'signal', room: 'r' }, '"event" is required')
  refused(t, { type: 'signal', event: 'typing' }, '"room" is required')
  refused(t, { type: 'signal', room: 'bad room', event: 'typing' }, '"room": expected 1-64 characters')
  refused(t, { type: 'signal', room: 'r', event: 5 }, '"event": expected a string')
  refused(t, { type: 'signal', room: 'r', event: null }, '"event" must be left out rather than sent as null')
  refused(t, { type: 'signal', room: 'r', event: 'typing', text: 'hi' }, 'unknown field "text"')
  refused(t, { type: 'signal', room: 'r', event: 'typing', from: 'mallory' }, 'unknown field "from"')
  t.equal(refused(t, { type: 'signal', room: 'r', event: 'TYPING', ref: 'mine' }, 'event').ref, 'mine', 'the ref is echoed')
})

t.test('text length is counted in code points, at exactly MAX and MAX+1', async (t) => {
  accepted(t, { type: 'send', room: 'r', text: 'a'.repeat(MAX) })
  refused(t, { type: 'send', room: 'r', text: 'a'.repeat(MAX + 1) }, `expected 1-${MAX} characters`)
  // MAX emoji are 2×MAX UTF-16 units but MAX code points.
  accepted(t, { type: 'send', room: 'r', text: emoji.repeat(MAX) })
  refused(t, { type: 'send', room: 'r', text: emoji.repeat(MAX + 1) }, `expected 1-${MAX} characters`)
  accepted(t, { type: 'send', room: 'r', text: 'a'.repeat(MAX - 1) + emoji })
  refused(t, { type: 'send', room: 'r', text: 'a'.repeat(MAX) + emoji }, `expected 1-${MAX} characters`)
  accepted(t, { type: 'send', room: 'r', text: emoji })
  // The raw JSON escape form of the same text is counted the same way.
  accepted(t, `{"type":"send","room":"r","text":"${'\\ud83d\\ude00'.repeat(MAX)}"}`)

  const wide = createFrameParser(4096, MAX_DATA)
  t.equal(wide(JSON.stringify({ type: 'send', room: 'r', text: 'x'.repeat(4096) })).ok, true, 'default MAX_TEXT_LENGTH of 4096 accepted')
  t.equal(wide(JSON.stringify({ type: 'send', room: 'r', text: 'x'.repeat(4097) })).ok, false, '4097 refused')
})

t.test('room ids: charset and length', async (t) => {
  for (const room of ['a', 'Lobby_1', 'team.dev:ops-2', 'x'.repeat(64), '0']) {
    accepted(t, { type: 'join', room })
    t.match(room, ROOM_PATTERN)
  }
  for (const room of ['', 'x'.repeat(65), 'has space', 'slash/room', 'é', emoji, 'a\nb', 'semi;colon', '#hash']) {
    refused(t, { type: 'join', room }, '"room": expected 1-64 characters of A-Z a-z 0-9 _ - . :')
    refused(t, { type: 'send', room, text: 'x' }, '"room": expected 1-64 characters')
  }
})

t.test('ref: at most 64 characters, echoed on errors when itself valid', async (t) => {
  accepted(t, { type: 'leave', room: 'r', ref: 'x'.repeat(64) })
  accepted(t, { type: 'leave', room: 'r', ref: emoji.repeat(64) })
  refused(t, { type: 'leave', room: 'r', ref: 'x'.repeat(65) }, '"ref": expected at most 64 characters')
  refused(t, { type: 'leave', room: 'r', ref: 7 }, '"ref": expected a string')

  t.equal(refused(t, { type: 'send', room: 'r', text: '', ref: 'mine' }, 'text').ref, 'mine', 'echoed on a bad text')
  t.equal(refused(t, { type: 'join', room: 'bad room', ref: 'mine' }, 'room').ref, 'mine', 'echoed on a bad room')
  t.equal(refused(t, { type: 'shout', ref: 'mine' }, 'type').ref, 'mine', 'echoed on an unknown type')
  t.equal(refused(t, { type: 'join', room: 'r', extra: 1, ref: 'r-64' + 'x'.repeat(60) }, 'extra').ref, 'r-64' + 'x'.repeat(60), 'echoed at exactly 64')
  t.equal(refused(t, { type: 'join', room: 'r', extra: 1, ref: emoji.repeat(64) }, 'extra').ref, emoji.repeat(64), '64 emoji are 64 characters')
  t.notOk('ref' in refused(t, { type: 'send', room: 'r', text: '', ref: 'x'.repeat(65) }, 'text'), 'a too-long ref is not echoed')
  t.notOk('ref' in refused(t, { type: 'send', room: 'r', text: '', ref: 5 }, 'text'), 'a non-string ref is not echoed')
  t.notOk('ref' in refused(t, { type: 'send', room: 'r', text: '' }, 'text'), 'no ref, no echo')
})

t.test('type: unknown, missing, wrong type', async (t) => {
  refused(t, { type: 'shout', room: 'r' }, 'expected "type" to be one of "join", "leave", "send", "signal", "auth"')
  refused(t, { type: 'JOIN', room: 'r' }, /one of "join", "leave", "send"/)
  refused(t, { type: 1, room: 'r' }, /one of "join", "leave", "send"/)
  refused(t, { room: 'r' }, '"type" is required')
  refused(t, { type: null, room: 'r' }, '"type"')
  refused(t, {}, '"type" is required')
})

t.test('not JSON, or not an object', async (t) => {
  refused(t, 'not json', 'frame is not valid JSON')
  refused(t, '{"type":"join",', 'frame is not valid JSON')
  refused(t, '', 'frame is not valid JSON')
  refused(t, '[{"type":"join","room":"r"}]', 'frame must be a JSON object')
  refused(t, '42', 'frame must be a JSON object')
  refused(t, '"join"', 'frame must be a JSON object')
  refused(t, 'null', 'frame must be a JSON object')
  refused(t, 'true', 'frame must be a JSON object')
})

t.test('parsers built for different limits are independent', async (t) => {
  const small = createFrameParser(1, MAX_DATA)
  const big = createFrameParser(100, MAX_DATA)
  const frame = JSON.stringify({ type: 'send', room: 'r', text: 'ab' })
  t.equal(small(frame).ok, false)
  t.equal(big(frame).ok, true)
  const refusal = small(frame)
  t.match(refusal, { ok: false, message: '"text": expected 1-1 characters' })
})

t.test('server frames', async (t) => {
  t.same(JSON.parse(encodeWelcome('c1', 'alice', 'n1')), { type: 'welcome', id: 'c1', name: 'alice', node: 'n1' })
  t.same(JSON.parse(encodeJoined('r', ['a', 'b'], false)), { type: 'joined', room: 'r', members: ['a', 'b'], recovered: false })
  t.same(JSON.parse(encodeMessage({ room: 'r', id: 'e-1', seq: 1, from: 'a', text: 't', ts: 5 })),
    { type: 'message', room: 'r', id: 'e-1', from: 'a', text: 't', ts: 5 }, 'seq is internal and not sent')
  t.same(JSON.parse(encodePresence('r', ['a'], ['b'])), { type: 'presence', room: 'r', joined: ['a'], left: ['b'] })
  t.same(JSON.parse(encodeLeft('r')), { type: 'left', room: 'r' })
  t.same(JSON.parse(encodeAck('x', 'e-2')), { type: 'ack', ref: 'x', id: 'e-2' })
  t.same(JSON.parse(encodeError('not_joined', 'm')), { type: 'error', code: 'not_joined', message: 'm' }, 'no ref key without a ref')
  t.same(JSON.parse(encodeError('rate_limited', 'm', 'r')), { type: 'error', code: 'rate_limited', message: 'm', ref: 'r' })
  const text = 'quote " backslash \\ newline \n ' + emoji
  t.equal(JSON.parse(encodeMessage({ room: 'r', id: 'e-1', seq: 1, from: 'a', text, ts: 5 })).text, text, 'text survives escaping')
})

t.test('encodeMessage, built by hand, is byte for byte the JSON of the message object', async (t) => {
  const texts = ['t', 'quote " backslash \\ newline \n tab \t', emoji, '\u2028\u2029', '\u0000\u001f', 'lone \ud800 surrogate', '<script>']
  for (const [i, text] of texts.entries()) {
    for (const [j, from] of ['a', 'name "quoted"', emoji].entries()) {
      const message = { room: 'r.1:x_y-z', id: '0a1b2c3d-42', seq: 42, from, text, ts: 1732830000123 }
      const frame: MessageFrame = { type: 'message', room: message.room, id: message.id, from, text, ts: message.ts }
      t.equal(encodeMessage(message), JSON.stringify(frame), `text ${i}, from ${j}`)
    }
  }
})

t.test('the hand-checked send frame agrees with the zod schema, valid or not', async (t) => {
  const { ClientFrame } = createFrameSchemas(MAX, MAX_DATA)
  const long = 'x'.repeat(MAX)
  const candidates: unknown[] = [
    { type: 'send', room: 'r', text: 'hi' },
    { type: 'send', room: 'r', text: 'hi', ref: 'a' },
    { type: 'send', room: 'r', text: long },
    { type: 'send', room: 'r', text: long + 'x' },
    { type: 'send', room: 'r', text: emoji.repeat(MAX) },
    { type: 'send', room: 'r', text: emoji.repeat(MAX + 1) },
    { type: 'send', room: 'r', text: '' },
    { type: 'send', room: 'r', text: 5 },
    { type: 'send', room: 'r', text: null },
    { type: 'send', room: 'r' },
    { type: 'send', text: 'hi' },
    { type: 'send', room: '', text: 'hi' },
    { type: 'send', room: 'a b', text: 'hi' },
    { type: 'send', room: 'r'.repeat(64), text: 'hi' },
    { type: 'send', room: 'r'.repeat(65), text: 'hi' },
    { type: 'send', room: 7, text: 'hi' },
    { type: 'send', room: 'r', text: 'hi', ref: null },
    { type: 'send', room: 'r', text: 'hi', ref: 3 },
    { type: 'send', room: 'r', text: 'hi', ref: 'r'.repeat(64) },
    { type: 'send', room: 'r', text: 'hi', ref: 'r'.repeat(65) },
    { type: 'send', room: 'r', text: 'hi', ref: emoji.repeat(64) },
    { type: 'send', room: 'r', text: 'hi', extra: 1 },
    { type: 'send', room: 'r', text: 'hi', ref: 'a', extra: 1 },
    { type: 'send', room: 'r', text: 'hi', since: 'x' },
    { type: 'send', room: 'r', text: 'hi', data: {} },
    { type: 'send', room: 'r', text: 'hi', data: { a: [1, { b: null }] }, ref: 'x' },
    { type: 'send', room: 'r', text: 'hi', data: { a: 'x'.repeat(MAX_DATA - 8) } },
    { type: 'send', room: 'r', text: 'hi', data: { a: 'x'.repeat(MAX_DATA - 7) } },
    { type: 'send', room: 'r', text: 'hi', data: { a: 'é'.repeat(28) } },
    { type: 'send', room: 'r', text: 'hi', data: { a: 'é'.repeat(29) } },
    { type: 'send', room: 'r', text: 'hi', data: [] },
    { type: 'send', room: 'r', text: 'hi', data: 'x' },
    { type: 'send', room: 'r', text: 'hi', data: 1 },
    { type: 'send', room: 'r', text: 'hi', data: true },
    { type: 'send', room: 'r', text: 'hi', data: null },
    { type: 'send', room: 'r', text: 'hi', data: {}, extra: 1 },
    { type: 'send', room: 'r', text: '', data: {} },
    { type: 'send', room: 'r', data: {} },
    { type: 'SEND', room: 'r', text: 'hi' },
    { type: 'join', room: 'r' },
    { type: 'leave', room: 'r' }
  ]
  const raws = [
    ...candidates.map((c) => JSON.stringify(c)), '{"type":"send","room":"r","text":"hi","__proto__":{}}', '{"type":"send","room":"r","text":"hi","text":"again"}',
    '{"type":"send","room":"r","text":"hi","data":{"__proto__":{"a":1}}}'
  ]
  for (const raw of raws) {
    const expected = ClientFrame.safeParse(JSON.parse(raw))
    const actual = parse(raw)
    t.equal(actual.ok, expected.success, `${raw}: ${expected.success ? 'accepted' : 'refused'} by both`)
    if (actual.ok && expected.success) t.same(actual.frame, expected.data, `${raw}: the same frame`)
  }
})

t.test('send: data is a JSON object of at most MAX_DATA_BYTES of compact JSON', async (t) => {
  const data = { kind: 'order', items: [{ qty: 2 }], paid: true, note: null }
  const frame = accepted(t, { type: 'send', room: 'r', text: 'hi', data, ref: 'x' })
  t.same(frame, { type: 'send', room: 'r', text: 'hi', data, ref: 'x' })
  t.same(accepted(t, { type: 'send', room: 'r', text: 'hi', data: {} }), { type: 'send', room: 'r', text: 'hi', data: {} }, 'an empty object is data')

  // `{"a":"…"}` is 8 bytes around the string.
  accepted(t, { type: 'send', room: 'r', text: 'hi', data: { a: 'x'.repeat(MAX_DATA - 8) } })
  refused(t, { type: 'send', room: 'r', text: 'hi', data: { a: 'x'.repeat(MAX_DATA - 7) } },
    `"data": expected at most ${MAX_DATA} bytes (MAX_DATA_BYTES) of compact JSON, got ${MAX_DATA + 1}`)
  // Whitespace in the frame does not count: the size is that of the compact encoding.
  const padded = `{"type":"send","room":"r","text":"hi","data":  {  "a" :  "${'x'.repeat(MAX_DATA - 8)}"   }  }`
  t.ok(padded.length > MAX_DATA + 20)
  accepted(t, padded)
  // Nor does the spelling of numbers: 1.0e2 is 100.
  const numbers = accepted(t, '{"type":"send","room":"r","text":"hi","data":{"n":1.0e2,"m":-0.50}}')
  t.equal(JSON.stringify(numbers.data), '{"n":100,"m":-0.5}')

  // UTF-8 bytes, not characters: é is 2 bytes, € 3, an emoji 4.
  for (const [char, bytes] of [['é', 2], ['€', 3], [emoji, 4]] as const) {
    const fits = Math.floor((MAX_DATA - 8) / bytes)
    accepted(t, { type: 'send', room: 'r', text: 'hi', data: { a: char.repeat(fits) } })
    refused(t, { type: 'send', room: 'r', text: 'hi', data: { a: char.repeat(fits + 1) } }, /at most 64 bytes/)
  }
  // An escape counts as it is encoded: a quote is `\"`, two bytes.
  accepted(t, { type: 'send', room: 'r', text: 'hi', data: { a: '"'.repeat((MAX_DATA - 8) / 2) } })
  refused(t, { type: 'send', room: 'r', text: 'hi', data: { a: '"'.repeat((MAX_DATA - 8) / 2 + 1) } }, /got 66/)
})

t.test('send: data that is not an object is refused, saying what it was', async (t) => {
  const base = { type: 'send', room: 'r', text: 'hi' }
  refused(t, { ...base, data: [] }, '"data": expected a JSON object, not an array')
  refused(t, { ...base, data: [{ a: 1 }] }, '"data": expected a JSON object, not an array')
  refused(t, { ...base, data: 'text' }, '"data": expected a JSON object, not a string')
  refused(t, { ...base, data: 3 }, '"data": expected a JSON object, not a number')
  refused(t, { ...base, data: false }, '"data": expected a JSON object, not a boolean')
  refused(t, { ...base, data: null }, '"data" must be left out rather than sent as null')
  refused(t, { type: 'send', room: 'r', data: { a: 1 } }, '"text" is required')
  t.equal(refused(t, { ...base, data: [], ref: 'mine' }, /not an array/).ref, 'mine', 'the ref is echoed')
})

t.test('dataBytes is the UTF-8 length of what JSON.stringify writes', async (t) => {
  const values = ['', 'ascii', 'é', '€', emoji, '\u007f\u0080\u07ff\u0800\uffff', '\ud800', '\udfff x \ud83d', '𝔘𝔫𝔦 — “quoted” \u2028']
  for (const [i, value] of values.entries()) {
    const encoded = JSON.stringify({ value })
    // Named by index: a raw U+2028 in an assertion's name would break TAP's line.
    t.equal(dataBytes(encoded), Buffer.byteLength(encoded), `value ${i}`)
  }
})

t.test('encodeMessage with data is byte for byte the JSON of the message frame', async (t) => {
  const datas = [{}, { a: 1 }, { text: 'quote " \\ \n ' + emoji, list: [1, 2.5, -0, 1e21, null, true], nested: { deep: { er: 'é' } } }, { 2: 'b', 1: 'a', z: 0 }]
  for (const [i, data] of datas.entries()) {
    const encoded = JSON.stringify(data)
    for (const origin of [{}, { user: 'alice' }, { api: true as const }, { user: 'bob', api: true as const }]) {
      const message = { room: 'r', id: 'e-1', seq: 1, from: 'a', text: 't', ts: 5, ...origin, data: encoded }
      const frame: MessageFrame = { type: 'message', room: 'r', id: 'e-1', from: 'a', text: 't', ts: 5, ...origin, data: JSON.parse(encoded) }
      t.equal(encodeMessage(message), JSON.stringify(frame), `data ${i}, origin ${JSON.stringify(origin)}`)
    }
  }
  t.notMatch(encodeMessage({ room: 'r', id: 'e-1', seq: 1, from: 'a', text: 't', ts: 5 }), /data/, 'no data, no field')
})
