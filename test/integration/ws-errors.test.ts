// Every client-visible error code of PROTOCOL §2–§3 over a real socket
// (single node; `unavailable` needs a broker that can fail and lives with the
// cluster tests), with `ref` echoed and the connection left open.
import t from 'tap'
import { metric } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

/** Sends a raw frame and returns the next error frame after it. */
async function refusal (client: TestClient, frame: unknown, what: string): Promise<Frame> {
  const from = client.frames.length
  client.send(frame)
  return client.next((f) => f.type === 'error', what, from)
}

t.test('invalid_frame: each kind of bad frame is refused and the connection stays open', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  await client.join('lobby')

  const cases: Array<{ what: string, frame: unknown, message: RegExp }> = [
    { what: 'invalid JSON', frame: '{"type":"send",', message: /not valid JSON/ },
    { what: 'a JSON array', frame: '[1,2]', message: /JSON object/ },
    { what: 'unknown type', frame: { type: 'shout', room: 'lobby' }, message: /"type"/ },
    { what: 'missing type', frame: { room: 'lobby' }, message: /"type"/ },
    { what: 'extra field', frame: { type: 'send', room: 'lobby', text: 'x', colour: 'red' }, message: /unknown field "colour"/ },
    { what: 'forged from', frame: { type: 'send', room: 'lobby', text: 'x', from: 'mallory' }, message: /unknown field "from"/ },
    { what: 'null optional ref', frame: { type: 'send', room: 'lobby', text: 'x', ref: null }, message: /"ref" must be left out rather than sent as null/ },
    { what: 'null since', frame: { type: 'join', room: 'lobby', since: null }, message: /"since" must be left out rather than sent as null/ },
    { what: 'non-string since', frame: { type: 'join', room: 'lobby', since: 42 }, message: /"since"/ },
    { what: 'missing room', frame: { type: 'send', text: 'x' }, message: /"room" is required/ },
    { what: 'bad room characters', frame: { type: 'join', room: 'no spaces' }, message: /"room"/ },
    { what: 'room too long', frame: { type: 'join', room: 'r'.repeat(65) }, message: /"room"/ },
    { what: 'empty text', frame: { type: 'send', room: 'lobby', text: '' }, message: /"text"/ },
    { what: 'text too long', frame: { type: 'send', room: 'lobby', text: 'x'.repeat(4097) }, message: /"text"/ },
    { what: 'ref too long', frame: { type: 'send', room: 'lobby', text: 'x', ref: 'r'.repeat(65) }, message: /"ref"/ }
  ]
  for (const { what, frame, message } of cases) {
    const error = await refusal(client, frame, what)
    t.equal(error.code, 'invalid_frame', `${what}: code`)
    t.match(error.message, message, `${what}: the message says what was wrong`)
    t.notOk('ref' in error, `${what}: no ref to echo`)
  }

  t.equal(await metric(server.url, 'chat_errors_total', { code: 'invalid_frame' }), cases.length, 'each refusal counted once')

  // Nothing refused was published, and the connection still works.
  t.equal(client.messages('lobby').length, 0, 'no refused frame was published')
  t.equal(client.closeCode, undefined, 'still open')
  const id = await client.sendAndAck('lobby', 'still here')
  const message = await client.next((f) => f.type === 'message' && f.id === id, 'own message')
  t.match(message, { room: 'lobby', from: 'alice', text: 'still here' })
})

t.test('invalid_frame echoes a valid ref', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  const unknownField = await refusal(client, { type: 'join', room: 'lobby', extra: 1, ref: 'r-extra' }, 'extra field with ref')
  t.match(unknownField, { code: 'invalid_frame', ref: 'r-extra' })
  const badRoom = await refusal(client, { type: 'leave', room: '', ref: 'r-room' }, 'bad room with ref')
  t.match(badRoom, { code: 'invalid_frame', ref: 'r-room' })
  const badText = await refusal(client, { type: 'send', room: 'lobby', text: 7, ref: 'r-text' }, 'bad text with ref')
  t.match(badText, { code: 'invalid_frame', ref: 'r-text' })
})

t.test('lengths are counted in code points', async (t) => {
  const server = await startServer(t, { MAX_TEXT_LENGTH: '5' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  await client.join('lobby')
  // Five astral characters are ten UTF-16 units but five code points.
  const five = '😀🎉🚀🌍🔥'
  const id = await client.sendAndAck('lobby', five)
  const message = await client.next((f) => f.type === 'message' && f.id === id, 'five emoji')
  t.equal(message.text, five, 'text arrives intact')
  const error = await refusal(client, { type: 'send', room: 'lobby', text: five + '😀', ref: 'six' }, 'six emoji')
  t.match(error, { code: 'invalid_frame', ref: 'six', message: /"text"/ })
  // A 64-code-point ref made of astral characters is 128 UTF-16 units, and valid.
  const longRef = '😀'.repeat(64)
  client.send({ type: 'send', room: 'lobby', text: 'ok', ref: longRef })
  const ack = await client.next((f) => f.type === 'ack' && f.ref === longRef, 'ack with a 64-code-point ref')
  t.type(ack.id, 'string')
})

t.test('not_joined: send and leave outside a room, with ref', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  const other = await TestClient.open(t, server.wsUrl, 'bob')
  await other.join('lobby')

  const send = await refusal(client, { type: 'send', room: 'lobby', text: 'hi', ref: 's1' }, 'send before join')
  t.match(send, { type: 'error', code: 'not_joined', ref: 's1' })
  t.match(send.message, /lobby/)
  const leave = await refusal(client, { type: 'leave', room: 'lobby', ref: 'l1' }, 'leave before join')
  t.match(leave, { type: 'error', code: 'not_joined', ref: 'l1' })
  const noRef = await refusal(client, { type: 'leave', room: 'lobby' }, 'leave without ref')
  t.equal(noRef.code, 'not_joined')
  t.notOk('ref' in noRef, 'no ref when none was given')

  // After join and leave the client is out again.
  await client.join('lobby')
  client.send({ type: 'leave', room: 'lobby' })
  await client.next((f) => f.type === 'left' && f.room === 'lobby', 'left')
  const after = await refusal(client, { type: 'send', room: 'lobby', text: 'late', ref: 's2' }, 'send after leave')
  t.match(after, { code: 'not_joined', ref: 's2' })

  // Nothing refused reached the room.
  await other.barrier()
  t.same(other.messages('lobby'), [], 'the member saw no refused message')
  t.equal(client.closeCode, undefined, 'still open')
})

t.test('rate_limited: sends beyond the burst are refused with ref, then allowed again', async (t) => {
  const server = await startServer(t, { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '3' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  await client.join('lobby')
  const from = client.frames.length
  for (let i = 1; i <= 5; i++) client.send({ type: 'send', room: 'lobby', text: `m${i}`, ref: `r${i}` })
  await client.until((frames) => frames.slice(from).filter((f) => f.type === 'ack' || f.type === 'error').length === 5, 'five replies')
  // Replies are matched by ref: an ack follows the store, a refusal is immediate.
  const replies = new Map(client.frames.slice(from)
    .filter((f) => f.type === 'ack' || f.type === 'error')
    .map((f) => [f.ref, f.type === 'ack' ? 'ack' : f.code]))
  t.same(Object.fromEntries(replies), { r1: 'ack', r2: 'ack', r3: 'ack', r4: 'rate_limited', r5: 'rate_limited' })
  t.match(client.errors('rate_limited')[0]?.message, /slow down/)
  await client.barrier()
  t.same(client.messages('lobby').map((f) => f.text), ['m1', 'm2', 'm3'], 'refused sends were not published')

  // The bucket refills at one per second; waiting is bounded by the reply timeout.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const id = await client.sendAndAck('lobby', 'after a pause')
  t.type(id, 'string', 'a send is accepted once a token is back')
  t.equal(client.closeCode, undefined, 'still open')
})

t.test('the rate limit counts send frames only', async (t) => {
  const server = await startServer(t, { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '2' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  for (let i = 0; i < 10; i++) {
    await client.join('lobby')
    const from = client.frames.length
    client.send({ type: 'leave', room: 'lobby' })
    await client.next((f) => f.type === 'left', `left ${i}`, from)
  }
  await client.join('lobby')
  for (let i = 0; i < 10; i++) client.send('not json')
  await client.until((frames) => frames.filter((f) => f.type === 'error').length >= 10, 'ten invalid_frame errors')
  t.same(client.errors('rate_limited'), [], 'joins, leaves and invalid frames took no token')
  t.type(await client.sendAndAck('lobby', 'one'), 'string')
  t.type(await client.sendAndAck('lobby', 'two'), 'string', 'the whole burst is still there')
})

t.test('too_many_rooms: joins beyond the limit are refused with ref', async (t) => {
  const server = await startServer(t, { MAX_ROOMS_PER_CONNECTION: '2' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  await client.join('a')
  await client.join('b')
  const error = await refusal(client, { type: 'join', room: 'c', ref: 'j3' }, 'third join')
  t.match(error, { code: 'too_many_rooms', ref: 'j3' })
  t.match(error.message, /2 rooms/)
  // Refused means not joined.
  const send = await refusal(client, { type: 'send', room: 'c', text: 'x', ref: 'sc' }, 'send to the refused room')
  t.match(send, { code: 'not_joined', ref: 'sc' })
  // Joining a room again is not a room beyond the limit.
  const again = await client.join('a')
  t.match(again, { room: 'a', members: ['alice'] })
  // Leaving one makes room for another.
  client.send({ type: 'leave', room: 'b' })
  await client.next((f) => f.type === 'left' && f.room === 'b', 'left b')
  const joined = await client.join('c')
  t.match(joined, { room: 'c', members: ['alice'] })
  t.equal(client.closeCode, undefined, 'still open')
})

t.test('ack carries the ref and the id of the stored message; no ref, no ack', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  await client.join('lobby')
  const from = client.frames.length
  client.send({ type: 'send', room: 'lobby', text: 'no ref' })
  client.send({ type: 'send', room: 'lobby', text: 'with ref', ref: 'mine' })
  await client.until((frames) => frames.slice(from).filter((f) => f.type === 'message').length === 2, 'two messages')
  const ack = await client.next((f) => f.type === 'ack', 'ack', from)
  await client.barrier()
  const acks = client.ofType('ack')
  t.equal(acks.length, 1, 'only the send with a ref is acknowledged')
  t.same(Object.keys(ack).sort(), ['id', 'ref', 'type'])
  t.equal(ack.ref, 'mine')
  const [first, second] = client.messages('lobby')
  t.equal(ack.id, second?.id, 'the ack names the message it stored')
  t.not(first?.id, second?.id, 'ids are unique')
})
