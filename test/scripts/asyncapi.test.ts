// docs/asyncapi.json: a valid AsyncAPI 3.0 document, up to date with the zod
// frame schemas, naming every frame, and agreeing with the parser and the encoders.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { Parser } from '@asyncapi/parser'
import { Ajv } from 'ajv'
import { asyncApiJson, ASYNCAPI_PATH, buildAsyncApiDocument } from '../../scripts/asyncapi.js'
import {
  createFrameParser, createFrameSchemas, encodeAck, encodeAuthAck, encodeMessage, encodeSignal, encodeSignalAck, encodeWelcome, ServerFrame
} from '../../lib/frames.js'

const committed = readFileSync(ASYNCAPI_PATH, 'utf8')

/** The `type` literal of each option of a discriminated union of frames. */
function frameTypes (union: { options: ReadonlyArray<{ shape: { type: { value: string } } }> }): string[] {
  return union.options.map((option) => option.shape.type.value)
}

t.test('docs/asyncapi.json is up to date: regenerate with `npm run docs:asyncapi`', async (t) => {
  t.equal(committed, asyncApiJson())
})

t.test('the document is valid AsyncAPI 3.0', async (t) => {
  const { document, diagnostics } = await new Parser().parse(committed)
  // Severity 0 is an error, 1 a warning; 2 and 3 are hints (e.g. "3.1.0 exists").
  t.same(diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`), [])
  t.ok(document, 'parsed')
  t.equal(document?.version(), '3.0.0')
})

t.test('the parser refuses a broken document (the check above can fail)', async (t) => {
  const broken = JSON.parse(committed)
  broken.operations.sendWelcome.channel = { $ref: '#/channels/nowhere' }
  const { document, diagnostics } = await new Parser().parse(broken)
  t.equal(document, undefined)
  t.ok(diagnostics.some((d) => d.severity === 0))
})

t.test('every client and server frame is a message, with an operation', async (t) => {
  const document = JSON.parse(committed)
  const byKey = document.components.messages as Record<string, { name: string, title: string }>
  // A client and a server frame may share a `type` (`signal`): their keys differ, their names are the type.
  const names = Object.values(byKey).map((message) => message.name).sort()
  const { ClientFrame } = createFrameSchemas(100, 1024)
  t.same(names, [...frameTypes(ClientFrame), ...frameTypes(ServerFrame)].sort())
  t.match(byKey.signal, { name: 'signal', title: 'signal (client → server)' })
  t.match(byKey.relayedSignal, { name: 'signal', title: 'signal (server → client)' })
  const operated = Object.values(document.operations as Record<string, { messages: Array<{ $ref: string }> }>)
    .flatMap((operation) => operation.messages.map((message) => message.$ref.split('/').pop())).sort()
  t.same(operated, Object.keys(byKey).sort())
  const closeCodes = document.channels.chat['x-close-codes'].map((entry: { code: number }) => entry.code)
  t.same(closeCodes, [1001, 1003, 1007, 1008, 1009, 1011, 1013, 4001, 4003])
})

t.test('the payload schemas agree with the frame parser and the encoders', async (t) => {
  const maxTextLength = 8
  const maxDataBytes = 16
  const document = buildAsyncApiDocument({ maxTextLength, maxDataBytes })
  const ajv = new Ajv({ strict: false })
  const valid = (name: string, value: unknown) => ajv.validate(document.components.schemas[name] as object, value)
  const parse = createFrameParser(maxTextLength, maxDataBytes)

  const clientFrames: Array<[string, unknown]> = [
    ['JoinFrame', { type: 'join', room: 'lobby' }],
    ['JoinFrame', { type: 'join', room: 'lobby', since: 'e1-3', ref: 'r' }],
    ['JoinFrame', { type: 'join', room: 'no spaces' }],
    ['JoinFrame', { type: 'join', room: 'lobby', since: null }],
    ['LeaveFrame', { type: 'leave', room: 'lobby' }],
    ['LeaveFrame', { type: 'leave', room: 'lobby', extra: 1 }],
    ['SendFrame', { type: 'send', room: 'lobby', text: '🌍'.repeat(8) }],
    ['SendFrame', { type: 'send', room: 'lobby', text: '🌍'.repeat(9) }],
    ['SendFrame', { type: 'send', room: 'lobby', text: '' }],
    ['SendFrame', { type: 'send', room: 'lobby', text: 'hi', ref: 'r'.repeat(64) }],
    ['SendFrame', { type: 'send', room: 'lobby', text: 'hi', ref: 'r'.repeat(65) }],
    ['SignalFrame', { type: 'signal', room: 'lobby', event: 'typing', ref: 'r' }],
    ['SignalFrame', { type: 'signal', room: 'lobby', event: 'x'.repeat(32) }],
    ['SignalFrame', { type: 'signal', room: 'lobby', event: 'x'.repeat(33) }],
    ['SignalFrame', { type: 'signal', room: 'lobby', event: 'Typing' }],
    ['SignalFrame', { type: 'signal', room: 'lobby' }],
    ['SignalFrame', { type: 'signal', room: 'lobby', event: 'typing', text: 'hi' }],
    ['AuthFrame', { type: 'auth', token: 'a.b.c', ref: 'r' }],
    ['AuthFrame', { type: 'auth', token: '' }],
    ['AuthFrame', { type: 'auth' }]
  ]
  for (const [schema, frame] of clientFrames) {
    t.equal(valid(schema, frame), parse(JSON.stringify(frame)).ok, `${schema} and the parser agree on ${JSON.stringify(frame)}`)
  }

  const stored = { room: 'lobby', id: 'e1-1', seq: 1, from: 'alice', text: 'hi', ts: 1764600000000 }
  t.ok(valid('MessageFrame', JSON.parse(encodeMessage(stored))), 'the message encoder')
  t.ok(valid('AckFrame', JSON.parse(encodeAck('r', 'e1-1'))), 'the ack encoder')
  t.ok(valid('AckFrame', JSON.parse(encodeAuthAck('r', 60))), 'the ack encoder of an auth')
  t.ok(valid('AckFrame', JSON.parse(encodeSignalAck('r'))), 'the ack encoder of a signal')
  t.ok(valid('RelayedSignalFrame', JSON.parse(encodeSignal('lobby', 'typing', 'guest-1'))), 'the signal encoder')
  t.ok(valid('RelayedSignalFrame', JSON.parse(encodeSignal('lobby', 'typing', 'Alice', 'alice'))), 'the signal encoder with user')
  t.notOk(valid('RelayedSignalFrame', { type: 'signal', room: 'lobby', event: 'typing', from: 'a', seq: 1 }), 'no sequence on a signal')
  t.ok(valid('MessageFrame', JSON.parse(encodeMessage({ ...stored, user: 'alice', api: true }))), 'the message encoder with user and api')
  t.ok(valid('WelcomeFrame', JSON.parse(encodeWelcome('c-1', 'Alice', 'node-1', 'alice', 60))), 'the welcome encoder of a user')
  t.notOk(valid('MessageFrame', { ...JSON.parse(encodeMessage(stored)), seq: 1 }), 'no internal field')
  for (const [name, message] of Object.entries(document.components.messages as Record<string, { payload: { $ref: string }, examples: Array<{ payload: unknown }> }>)) {
    const schema = message.payload.$ref.split('/').pop() as string
    for (const example of message.examples) t.ok(valid(schema, example.payload), `the example of ${name} matches its schema`)
  }
})
