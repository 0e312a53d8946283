// The readiness probe against a real redis-server: a probe queued behind a
// backlog of room messages must not make a healthy subscription look dead.
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisBroker } from '../../lib/redis-broker.js'
import { defineScripts, roomKeys } from '../../lib/redis-scripts.js'
import { IDEMPOTENCY_TTL_MS } from '../../lib/limits.js'
import { connectionOptions } from '../../lib/redis-topology.js'
import { startRedisNode, TEST_LOG_BOUNDS } from '../helpers/redis-node.js'
import { RedisServer } from '../helpers/redis-server.js'
import { sleep, waitFor } from '../helpers/wait.js'

/**
 * Probe period of the node under test: its subscription counts as dead after
 * 3 silent periods (1.5 s: wide enough that a busy machine alone does not
 * silence it).
 */
const PROBE_MS = 500
/** Messages in the backlog, and what the node spends on each: at least 3 s of reading, twice the window. */
const BACKLOG = 3000
const WORK_PER_MESSAGE_MS = 1

function busyFor (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* a node busy delivering */ }
}

t.test('a probe queued behind a backlog of room messages does not get a healthy subscription dropped', async (t) => {
  const server = await RedisServer.start(t, ['--appendonly', 'no'])
  const command = new Redis(server.url, connectionOptions('test:slow:command'))
  const subscriber = new Redis(server.url, connectionOptions('test:slow:subscriber'))
  const publisher = new Redis(server.url, connectionOptions('test:publisher'))
  for (const client of [command, subscriber, publisher]) client.on('error', () => {})
  await Promise.all([command.connect(), subscriber.connect(), publisher.connect()])
  const reported: unknown[] = []
  const broker = new RedisBroker({ command, subscriber, nodeId: 'slow', ...TEST_LOG_BOUNDS, readyProbeMs: PROBE_MS, onError: (error) => reported.push(error) })
  let delivered = 0
  let outOfOrder = 0
  await broker.start((message) => {
    if (message.seq !== delivered + 1) outOfOrder++
    delivered++
    busyFor(WORK_PER_MESSAGE_MS)
  })
  t.teardown(async () => {
    clearInterval(sampler)
    await broker.close()
    for (const client of [command, subscriber, publisher]) client.disconnect()
  })
  broker.subscribe('flood')
  await broker.read('flood', { limit: 1 })
  await waitFor(() => broker.health().ok, 'the first probe to come back')

  // Readiness as a load balancer would see it, sampled between the node's reads.
  const unready: string[] = []
  const sampler = setInterval(() => {
    const health = broker.health()
    if (!health.ok) unready.push(health.reason)
  }, PROBE_MS / 2)

  // Another node stores the backlog in one go; the node's probes queue behind it on its subscription.
  defineScripts(publisher)
  const keys = roomKeys('flood')
  const other = roomKeys('elsewhere')
  // Its script is loaded first, so the backlog starts flowing at once.
  await publisher.chatPublish(other.meta, other.log, other.channel, 'E', 1, 1024, 'bob', 'warm-up', 0, 'elsewhere', 3600, IDEMPOTENCY_TTL_MS, '', '', '')
  const pipeline = publisher.pipeline()
  for (let i = 0; i < BACKLOG; i++) {
    pipeline.chatPublish(keys.meta, keys.log, keys.channel, 'E', BACKLOG, 1024 * 1024, 'bob', `m${i}`, i, 'flood', 3600, IDEMPOTENCY_TTL_MS, '', '', '')
  }
  const started = Date.now()
  await pipeline.exec()
  await waitFor(() => delivered === BACKLOG, 'the backlog to be read', 60_000, 20)
  const readingMs = Date.now() - started
  t.ok(readingMs > 3 * PROBE_MS, `reading the backlog (${readingMs} ms) took longer than the probe's window (${3 * PROBE_MS} ms)`)
  t.equal(outOfOrder, 0, 'every message once, in order')
  t.equal(broker.clusterStats.redisReconnects, 0, 'the subscription was never dropped')
  t.same(unready, [], 'readiness stayed 200 all along')
  t.same(reported, [])
})

t.test('a node whose own event loop was blocked is not judged on the late tick: its subscription is kept', async (t) => {
  const server = await RedisServer.start(t, ['--appendonly', 'no'])
  const node = await startRedisNode(t, server, 'blocked')
  await waitFor(() => node.broker.health().ok, 'the first probe to come back')
  // Ten probe periods (100 ms each) with no turn of the loop: nothing can be read meanwhile.
  busyFor(1000)
  await sleep(500)
  t.equal(node.broker.clusterStats.redisReconnects, 0, 'the subscription was not dropped')
  t.ok(node.broker.health().ok, 'ready once the loop runs again')
})
