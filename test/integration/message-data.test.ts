// Structured `data` end to end, over real sockets, on one node and on a
// cluster of two over a real redis-server: sent with `send` and with the HTTP
// broadcast, it comes back byte for byte as its compact JSON in `message`
// frames, in the history API and in a resume; MAX_DATA_BYTES is exact; what
// is not an object is refused with `invalid_frame` / 400 naming `data`.
import t, { type Test } from 'tap'
import { startNode } from '../helpers/cluster.js'
import { RedisServer } from '../helpers/redis-server.js'
import { startServer, TEST_TOKEN, type RunningServer } from '../helpers/server.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

/** Small enough to reach; the bound is the same code at any size. */
const MAX_DATA_BYTES = 100
const ENV = { MAX_DATA_BYTES: String(MAX_DATA_BYTES) }

/** `data` as a client may write it: spaces, numbers spelled several ways, escapes, two-byte and astral characters. */
const SENT_DATA = '{ "kind" : "order", "qty": 2.50, "big": 1E3, "list": [ 1, null, true, "é😀" ], "esc": "\\" \\/ \\u0041", "o": { } }'
/** What every reader gets: the compact JSON of the same value. */
const COMPACT = JSON.stringify(JSON.parse(SENT_DATA))
const BROADCAST_DATA = { source: 'crm', ticket: 42, tags: ['vip'], nested: { ok: true } }

/** Every raw text frame `client` receives, as sent on the wire. */
function rawFrames (client: TestClient): string[] {
  const raw: string[] = []
  client.socket.on('message', (data) => raw.push(data.toString()))
  return raw
}

async function post (server: RunningServer, room: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}/rooms/${room}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body)
  })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

async function history (server: RunningServer, room: string, since?: string): Promise<{ text: string, messages: Frame[] }> {
  const response = await fetch(`${server.url}/rooms/${room}/messages${since === undefined ? '' : `?since=${since}`}`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` }
  })
  const text = await response.text()
  return { text, messages: (JSON.parse(text) as { messages: Frame[] }).messages }
}

/** The raw frame of the message `id`, once it is there. */
async function rawMessage (client: TestClient, raw: string[], id: string): Promise<string> {
  await client.until(() => raw.some((frame) => frame.includes(`"id":${JSON.stringify(id)}`)), `the raw frame of ${id}`)
  return raw.find((frame) => frame.includes(`"id":${JSON.stringify(id)}`)) as string
}

/**
 * The round trip: `publisher` is where alice sends and the back office
 * posts, `reader` where bob reads, the history is asked and carol resumes
 * (the same node on a single node; the other node in a cluster).
 */
async function roundTrip (t: Test, publisher: RunningServer, reader: RunningServer): Promise<void> {
  const alice = await TestClient.open(t, publisher.wsUrl, 'alice')
  const bob = await TestClient.open(t, reader.wsUrl, 'bob')
  const bobRaw = rawFrames(bob)
  await alice.join('shop')
  await bob.join('shop')

  const plainId = await alice.sendAndAck('shop', 'no data')
  alice.send(`{"type":"send","room":"shop","text":"an order","data":${SENT_DATA},"ref":"with-data"}`)
  const ack = await alice.next((f) => f.ref === 'with-data', 'the ack of the send with data')
  t.equal(ack.type, 'ack', 'the send with data is acknowledged')
  const dataId = ack.id as string
  const posted = await post(publisher, 'shop', { text: 'from the CRM', from: 'crm', data: BROADCAST_DATA })
  t.equal(posted.status, 202)
  const apiId = posted.body.id as string

  // Live, on the reader's node: parsed and raw.
  const plainRaw = await rawMessage(bob, bobRaw, plainId)
  t.notMatch(plainRaw, /"data"/, 'a message without data has no data field')
  const dataRaw = await rawMessage(bob, bobRaw, dataId)
  t.ok(dataRaw.endsWith(`,"data":${COMPACT}}`), `the frame ends with the compact data: ${dataRaw}`)
  t.same(JSON.parse(dataRaw).data, JSON.parse(SENT_DATA), 'the same JSON value')
  const apiRaw = await rawMessage(bob, bobRaw, apiId)
  t.ok(apiRaw.endsWith(`,"api":true,"data":${JSON.stringify(BROADCAST_DATA)}}`), `the broadcast frame carries its data: ${apiRaw}`)
  t.match(bob.messages('shop').map((f) => f.data), [undefined, JSON.parse(COMPACT), BROADCAST_DATA])
  // The sender sees its own message like everyone else.
  const own = await alice.next((f) => f.type === 'message' && f.id === dataId, 'alice\'s own message')
  t.same(own.data, JSON.parse(COMPACT))

  // The history API, on the reader's node.
  const page = await history(reader, 'shop')
  t.same(page.messages.map((m) => m.id), [plainId, dataId, apiId])
  t.notOk('data' in (page.messages[0] as Frame), 'no data, no field')
  t.ok(page.text.includes(`"data":${COMPACT}}`), 'the answer holds the compact data')
  t.same(page.messages[1]?.data, JSON.parse(SENT_DATA))
  t.same(page.messages[2], { room: 'shop', id: apiId, from: 'crm', text: 'from the CRM', ts: page.messages[2]?.ts, api: true, data: BROADCAST_DATA })
  t.same((await history(reader, 'shop', plainId)).messages.map((m) => m.data), [JSON.parse(COMPACT), BROADCAST_DATA], 'and after `since`')

  // A resume from before the data on the reader's node, and a plain join's history on the publisher's.
  const carol = await TestClient.open(t, reader.wsUrl, 'carol')
  const carolRaw = rawFrames(carol)
  const joined = await carol.join('shop', plainId)
  t.equal(joined.recovered, true)
  await carol.until((frames) => frames.filter((f) => f.type === 'message').length === 2, 'the two messages after since')
  t.ok((await rawMessage(carol, carolRaw, dataId)).endsWith(`,"data":${COMPACT}}`), 'resumed byte for byte')
  t.same(carol.messages('shop').map((f) => f.data), [JSON.parse(COMPACT), BROADCAST_DATA])
  const dave = await TestClient.open(t, publisher.wsUrl, 'dave')
  const daveRaw = rawFrames(dave)
  await dave.join('shop')
  await dave.until((frames) => frames.filter((f) => f.type === 'message').length === 3, 'the recent history')
  t.ok((await rawMessage(dave, daveRaw, dataId)).endsWith(`,"data":${COMPACT}}`), 'the history on join, byte for byte')
  t.notMatch(await rawMessage(dave, daveRaw, plainId), /"data"/)
}

/** MAX_DATA_BYTES exactly, one byte over, and what is not an object, over both doors. */
async function bounds (t: Test, server: RunningServer): Promise<void> {
  const alice = await TestClient.open(t, server.wsUrl, 'alice')
  await alice.join('bounds')
  // {"p":"…"} is 8 bytes around the padding; é is two bytes.
  const exact = { p: 'é'.repeat((MAX_DATA_BYTES - 8) / 2) }
  const over = { p: 'é'.repeat((MAX_DATA_BYTES - 8) / 2 - 1) + 'xyz' }
  t.equal(Buffer.byteLength(JSON.stringify(exact)), MAX_DATA_BYTES)
  t.equal(Buffer.byteLength(JSON.stringify(over)), MAX_DATA_BYTES + 1)

  async function answer (frame: Record<string, unknown>, ref: string): Promise<Frame> {
    alice.send({ ...frame, ref })
    return alice.next((f) => f.ref === ref && (f.type === 'ack' || f.type === 'error'), ref)
  }
  t.match(await answer({ type: 'send', room: 'bounds', text: 'x', data: exact }, 'exact'), { type: 'ack' }, 'exactly MAX_DATA_BYTES is accepted')
  t.match(await answer({ type: 'send', room: 'bounds', text: 'x', data: over }, 'over'), {
    type: 'error',
    code: 'invalid_frame',
    message: `"data": expected at most ${MAX_DATA_BYTES} bytes (MAX_DATA_BYTES) of compact JSON, got ${MAX_DATA_BYTES + 1}`
  }, 'one byte over is invalid_frame, naming the limit')
  const refusals: Array<[unknown, RegExp]> = [
    [[], /"data": expected a JSON object, not an array/],
    [[{ a: 1 }], /not an array/],
    ['{"a":1}', /"data": expected a JSON object, not a string/],
    [7, /not a number/],
    [true, /not a boolean/],
    [null, /"data" must be left out rather than sent as null/]
  ]
  for (const [i, [data, message]] of refusals.entries()) {
    t.match(await answer({ type: 'send', room: 'bounds', text: 'x', data }, `bad-${i}`), { type: 'error', code: 'invalid_frame', message }, `${JSON.stringify(data)} refused`)
  }
  t.equal(alice.closeCode, undefined, 'the connection stays open')
  await alice.barrier()
  t.equal(alice.messages('bounds').length, 1, 'only the exact one was published')

  t.equal((await post(server, 'bounds', { text: 'x', data: exact })).status, 202, 'the broadcast takes exactly MAX_DATA_BYTES')
  t.same(await post(server, 'bounds', { text: 'x', data: over }), {
    status: 400,
    body: { error: 'Bad Request', field: 'data', message: `expected at most ${MAX_DATA_BYTES} bytes (MAX_DATA_BYTES) of compact JSON, got ${MAX_DATA_BYTES + 1}` }
  })
  const httpRefusals: Array<[unknown, string]> = [
    [[], 'expected a JSON object, not an array'],
    ['{"a":1}', 'expected a JSON object, not a string'],
    [7, 'expected a JSON object, not a number'],
    [false, 'expected a JSON object, not a boolean'],
    [null, 'expected a JSON object, not null']
  ]
  for (const [data, message] of httpRefusals) {
    t.same(await post(server, 'bounds', { text: 'x', data }), { status: 400, body: { error: 'Bad Request', field: 'data', message } }, `broadcast ${JSON.stringify(data)} refused`)
  }
  t.match(await post(server, 'bounds', { data: { a: 1 } }), { status: 400, body: { field: 'text' } }, 'text stays required')

  // Idempotency-Key as before: the repeat answers the first 202, whatever its data, and publishes nothing.
  const first = await post(server, 'bounds', { text: 'once', data: { n: 1 } }, { 'idempotency-key': 'data-1' })
  const again = await post(server, 'bounds', { text: 'once', data: { n: 2 } }, { 'idempotency-key': 'data-1' })
  t.equal(first.status, 202)
  t.same(again, first, 'the first answer again')
  const kept = (await history(server, 'bounds')).messages.filter((m) => m.text === 'once')
  t.same(kept.map((m) => m.data), [{ n: 1 }], 'one message, with the first call\'s data')
}

t.test('single node: data round-trips through send, broadcast, history and resume', async (t) => {
  const server = await startServer(t, ENV)
  await roundTrip(t, server, server)
})

t.test('single node: the bound and the refusals', async (t) => {
  await bounds(t, await startServer(t, ENV))
})

t.test('cluster: data round-trips from one node to the other through Redis', async (t) => {
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a', ENV)
  const b = await startNode(t, redis, 'b', ENV)
  await roundTrip(t, a, b)
})

t.test('cluster: the bound and the refusals', async (t) => {
  const redis = await RedisServer.start(t)
  await bounds(t, await startNode(t, redis, 'a', ENV))
})
