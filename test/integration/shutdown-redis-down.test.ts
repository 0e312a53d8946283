// Shutdown with part of Redis down, on every topology (PROTOCOL §5): a node
// whose Redis server was killed (a Sentinel master, a whole Sentinel set, a
// Redis Cluster master, the one REDIS_URL server) still drains with 1001 and
// exits 0 within the grace period on SIGTERM, and an app closed in-process
// leaves no Redis connection behind: nothing that reconnects, nothing that
// keeps the process alive, no "[ioredis] Unhandled error event".
import t, { type Test } from 'tap'
import { CLUSTER_ENV, readiness } from '../helpers/cluster.js'
import { NodeProcess } from '../helpers/node-process.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { RedisServer } from '../helpers/redis-server.js'
import { SENTINEL_MASTER, SentinelSet } from '../helpers/redis-sentinel.js'
import { startServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'
import { sleep, waitFor } from '../helpers/wait.js'

const SHUTDOWN_GRACE_MS = 2000
/** As in shutdown.test.ts: the server's own safety net exits 1 at grace + 5 s, so a 0 within it is the clean exit. */
const EXIT_MARGIN_MS = 5000
/** Start, failover and reconnects on a loaded machine. */
const READY_TIMEOUT_MS = 30_000
/** app.close() with a dead server: QUIT gets REDIS_COMMAND_TIMEOUT_MS (2 s), with room for a loaded machine. */
const CLOSE_BOUND_MS = 5000
/** After close, how long the test watches for a connection that comes back. */
const AFTER_CLOSE_WATCH_MS = 1500
/** Time for a node to notice a killed server (its sockets close at once). */
const NOTICE_MS = 500

/** What ioredis prints (console.error) when a client with no error listener fails: the symptom of a leaked client. */
const UNHANDLED = /Unhandled error event/
const consoleErrors: string[] = []
const consoleError = console.error
console.error = (...args: unknown[]) => {
  consoleErrors.push(args.map(String).join(' '))
  consoleError(...args)
}
t.teardown(() => { console.error = consoleError })

/** Rejects after `ms`; for racing against a promise that must settle in time. */
function deadline (ms: number, what: string): Promise<never> {
  return new Promise((_resolve, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms).unref())
}

/**
 * A node process on `env` with a member in a room, then `breakRedis`, then
 * SIGTERM: the member gets 1001, the process exits 0 in time, and its output
 * has no unhandled ioredis error.
 */
async function sigtermWithRedisDown (t: Test, env: Record<string, string>, breakRedis: () => Promise<void>): Promise<void> {
  const node = await NodeProcess.start(t, { ...CLUSTER_ENV, SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS), NODE_ID: 'n', ...env })
  await waitFor(async () => await readiness(node.url) === 200, 'the node ready', READY_TIMEOUT_MS, 50)
  const member = await TestClient.open(t, node.wsUrl, 'alice')
  await member.join('room')
  await breakRedis()
  await sleep(NOTICE_MS)
  const signalledAt = Date.now()
  node.kill('SIGTERM')
  const closed = await member.waitClosed(SHUTDOWN_GRACE_MS + EXIT_MARGIN_MS)
  t.equal(closed.code, 1001, 'the member got 1001')
  const exit = await Promise.race([node.exited, deadline(SHUTDOWN_GRACE_MS + 2 * EXIT_MARGIN_MS, 'process exit')])
  const exitedAfter = Date.now() - signalledAt
  t.same(exit, { code: 0, signal: null }, exit.code === 0 ? 'exit code 0' : `exit code 0 (output: ${node.output.slice(-800)})`)
  t.ok(exitedAfter <= SHUTDOWN_GRACE_MS + EXIT_MARGIN_MS, `exited ${exitedAfter} ms after SIGTERM, within the grace period plus ${EXIT_MARGIN_MS} ms`)
  t.notMatch(node.output, UNHANDLED, 'no unhandled ioredis error')
}

/** app.close() of an in-process app settles within CLOSE_BOUND_MS and nothing printed an unhandled ioredis error. */
async function closeInTime (t: Test, close: () => Promise<void>): Promise<void> {
  const from = consoleErrors.length
  const startedAt = Date.now()
  await Promise.race([close(), deadline(CLOSE_BOUND_MS, 'app.close()')])
  t.ok(Date.now() - startedAt <= CLOSE_BOUND_MS, `app.close() took ${Date.now() - startedAt} ms`)
  await sleep(AFTER_CLOSE_WATCH_MS)
  t.same(consoleErrors.slice(from).filter((line) => UNHANDLED.test(line)), [], 'no unhandled ioredis error after close')
}

t.test('process, Sentinel: the master killed, then SIGTERM', async (t) => {
  const set = await SentinelSet.start(t)
  await sigtermWithRedisDown(t, { REDIS_SENTINELS: set.addresses, REDIS_SENTINEL_MASTER: SENTINEL_MASTER }, () => set.master.stop())
})

t.test('process, Sentinel: the whole set killed (master, replica, sentinels), then SIGTERM', async (t) => {
  const set = await SentinelSet.start(t)
  await sigtermWithRedisDown(t, { REDIS_SENTINELS: set.addresses, REDIS_SENTINEL_MASTER: SENTINEL_MASTER }, () => set.stopAll())
})

t.test('process, Redis Cluster: a master killed, then SIGTERM', async (t) => {
  const cluster = await RedisCluster.start(t)
  await sigtermWithRedisDown(t, { REDIS_CLUSTER_NODES: cluster.seeds }, async () => {
    const [master] = await cluster.masters()
    master?.process.kill('SIGKILL')
  })
})

t.test('process, one server (REDIS_URL): Redis killed, then SIGTERM', async (t) => {
  const redis = await RedisServer.start(t)
  await sigtermWithRedisDown(t, { REDIS_URL: redis.url }, () => redis.stop())
})

t.test('in-process, Sentinel: after a failover the app closes and leaves no connection to the sentinels', async (t) => {
  const set = await SentinelSet.start(t)
  const server = await startServer(t, { ...CLUSTER_ENV, NODE_ID: 'x', REDIS_SENTINELS: set.addresses, REDIS_SENTINEL_MASTER: SENTINEL_MASTER })
  await waitFor(async () => await readiness(server.url) === 200, 'the node ready', READY_TIMEOUT_MS, 50)
  const member = await TestClient.open(t, server.wsUrl, 'alice')
  await member.join('room')
  const watching = await set.subscribedClients()
  t.ok(watching.every((count) => count > 0), `each sentinel has the node's failover watchers before close (${watching.join(', ')})`)
  // The master killed and the replica promoted: the node's clients are ready again, on the new master.
  await set.failover()
  await waitFor(async () => await readiness(server.url) === 200, 'the node ready after the failover', READY_TIMEOUT_MS, 50)
  member.socket.terminate()
  await closeInTime(t, () => server.app.close())
  // ioredis's failover watchers are what outlived QUIT: with sentinels dying
  // later they reconnected every minute with an unhandled error.
  await waitFor(async () => (await set.subscribedClients()).every((count) => count === 0), 'no subscribed client left on any sentinel', CLOSE_BOUND_MS, 50)
  t.same(await set.subscribedClients(), [0, 0, 0], 'no connection of the node left on any sentinel')
})

t.test('in-process, Sentinel: the whole set killed, the app closes in time', async (t) => {
  const set = await SentinelSet.start(t)
  const server = await startServer(t, { ...CLUSTER_ENV, NODE_ID: 'x', REDIS_SENTINELS: set.addresses, REDIS_SENTINEL_MASTER: SENTINEL_MASTER })
  await waitFor(async () => await readiness(server.url) === 200, 'the node ready', READY_TIMEOUT_MS, 50)
  await set.stopAll()
  await sleep(NOTICE_MS)
  await closeInTime(t, () => server.app.close())
  t.same([server.app.redis?.store.status, server.app.redis?.subscriber.status], ['end', 'end'], 'the connections ended')
})

t.test('in-process, Redis Cluster: a master killed, the app closes and leaves no connection on the live nodes', async (t) => {
  const cluster = await RedisCluster.start(t)
  const server = await startServer(t, { ...CLUSTER_ENV, NODE_ID: 'x', REDIS_CLUSTER_NODES: cluster.seeds })
  await waitFor(async () => await readiness(server.url) === 200, 'the node ready', READY_TIMEOUT_MS, 50)
  const member = await TestClient.open(t, server.wsUrl, 'alice')
  for (let i = 0; i < 10; i++) await member.join(`room-${i}`) // sharded subscriptions on every master
  const [victim] = await cluster.masters()
  victim?.process.kill('SIGKILL')
  await sleep(NOTICE_MS)
  member.socket.terminate()
  await closeInTime(t, () => server.app.close())
  const ours = async (): Promise<string[]> => {
    const lines: string[] = []
    for (const node of cluster.nodes.filter((node) => node !== victim)) {
      lines.push(...String(await cluster.command(node.port, 'CLIENT', 'LIST')).split('\n').filter((line) => line.includes('chat:x:')))
    }
    return lines
  }
  await waitFor(async () => (await ours()).length === 0, 'no connection of the node on a live cluster node', CLOSE_BOUND_MS, 50)
  await sleep(AFTER_CLOSE_WATCH_MS)
  t.same(await ours(), [], 'none came back')
})
