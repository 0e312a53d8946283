// Cluster mode over a real redis-server: fan-out across nodes, one order for
// everyone, resume on another node, cluster-wide history and idempotency.
import t from 'tap'
import { TEST_TOKEN, type RunningServer } from '../helpers/server.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'
import { broadcast } from '../helpers/http.js'
import { ids, startCluster } from '../helpers/cluster.js'

t.test('a message sent on A reaches B once; a broadcast on B reaches A', async (t) => {
  const { a, b } = await startCluster(t)
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  await alice.join('room1')
  const joined = await bob.join('room1')
  t.same([...(joined.members as string[])].sort(), ['alice', 'bob'], 'members span both nodes')

  alice.send({ type: 'send', room: 'room1', text: 'hello from a', ref: 'r1' })
  const ack = await alice.next((f) => f.type === 'ack', 'ack')
  await bob.until((frames) => frames.some((f) => f.type === 'message' && f.id === ack.id), 'message on b')

  const sent = await broadcast(b.url, 'room1', 'from the back office', 'ops')
  await alice.until((frames) => frames.some((f) => f.type === 'message' && f.id === sent.id), 'broadcast on a')
  await bob.until((frames) => frames.some((f) => f.type === 'message' && f.id === sent.id), 'broadcast on b')

  t.same(ids(bob.messages('room1')), [ack.id, sent.id], 'b got each message once')
  t.same(ids(alice.messages('room1')), [ack.id, sent.id], 'a got each message once')
  t.match(alice.messages('room1')[1], { from: 'ops', text: 'from the back office' })
})

t.test('concurrent senders on both nodes: every member sees one identical order', async (t) => {
  const { a, b } = await startCluster(t)
  const senderA = await TestClient.open(t, a.wsUrl, 'sa')
  const senderB = await TestClient.open(t, b.wsUrl, 'sb')
  const readerA = await TestClient.open(t, a.wsUrl, 'ra')
  const readerB = await TestClient.open(t, b.wsUrl, 'rb')
  for (const c of [senderA, senderB, readerA, readerB]) await c.join('busy')
  const PER_SENDER = 100
  for (let i = 0; i < PER_SENDER; i++) {
    senderA.send({ type: 'send', room: 'busy', text: `a${i}` })
    senderB.send({ type: 'send', room: 'busy', text: `b${i}` })
  }
  const everyone = [senderA, senderB, readerA, readerB]
  for (const c of everyone) await c.until((frames) => frames.filter((f) => f.type === 'message').length >= 2 * PER_SENDER, 'all messages', 10_000)
  const reference = ids(readerA.messages('busy'))
  t.equal(new Set(reference).size, 2 * PER_SENDER, 'no duplicates')
  for (const c of everyone) t.same(ids(c.messages('busy')), reference, 'same order on every member of every node')
  // Each sender's own messages keep their order.
  const texts = readerB.messages('busy').map((f) => f.text as string)
  t.same(texts.filter((x) => x.startsWith('a')), Array.from({ length: PER_SENDER }, (_, i) => `a${i}`))
})

t.test('disconnect from A, reconnect to B with since: exactly the missed messages', async (t) => {
  const { a, b } = await startCluster(t)
  const sender = await TestClient.open(t, b.wsUrl, 'sender')
  await sender.join('resume')
  const first = await TestClient.open(t, a.wsUrl, 'roamer')
  await first.join('resume')
  for (let i = 0; i < 5; i++) await broadcast(a.url, 'resume', `before ${i}`)
  await first.until((frames) => frames.filter((f) => f.type === 'message').length === 5, 'five messages')
  const since = first.messages('resume').at(-1)?.id as string
  first.close()
  await first.waitClosed()

  const missed: string[] = []
  for (let i = 0; i < 20; i++) {
    sender.send({ type: 'send', room: 'resume', text: `missed ${i}`, ref: `m${i}` })
    missed.push((await sender.next((f) => f.type === 'ack' && f.ref === `m${i}`, `ack m${i}`)).id as string)
  }
  const again = await TestClient.open(t, b.wsUrl, 'roamer')
  const joined = await again.join('resume', since)
  t.equal(joined.recovered, true)
  await again.until((frames) => frames.filter((f) => f.type === 'message').length >= 20, 'the missed messages')
  t.same(ids(again.messages('resume')), missed, 'exactly the missed messages, in order')
})

t.test('history API and idempotency keys are cluster-wide', async (t) => {
  const { a, b } = await startCluster(t)
  const post = (server: RunningServer, text: string) => fetch(`${server.url}/rooms/ops/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': 'deploy-42' },
    body: JSON.stringify({ text })
  })
  const first = await post(a, 'deploy 42 started')
  t.equal(first.status, 202)
  const firstBody = await first.json() as { id: string }
  const repeat = await post(b, 'a different body')
  t.equal(repeat.status, 202)
  t.same(await repeat.json(), firstBody, 'the repeat on another node gets the first answer')

  const history = await fetch(`${b.url}/rooms/ops/messages`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
  const body = await history.json() as { messages: Frame[] }
  t.equal(body.messages.length, 1, 'published once')
  t.match(body.messages[0], { text: 'deploy 42 started', id: firstBody.id })
})
