// Room order (PROTOCOL §3): messages of one room reach every member in one
// order, the same for all, each once, whoever sent them.
import t from 'tap'
import { broadcast } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'

const TOTAL = 200
const FAST = { RATE_LIMIT_PER_SEC: '10000', RATE_LIMIT_BURST: '10000', FRAME_RATE_PER_SEC: '10000', FRAME_BURST: '10000' }

t.test('two interleaved senders: every member gets all messages in one order', async (t) => {
  const server = await startServer(t, FAST)
  const names = ['ann', 'ben', 'cat', 'dan']
  const clients = await Promise.all(names.map((name) => TestClient.connect(`${server.wsUrl}?name=${name}`)))
  t.teardown(() => { for (const client of clients) client.close() })
  for (const client of clients) await client.join('race')
  const [ann, ben] = clients as [TestClient, TestClient]

  // Alternate frames from both senders without waiting for replies, letting
  // the event loop turn now and then so the server reads both sockets in turns.
  for (let i = 0; i < TOTAL / 2; i++) {
    ann.send({ type: 'send', room: 'race', text: `ann-${i}`, ref: `a${i}` })
    ben.send({ type: 'send', room: 'race', text: `ben-${i}`, ref: `b${i}` })
    if (i % 5 === 4) await new Promise((resolve) => setImmediate(resolve))
  }
  for (const client of clients) {
    await client.until((frames) => frames.filter((f) => f.type === 'message').length >= TOTAL, 'all messages', 15_000)
  }
  for (const client of clients) await client.barrier()

  const reference = clients[0]?.messages('race') ?? []
  t.equal(reference.length, TOTAL, 'the first member got every message')
  t.equal(new Set(reference.map((f) => f.id)).size, TOTAL, 'no duplicate ids')
  const texts = reference.map((f) => f.text as string)
  const switches = texts.filter((text, i) => i > 0 && text.slice(0, 3) !== texts[i - 1]?.slice(0, 3)).length
  t.comment(`the room order switches sender ${switches} times`)
  t.same([...texts].sort(), [...names.slice(0, 2).flatMap((name) => Array.from({ length: TOTAL / 2 }, (_, i) => `${name}-${i}`))].sort(),
    'exactly the messages sent, each once')
  for (const [index, client] of clients.entries()) {
    const got = client.messages('race')
    t.equal(got.length, TOTAL, `${names[index]}: no extra message`)
    t.same(got.map((f) => f.id), reference.map((f) => f.id), `${names[index]}: same order as everyone else`)
  }
  // Each sender's own messages keep the order it sent them in, and `from` is the sender's name.
  for (const name of ['ann', 'ben']) {
    const own = reference.filter((f) => f.from === name).map((f) => f.text)
    t.same(own, Array.from({ length: TOTAL / 2 }, (_, i) => `${name}-${i}`), `${name}'s messages in the order sent`)
  }
  // Acks name the ids the members saw, for the right texts.
  const byId = new Map(reference.map((f) => [f.id, f.text]))
  for (const [sender, prefix] of [[ann, 'a'], [ben, 'b']] as const) {
    const acks = sender.ofType('ack')
    t.equal(acks.length, TOTAL / 2, `${prefix}: one ack per send`)
    t.ok(acks.every((ack) => byId.get(ack.id) === `${prefix === 'a' ? 'ann' : 'ben'}-${String(ack.ref).slice(1)}`), `${prefix}: each ack names its own message`)
  }
})

t.test('socket and HTTP broadcast senders share one room order', async (t) => {
  const server = await startServer(t, FAST)
  const names = ['ann', 'ben', 'cat']
  const clients = await Promise.all(names.map((name) => TestClient.connect(`${server.wsUrl}?name=${name}`)))
  t.teardown(() => { for (const client of clients) client.close() })
  for (const client of clients) await client.join('mixed')
  const [ann] = clients as [TestClient]

  const posts: Array<Promise<unknown>> = []
  for (let i = 0; i < 50; i++) {
    ann.send({ type: 'send', room: 'mixed', text: `ws-${i}` })
    posts.push(broadcast(server.url, 'mixed', `http-${i}`, 'ops'))
  }
  await Promise.all(posts)
  for (const client of clients) {
    await client.until((frames) => frames.filter((f) => f.type === 'message').length >= 100, 'all messages', 15_000)
  }
  const reference = clients[0]?.messages('mixed').map((f) => f.id) ?? []
  t.equal(new Set(reference).size, 100, '100 distinct ids')
  for (const [index, client] of clients.entries()) {
    t.same(client.messages('mixed').map((f) => f.id), reference, `${names[index]}: same order`)
  }
  const fromOps = clients[1]?.messages('mixed').filter((f) => f.from === 'ops') ?? []
  t.equal(fromOps.length, 50, 'HTTP messages carry the broadcast `from`')
})

t.test('message fields: server-set from, numeric ts, ids unique within the room', async (t) => {
  const server = await startServer(t)
  const alice = await TestClient.connect(`${server.wsUrl}?name=alice`)
  t.teardown(() => alice.close())
  await alice.join('fields')
  const before = Date.now()
  const id = await alice.sendAndAck('fields', 'héllo wörld ✓ 😀')
  const after = Date.now()
  const message = await alice.next((f) => f.type === 'message' && f.id === id, 'own message')
  t.same(Object.keys(message).sort(), ['from', 'id', 'room', 'text', 'ts', 'type'])
  t.match(message, { room: 'fields', from: 'alice', text: 'héllo wörld ✓ 😀' })
  t.type(message.ts, 'number')
  t.ok((message.ts as number) >= before - 1000 && (message.ts as number) <= after + 1000, 'ts is milliseconds since the epoch, now')
  const system = await broadcast(server.url, 'fields', 'from HTTP')
  const fromHttp = await alice.next((f) => f.type === 'message' && f.id === system.id, 'broadcast message')
  t.match(fromHttp, { room: 'fields', text: 'from HTTP', from: String }, 'an HTTP broadcast arrives as a message frame')
  t.equal(fromHttp.ts, system.ts, 'the 202 body and the frame agree on ts')
  t.not(fromHttp.id, id)
})
