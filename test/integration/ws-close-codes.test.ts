// Close codes of PROTOCOL §1 and §3 that a client causes, each received as a
// real close frame over a real socket (1013 and 1001 have their own files).
import t, { type Test } from 'tap'
import { RATE_LIMIT_STRIKES_BEFORE_CLOSE } from '../../lib/limits.js'
import { metric } from '../helpers/http.js'
import { waitFor } from '../helpers/wait.js'
import { startServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'

/** The server forgets the connection once it is closed. */
async function connectionsDropTo (t: Test, url: string, count: number): Promise<void> {
  await waitFor(async () => (await metric(url, 'chat_connections')) === count, `chat_connections = ${count}`)
  t.pass(`the server counts ${count} connection(s)`)
}

t.test('1003: a binary frame closes the connection', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  const bystander = await TestClient.open(t, server.wsUrl, 'bob')
  await client.join('lobby')
  client.socket.send(Buffer.from(JSON.stringify({ type: 'send', room: 'lobby', text: 'binary' })), { binary: true })
  const closed = await client.waitClosed()
  t.equal(closed.code, 1003)
  t.match(closed.reason, /binary/)
  t.same(client.messages('lobby'), [], 'the binary frame was not published')
  await connectionsDropTo(t, server.url, 1)
  // Only the offender is closed.
  await bystander.barrier()
  t.equal(bystander.closeCode, undefined, 'another connection is untouched')
})

t.test('1007: a text frame that is not valid UTF-8 closes the connection', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  client.socket.send(Buffer.from([0xff, 0xfe]), { binary: false })
  const closed = await client.waitClosed()
  t.equal(closed.code, 1007)
  await connectionsDropTo(t, server.url, 0)
})

t.test('1007: a truncated multi-byte sequence inside JSON also closes', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  await client.join('lobby')
  const head = Buffer.from('{"type":"send","room":"lobby","text":"')
  const tail = Buffer.from('"}')
  // 0xe2 0x82 starts a three-byte sequence (€ is e2 82 ac) that never ends.
  client.socket.send(Buffer.concat([head, Buffer.from([0xe2, 0x82]), tail]), { binary: false })
  const closed = await client.waitClosed()
  t.equal(closed.code, 1007)
  t.same(client.messages('lobby'), [], 'nothing was published')
})

t.test('1008: repeated rate-limit abuse closes the connection', async (t) => {
  const server = await startServer(t, { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '1' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  const member = await TestClient.open(t, server.wsUrl, 'bob')
  await client.join('lobby')
  await member.join('lobby')
  // One send takes the only token; the next STRIKES are refused, the last of
  // them with a close. The extra frames after it must be ignored.
  const total = 1 + RATE_LIMIT_STRIKES_BEFORE_CLOSE + 20
  for (let i = 0; i < total; i++) client.send({ type: 'send', room: 'lobby', text: `m${i}`, ref: `r${i}` })
  const closed = await client.waitClosed()
  t.equal(closed.code, 1008)
  t.match(closed.reason, /rate limit/)
  t.equal(client.errors('rate_limited').length, RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1,
    'each refused send before the closing one got rate_limited')
  t.equal(client.errors().length, client.errors('rate_limited').length, 'no other error')
  await connectionsDropTo(t, server.url, 1)
  await member.barrier()
  t.same(member.messages('lobby').map((f) => f.text), ['m0'], 'only the send within the limit was published')
  t.equal(await metric(server.url, 'chat_rate_limited_frames_total'), RATE_LIMIT_STRIKES_BEFORE_CLOSE)
})

t.test('1008 needs consecutive strikes: an accepted send resets the count', async (t) => {
  const server = await startServer(t, { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '1' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  await client.join('lobby')
  // Just under the limit, twice, with a refilled token in between.
  for (let round = 0; round < 2; round++) {
    const from = client.frames.length
    const count = RATE_LIMIT_STRIKES_BEFORE_CLOSE
    for (let i = 0; i < count; i++) client.send({ type: 'send', room: 'lobby', text: `m${round}-${i}`, ref: `r${round}-${i}` })
    await client.until((frames) => frames.slice(from).filter((f) => f.type === 'ack' || f.type === 'error').length === count, `round ${round} replies`)
    t.equal(client.frames.slice(from).filter((f) => f.type === 'error' && f.code === 'rate_limited').length, count - 1, `round ${round}: ${count - 1} strikes`)
    await new Promise((resolve) => setTimeout(resolve, 1100))
  }
  await client.barrier()
  t.equal(client.closeCode, undefined, 'still open after two rounds of fewer strikes than the limit')
})

t.test('1009: a frame larger than MAX_PAYLOAD_BYTES closes the connection; one at the limit does not', async (t) => {
  const server = await startServer(t, { MAX_PAYLOAD_BYTES: '1024', MAX_TEXT_LENGTH: '2000' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  await client.join('lobby')

  const envelope = JSON.stringify({ type: 'send', room: 'lobby', text: '', ref: 'fits' })
  const fits = JSON.stringify({ type: 'send', room: 'lobby', text: 'x'.repeat(1024 - envelope.length), ref: 'fits' })
  t.equal(Buffer.byteLength(fits), 1024, 'the first frame is exactly MAX_PAYLOAD_BYTES')
  client.send(fits)
  const ack = await client.next((f) => f.type === 'ack' && f.ref === 'fits', 'ack of the frame at the limit')
  t.type(ack.id, 'string')

  const tooBig = JSON.stringify({ type: 'send', room: 'lobby', text: 'y'.repeat(1024 - envelope.length + 1), ref: 'over' })
  t.equal(Buffer.byteLength(tooBig), 1025)
  client.send(tooBig)
  const closed = await client.waitClosed()
  t.equal(closed.code, 1009)
  t.equal(client.messages('lobby').length, 1, 'the oversized frame was not published')
  await connectionsDropTo(t, server.url, 0)
})

t.test('1009 with a frame far beyond the limit', async (t) => {
  const server = await startServer(t, { MAX_PAYLOAD_BYTES: '1024' })
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  client.send(JSON.stringify({ type: 'send', room: 'lobby', text: 'z'.repeat(200_000) }))
  const closed = await client.waitClosed()
  t.equal(closed.code, 1009)
  await connectionsDropTo(t, server.url, 0)
})
