// Failover with real redis-server processes: a master, its replica, two nodes
// on REDIS_URL through a TCP proxy (the address a client of a failover-aware
// setup keeps), the master SIGKILLed and the replica promoted, the proxy
// retargeted to it. The promises under test (PROTOCOL §5): no two different
// messages share an id, no new message is dropped as a duplicate, clients stay
// connected, readiness dips and returns; with REDIS_WAIT_REPLICAS=1 nothing
// acknowledged is lost; with 0 an unreplicated tail may be, and resuming past
// it is not recovered.
import t, { type Test } from 'tap'
import { type RunningServer, TEST_TOKEN } from '../helpers/server.js'
import { caughtUp, SentinelSet, startReplica } from '../helpers/redis-sentinel.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { type Frame, TestClient } from '../helpers/ws-client.js'
import { readiness, startNode } from '../helpers/cluster.js'
import { sleep, waitFor } from '../helpers/wait.js'

/** Reconnect backoff (up to 2 s) and a probe round: the nodes are back within this once Redis is. */
const RECOVERY_TIMEOUT_MS = 15_000

/** Two ready nodes on Redis through `proxy`, a member of `room` on each. */
async function nodesWithMembers (t: Test, proxy: TcpProxy, room: string, env: Record<string, string> = {}) {
  const redis = { url: `redis://127.0.0.1:${proxy.port}` }
  const a = await startNode(t, redis, 'a', env)
  const b = await startNode(t, redis, 'b', env)
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  await alice.join(room)
  await bob.join(room)
  return { a, b, alice, bob }
}

/** Waits until both nodes answer readiness `status`. */
async function bothReady (nodes: RunningServer[], status: number, what: string): Promise<void> {
  await waitFor(async () => {
    for (const node of nodes) if (await readiness(node.url) !== status) return false
    return true
  }, what, RECOVERY_TIMEOUT_MS, 50)
}

/** Sends and returns the reply (ack or error), waiting longer than a WAIT and a command timeout. */
async function sendFor (client: TestClient, room: string, text: string): Promise<Frame> {
  const ref = `send-${text}`
  const from = client.frames.length
  client.send({ type: 'send', room, text, ref })
  return client.next((frame) => (frame.type === 'ack' || frame.type === 'error') && frame.ref === ref, `the answer to ${text}`, from, 10_000)
}

/** Every id names one message text: never two different messages under one id. */
function assertOneMessagePerId (t: Test, frames: Frame[], who: string): void {
  const byId = new Map<string, string>()
  for (const frame of frames) {
    const seen = byId.get(frame.id as string)
    if (seen !== undefined && seen !== frame.text) t.fail(`${who}: id ${String(frame.id)} named "${seen}" and "${String(frame.text)}"`)
    byId.set(frame.id as string, frame.text as string)
  }
  t.equal(byId.size, frames.length, `${who}: every message once, no id twice`)
}

/** A client joining `room` on `node` with `since`: its `joined` and the messages replayed. */
async function resume (t: Test, node: RunningServer, room: string, since: string) {
  const client = await TestClient.open(t, node.wsUrl, 'resumer')
  const joined = await client.join(room, since)
  await client.barrier()
  return { recovered: joined.recovered, texts: client.messages(room).map((frame) => frame.text) }
}

t.test('REDIS_WAIT_REPLICAS=0, the replica behind: the promoted log goes on in a new epoch; the lost tail is not recovered', async (t) => {
  const master = await RedisServer.start(t)
  // The replica's link goes through a proxy that can cut it: a frozen replica
  // would still find the tail in its socket buffer when it thaws.
  const link = await TcpProxy.start(t, master.port)
  const replica = await startReplica(t, master, link.port)
  const proxy = await TcpProxy.start(t, master.port)
  const { a, b, alice, bob } = await nodesWithMembers(t, proxy, 'room')

  const kept = [await alice.sendAndAck('room', 'kept1'), await alice.sendAndAck('room', 'kept2'), await alice.sendAndAck('room', 'kept3')]
  await caughtUp(master, replica)
  t.equal(link.blackHole(''), 1, 'the replication link is cut')
  const lost = [await alice.sendAndAck('room', 'lost1'), await alice.sendAndAck('room', 'lost2')]
  await bob.until((frames) => frames.filter((f) => f.type === 'message').length === 5, 'bob to see all five')

  await master.stop()
  await bothReady([a, b], 503, 'readiness to dip on both nodes')
  await replica.command('REPLICAOF', 'NO', 'ONE')
  proxy.target = replica.port
  await bothReady([a, b], 200, 'readiness to return on both nodes')

  const fresh = [await alice.sendAndAck('room', 'new1'), await alice.sendAndAck('room', 'new2')]
  for (const client of [alice, bob]) {
    await client.until((frames) => frames.filter((f) => f.type === 'message').length === 7, 'the two new messages')
    await client.barrier()
    const got = client.messages('room')
    t.same(got.map((f) => f.text), ['kept1', 'kept2', 'kept3', 'lost1', 'lost2', 'new1', 'new2'],
      'what was delivered stays delivered; the new messages are not dropped as duplicates')
    assertOneMessagePerId(t, got, client === alice ? 'alice' : 'bob')
    t.equal(client.closeCode, undefined, 'the client stayed connected')
  }
  for (const id of fresh) t.notOk([...kept, ...lost].includes(id), `${id} was never given out before`)

  const pastLoss = await resume(t, b, 'room', lost[0] as string)
  t.equal(pastLoss.recovered, false, 'resuming past the lost tail is not recovered')
  const beforeLoss = await resume(t, a, 'room', kept[1] as string)
  t.same(beforeLoss, { recovered: true, texts: ['kept3', 'new1', 'new2'] }, 'resuming from before it gets what the log holds')
})

t.test('REDIS_WAIT_REPLICAS=1: a message no replica confirmed is a timeout, every acknowledged one survives the failover', async (t) => {
  const master = await RedisServer.start(t)
  const link = await TcpProxy.start(t, master.port)
  const replica = await startReplica(t, master, link.port)
  const proxy = await TcpProxy.start(t, master.port)
  const { a, b, alice, bob } = await nodesWithMembers(t, proxy, 'room', { REDIS_WAIT_REPLICAS: '1' })

  const acked = [await alice.sendAndAck('room', 'one'), await alice.sendAndAck('room', 'two')]
  link.blackHole('')
  t.match(await sendFor(alice, 'room', 'unconfirmed'), { type: 'error', code: 'timeout' }, 'no replica confirmed it in time')
  const broadcast = await fetch(`${b.url}/rooms/room/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'unconfirmed broadcast' })
  })
  t.equal(broadcast.status, 503)
  t.match(await broadcast.json(), { outcome: 'unknown' })

  await master.stop()
  await replica.command('REPLICAOF', 'NO', 'ONE')
  proxy.target = replica.port
  await bothReady([a, b], 200, 'readiness to return on both nodes')
  t.match(await sendFor(alice, 'room', 'alone'), { type: 'error', code: 'timeout' }, 'the promoted master has no replica yet')
  await startReplica(t, replica)
  acked.push(await alice.sendAndAck('room', 'three'))

  for (const client of [alice, bob]) {
    await client.until((frames) => client.messages('room').some((f) => f.text === 'three'), 'three')
    await client.barrier()
    const got = client.messages('room')
    assertOneMessagePerId(t, got, client === alice ? 'alice' : 'bob')
    t.same(got.map((f) => f.text), ['one', 'two', 'unconfirmed', 'unconfirmed broadcast', 'alone', 'three'],
      'every acknowledged message once, in order; the unconfirmed ones were seen, and are gone from the log')
    t.equal(client.closeCode, undefined)
  }
  const history = await (await fetch(`${a.url}/rooms/room/messages?limit=100`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).json() as { messages: Frame[] }
  const stored = history.messages.map((m) => m.id)
  for (const id of acked) t.ok(stored.includes(id), `acknowledged ${id} is in the promoted master's log`)
  t.same(history.messages.map((m) => m.text), ['one', 'two', 'alone', 'three'], 'the unconfirmed tail did not survive; "alone" was stored, only not confirmed')
})

t.test('Sentinel failover while messages flow (REDIS_WAIT_REPLICAS=1): no id reused, nothing acknowledged lost, clients stay', async (t) => {
  const set = await SentinelSet.start(t)
  const proxy = await TcpProxy.start(t, set.master.port)
  const { a, b, alice, bob } = await nodesWithMembers(t, proxy, 'flow', { REDIS_WAIT_REPLICAS: '1' })

  const replies: Frame[] = []
  const run = { sending: true }
  const sender = (async () => {
    for (let i = 0; run.sending && i < 400; i++) {
      replies.push(await sendFor(alice, 'flow', `m${i}`))
      await sleep(20)
    }
  })()
  // Ended with the test even when an assertion below fails first.
  t.teardown(async () => {
    run.sending = false
    await sender.catch(() => {})
  })
  await waitFor(() => replies.filter((r) => r.type === 'ack').length >= 20, 'twenty acknowledged before the failover', 10_000)
  await set.failover()
  // What a Sentinel-aware client does: ask the sentinels where the master is now, and go there.
  proxy.target = await set.masterPort()
  await bothReady([a, b], 200, 'readiness to return on both nodes')
  // A replica for the new master: acknowledgements resume.
  await startReplica(t, set.replica)
  const before = replies.length
  await waitFor(() => replies.slice(before).filter((r) => r.type === 'ack').length >= 20, 'twenty acknowledged after the failover', RECOVERY_TIMEOUT_MS)
  run.sending = false
  await sender

  t.match(replies.filter((r) => r.type === 'error'), Array(replies.filter((r) => r.type === 'error').length).fill({ code: /^(unavailable|timeout)$/ }),
    'sends during the failover were refused loudly, never silently')
  const acked = replies.filter((r) => r.type === 'ack').map((r) => r.id as string)
  for (const client of [alice, bob]) {
    await client.until(() => acked.every((id) => client.messages('flow').some((f) => f.id === id)), 'every acknowledged message', RECOVERY_TIMEOUT_MS)
    await client.barrier()
    const got = client.messages('flow')
    assertOneMessagePerId(t, got, client === alice ? 'alice' : 'bob')
    const order = got.map((f) => f.id as string).filter((id) => acked.includes(id))
    t.same(order, acked, 'acknowledged messages once each, in send order')
    t.equal(client.closeCode, undefined, 'the client stayed connected')
  }
  const resumed = await resume(t, b, 'flow', acked[0] as string)
  t.equal(resumed.recovered, true, 'the first acknowledged id still resumes on the promoted master')
  for (const text of acked.slice(1).map((id) => alice.messages('flow').find((f) => f.id === id)?.text)) {
    if (!resumed.texts.includes(text)) t.fail(`acknowledged "${String(text)}" missing after the failover`)
  }
})
