// Cluster fault tests over a real redis-server: subscriber connections
// killed under load, Redis stopped and restarted, Redis frozen, a node killed.
// The promise under test: connected clients get every acknowledged message
// exactly once and in order; sends fail loudly, never silently.
import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { TEST_TOKEN } from '../helpers/server.js'
import { NodeProcess } from '../helpers/node-process.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { TestClient } from '../helpers/ws-client.js'
import { CLUSTER_ENV, ids, readiness, startCluster, startNode } from '../helpers/cluster.js'
import { metric } from '../helpers/http.js'
import { sleep, waitFor } from '../helpers/wait.js'

t.test('subscriber connections killed every 300 ms: 500 messages arrive exactly once, in order', async (t) => {
  const { redis, a, b } = await startCluster(t)
  const publisher = await TestClient.open(t, a.wsUrl, 'publisher')
  await publisher.join('storm')
  const subscribers = [await TestClient.open(t, b.wsUrl, 's1'), await TestClient.open(t, b.wsUrl, 's2'), await TestClient.open(t, b.wsUrl, 's3')]
  for (const s of subscribers) await s.join('storm')

  const TOTAL = 500
  const run = { killing: true }
  let kills = 0
  const killer = (async () => {
    while (run.killing && kills < 50) {
      await sleep(300)
      await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
      kills++
    }
  })()
  const acked: string[] = []
  for (let i = 0; i < TOTAL; i++) {
    publisher.send({ type: 'send', room: 'storm', text: `m${i}`, ref: `r${i}` })
    if (i % 10 === 9) await sleep(50) // ~200 messages a second
  }
  await publisher.until((frames) => frames.filter((f) => f.type === 'ack' || f.type === 'error').length >= TOTAL, 'every send answered', 20_000)
  run.killing = false
  await killer
  t.ok(kills >= 5, `the subscriber connections were killed ${kills} times during the run`)
  t.equal(publisher.ofType('error').length, 0, 'the store kept working: no send was refused')
  for (const frame of publisher.ofType('ack')) acked.push(frame.id as string)

  for (const s of subscribers) {
    await s.until((frames) => frames.filter((f) => f.type === 'message').length >= TOTAL, 'all 500 messages', 20_000)
  }
  for (const s of subscribers) {
    const got = s.messages('storm')
    t.equal(got.length, TOTAL, 'exactly 500 messages, no duplicates')
    t.same(got.map((f) => f.text), Array.from({ length: TOTAL }, (_, i) => `m${i}`), 'in send order')
    t.same(new Set(ids(got)), new Set(acked), 'every acknowledged message')
  }
  t.ok((await metric(b.url, 'chat_redis_reconnects_total') ?? 0) >= 1, 'reconnects are counted')
})

t.test('Redis stopped: 503 readiness, unavailable sends, 503 broadcasts; restarted: recovers with nothing acknowledged lost', async (t) => {
  const { redis, a, b } = await startCluster(t)
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  await alice.join('outage')
  await bob.join('outage')
  alice.send({ type: 'send', room: 'outage', text: 'before', ref: 'before' })
  const before = await alice.next((f) => f.type === 'ack' && f.ref === 'before', 'ack before')

  await redis.stop()
  await waitFor(async () => await readiness(a.url) === 503 && await readiness(b.url) === 503, 'both nodes not ready', 5000)
  const body = await (await fetch(`${a.url}/health/ready`)).json() as { check: string }
  t.match(body.check, /^redis/, 'readiness names the Redis check')

  alice.send({ type: 'send', room: 'outage', text: 'during', ref: 'during' })
  const refused = await alice.next((f) => f.ref === 'during', 'answer to the send during the outage', 0, 5000)
  t.match(refused, { type: 'error', code: 'unavailable' })
  const post = await fetch(`${b.url}/rooms/outage/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'during' })
  })
  t.equal(post.status, 503, 'broadcast answers 503')
  t.equal(alice.closeCode, undefined, 'the client stays connected')

  await redis.restart()
  await waitFor(async () => await readiness(a.url) === 200 && await readiness(b.url) === 200, 'both nodes ready again', 10_000)
  alice.send({ type: 'send', room: 'outage', text: 'after', ref: 'after' })
  const after = await alice.next((f) => f.type === 'ack' && f.ref === 'after', 'ack after', 0, 5000)
  for (const c of [alice, bob]) {
    await c.until((frames) => frames.some((f) => f.type === 'message' && f.id === after.id), 'the message after the restart')
    t.same(ids(c.messages('outage')), [before.id, after.id], 'acknowledged messages once each, nothing else')
  }
})

t.test('messages stored by another node while this node was cut off are delivered when it comes back', async (t) => {
  const { redis, a, b } = await startCluster(t)
  const reader = await TestClient.open(t, b.wsUrl, 'reader')
  await reader.join('gap')
  const writer = await TestClient.open(t, a.wsUrl, 'writer')
  await writer.join('gap')
  // Cut only B's subscription; A keeps storing and publishing.
  const clients = String(await redis.command('CLIENT', 'LIST', 'TYPE', 'pubsub'))
  const bSubscriber = /id=(\d+) .*name=chat:b:subscriber/.exec(clients)?.[1]
  t.ok(bSubscriber, 'found node b subscriber connection')
  await redis.command('CLIENT', 'KILL', 'ID', bSubscriber as string)
  const sent: string[] = []
  for (let i = 0; i < 30; i++) {
    writer.send({ type: 'send', room: 'gap', text: `g${i}`, ref: `g${i}` })
    sent.push((await writer.next((f) => f.type === 'ack' && f.ref === `g${i}`, `ack g${i}`)).id as string)
  }
  await reader.until((frames) => frames.filter((f) => f.type === 'message').length >= 30, 'all 30 messages', 10_000)
  t.same(ids(reader.messages('gap')), sent, 'every message, once, in order')
  t.ok((await metric(b.url, 'chat_messages_repaired_total') ?? 0) > 0, 'some came from the log, not the channel')
})

t.test('a frozen Redis turns readiness 503 (probe stale) and recovery follows when it thaws', async (t) => {
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a')
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  await alice.join('frozen')
  redis.freeze(true)
  t.teardown(() => redis.freeze(false))
  await waitFor(async () => await readiness(a.url) === 503, 'readiness 503 while the subscription is silent', 5000)
  const body = await (await fetch(`${a.url}/health/ready`)).json() as { check: string }
  t.equal(body.check, 'redis-subscription', 'the probe, not the socket state, noticed')
  redis.freeze(false)
  await waitFor(async () => await readiness(a.url) === 200, 'ready again after the thaw', 15_000)
  alice.send({ type: 'send', room: 'frozen', text: 'thawed', ref: 'x' })
  const ack = await alice.next((f) => f.type === 'ack' && f.ref === 'x', 'ack after thaw', 0, 5000)
  await alice.until((frames) => frames.some((f) => f.type === 'message' && f.id === ack.id), 'message after thaw')
})

t.test('SIGKILL of a node: its members vanish from members on the other node within PRESENCE_TTL_MS', async (t) => {
  const redis = await RedisServer.start(t)
  const PRESENCE_TTL_MS = 1500
  const env = { ...CLUSTER_ENV, REDIS_URL: redis.url, PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) }
  const doomed = await NodeProcess.start(t, { ...env, NODE_ID: 'doomed' })
  const survivor = await NodeProcess.start(t, { ...env, NODE_ID: 'survivor' })
  const ghost = await TestClient.open(t, doomed.wsUrl, 'ghost')
  await ghost.join('lobby')
  const watcher = await TestClient.open(t, survivor.wsUrl, 'watcher')
  const joined = await watcher.join('lobby')
  t.same([...(joined.members as string[])].sort(), ['ghost', 'watcher'])

  doomed.kill('SIGKILL')
  const killedAt = Date.now()
  await doomed.exited
  let members: string[] = []
  await waitFor(async () => {
    const probe = await TestClient.connect(`${survivor.wsUrl}?name=probe`)
    try {
      members = (await probe.join('lobby')).members as string[]
    } finally {
      probe.close()
    }
    return !members.includes('ghost')
  }, 'the ghost to vanish', PRESENCE_TTL_MS + 3000, 200)
  t.ok(Date.now() - killedAt <= PRESENCE_TTL_MS + 3000, 'within PRESENCE_TTL_MS plus a margin')
  t.notOk(members.includes('ghost'))
  t.ok(members.includes('watcher'))
})

t.test('a subscription that goes silent while its socket stays open is dropped, reopened and repaired', async (t) => {
  const redis = await RedisServer.start(t)
  const proxy = await TcpProxy.start(t, redis.port)
  // Node a reaches Redis through the proxy, so its subscription can be silenced.
  const a = await startNode(t, { url: `redis://127.0.0.1:${proxy.port}` }, 'a')
  const b = await startNode(t, redis, 'b')
  const reader = await TestClient.open(t, a.wsUrl, 'reader')
  await reader.join('silent')
  const writer = await TestClient.open(t, b.wsUrl, 'writer')
  await writer.join('silent')

  t.equal(proxy.blackHole('chat:a:subscriber'), 1, 'silenced the subscriber connection of node a')
  const sent: string[] = []
  let sawNotReady = false
  for (let i = 0; i < 40; i++) {
    writer.send({ type: 'send', room: 'silent', text: `s${i}`, ref: `s${i}` })
    sent.push((await writer.next((f) => f.type === 'ack' && f.ref === `s${i}`, `ack s${i}`)).id as string)
    if (await readiness(a.url) === 503) sawNotReady = true
    await sleep(25)
  }
  await waitFor(async () => {
    if (await readiness(a.url) === 503) sawNotReady = true
    return sawNotReady && await readiness(a.url) === 200
  }, 'node a to notice (503) and heal itself (200)', 10_000)
  await reader.until((frames) => frames.filter((f) => f.type === 'message').length >= sent.length, 'all messages on node a', 10_000)
  t.same(ids(reader.messages('silent')), sent, 'every message once, in order, despite the silent subscription')
  t.ok((await metric(a.url, 'chat_redis_reconnects_total') ?? 0) >= 1, 'the node re-opened its subscription')
})
