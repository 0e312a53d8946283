// lib/redis-topology.ts and the sharded subscription on each topology, in
// process: the configuration's choice, the words used for it (never a
// password), the checks at start against real servers, and a broker on a real
// Redis Cluster repairing after its subscriber connections are dropped.
import t from 'tap'
import { Redis } from 'ioredis'
import { loadConfig } from '../../lib/config.js'
import { keySlot } from '../../lib/key-slot.js'
import { RedisBroker } from '../../lib/redis-broker.js'
import { roomKeys } from '../../lib/redis-scripts.js'
import {
  checkTopology, createRedisClient, describeTopology, redactUrl, type RedisClient, type RedisTopology, redisTopology
} from '../../lib/redis-topology.js'
import { ShardedSubscription } from '../../lib/sharded-subscription.js'
import { SubscriptionLiveness } from '../../lib/subscription-liveness.js'
import { configProblems } from '../helpers/config-problems.js'
import { freePort } from '../helpers/free-port.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { RedisServer } from '../helpers/redis-server.js'
import { sleep, waitFor } from '../helpers/wait.js'

t.test('the configuration names one topology', async (t) => {
  t.equal(redisTopology(loadConfig({})), undefined, 'none: a single node in memory')
  t.same(redisTopology(loadConfig({ REDIS_URL: 'redis://:pw@r:6379' })), { kind: 'server', url: 'redis://:pw@r:6379' })
  t.same(redisTopology(loadConfig({ REDIS_CLUSTER_NODES: ' r-0:7000, [::1]:7001 ,', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true' })), {
    kind: 'cluster', seeds: [{ host: 'r-0', port: 7000 }, { host: '::1', port: 7001 }], password: 'pw', tls: true
  })
  t.same(redisTopology(loadConfig({ REDIS_SENTINELS: 's-0:26379', REDIS_SENTINEL_MASTER: 'chat' })), {
    kind: 'sentinel', sentinels: [{ host: 's-0', port: 26379 }], master: 'chat', password: undefined, tls: false
  })
  t.same(configProblems({ REDIS_CLUSTER_NODES: 'r-0:70000' }), ['REDIS_CLUSTER_NODES: expected comma-separated host:port addresses like redis-0.internal:6379, got "r-0:70000" (got "r-0:70000")'])
  t.same(configProblems({ REDIS_SENTINEL_MASTER: 'chat' }), ['REDIS_SENTINEL_MASTER: expected unset unless REDIS_SENTINELS is set (got "chat")'])
  t.same(configProblems({ REDIS_TLS: 'true' }), ['REDIS_TLS: expected false unless REDIS_SENTINELS or REDIS_CLUSTER_NODES is set (use a rediss:// REDIS_URL) (got "true")'])
  t.same(configProblems({ REDIS_URL: 'redis://r', REDIS_CLUSTER_NODES: 'r:1', REDIS_PASSWORD: 'secret-password' }), [
    'REDIS_CLUSTER_NODES: expected at most one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES, got REDIS_URL and REDIS_CLUSTER_NODES (got "r:1")'
  ], 'the password goes with the cluster: only the double choice is wrong')
})

t.test('topologies in words name their variable, never a password', async (t) => {
  t.equal(describeTopology({ kind: 'server', url: 'redis://user:secret@r:6379/0' }), 'Redis at redis://user:***@r:6379/0 (REDIS_URL)')
  t.equal(describeTopology({ kind: 'cluster', seeds: [{ host: 'r', port: 1 }, { host: '::1', port: 2 }], password: 'secret', tls: false }),
    'the Redis Cluster seeded by r:1, [::1]:2 (REDIS_CLUSTER_NODES)')
  t.equal(describeTopology({ kind: 'sentinel', sentinels: [{ host: 's', port: 3 }], master: 'chat', password: 'secret', tls: true }),
    'the Redis master "chat" of the Sentinels s:3 (REDIS_SENTINELS)')
  t.equal(redactUrl('not a url'), 'an unparsable URL')
  t.equal(redactUrl('redis://r:6379'), 'redis://r:6379')
})

t.test('clients of each kind; TLS and passwords go where they belong', async (t) => {
  const sentinel = createRedisClient({ kind: 'sentinel', sentinels: [{ host: 's', port: 3 }], master: 'chat', password: 'pw', tls: true }, 'n', 'command') as Redis
  t.match(sentinel.options, { name: 'chat', password: 'pw', enableTLSForSentinelMode: true, tls: {}, lazyConnect: true, enableOfflineQueue: false })
  const plain = createRedisClient({ kind: 'sentinel', sentinels: [{ host: 's', port: 3 }], master: 'chat', password: undefined, tls: false }, 'n', 'command') as Redis
  t.notOk(plain.options.password, 'no password')
  t.notOk(plain.options.tls, 'no TLS')
  const cluster = createRedisClient({ kind: 'cluster', seeds: [{ host: 'r', port: 1 }], password: 'pw', tls: true }, 'n', 'subscriber')
  t.match((cluster as unknown as { options: object }).options, { shardedSubscribers: true, enableOfflineQueue: false, redisOptions: { password: 'pw', tls: {} } })
  const commands = createRedisClient({ kind: 'cluster', seeds: [{ host: 'r', port: 1 }], password: undefined, tls: false }, 'n', 'command')
  t.match((commands as unknown as { options: object }).options, { shardedSubscribers: false })
  for (const client of [sentinel, plain, cluster, commands]) client.disconnect()
})

t.test('checks at start: each kind of Redis, each way of being wrong', async (t) => {
  const [server, cluster] = await Promise.all([RedisServer.start(t), RedisCluster.start(t)])
  const dead = await freePort()
  const check = async (topology: RedisTopology) => {
    try {
      await checkTopology(topology)
      return 'ok'
    } catch (error) {
      return (error as Error).message
    }
  }
  const seed = { host: '127.0.0.1', port: cluster.nodes[0]?.port ?? 0 }
  t.equal(await check({ kind: 'server', url: server.url }), 'ok')
  t.match(await check({ kind: 'server', url: `redis://:secret@127.0.0.1:${dead}` }), /^cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(REDIS_URL\): .*ECONNREFUSED/)
  t.match(await check({ kind: 'server', url: `redis://127.0.0.1:${seed.port}` }), /^REDIS_URL points at a Redis Cluster node/)
  t.equal(await check({ kind: 'cluster', seeds: [{ host: '127.0.0.1', port: dead }, seed], password: undefined, tls: false }), 'ok', 'one seed that answers is enough')
  t.match(await check({ kind: 'cluster', seeds: [{ host: '127.0.0.1', port: server.port }], password: undefined, tls: false }), /is not a Redis Cluster node/)
  t.match(await check({ kind: 'cluster', seeds: [{ host: '127.0.0.1', port: dead }], password: 'secret', tls: false }), /^cannot reach any Redis Cluster seed/)
  t.match(await check({ kind: 'sentinel', sentinels: [{ host: '127.0.0.1', port: dead }], master: 'chat', password: undefined, tls: false }), /^cannot reach any Sentinel/)

  // A cluster that lost a master's slots is not serving.
  await cluster.command(seed.port, 'CONFIG', 'SET', 'cluster-require-full-coverage', 'yes')
  const [master] = await cluster.masters()
  const owned = (await cluster.command(master?.port ?? 0, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>)
    .find(([, , [, port]]) => port === master?.port)
  await cluster.command(master?.port ?? 0, 'CLUSTER', 'DELSLOTSRANGE', owned?.[0] ?? 0, owned?.[1] ?? 0)
  await waitFor(async () => /cluster_state:fail/.test(String(await cluster.command(master?.port ?? 0, 'CLUSTER', 'INFO'))), 'the cluster to fail', 10_000, 50)
  t.match(await check({ kind: 'cluster', seeds: [{ host: '127.0.0.1', port: master?.port ?? 0 }], password: undefined, tls: false }),
    /is not serving \(cluster_state:fail\); fix the cluster first/)
})

t.test('a broker on a Redis Cluster: per-master probes, repair after dropped subscriber connections', async (t) => {
  const cluster = await RedisCluster.start(t)
  const topology: RedisTopology = { kind: 'cluster', seeds: [{ host: '127.0.0.1', port: cluster.nodes[0]?.port ?? 0 }], password: undefined, tls: false }
  const command = createRedisClient(topology, 'test:command', 'command')
  const subscriber = createRedisClient(topology, 'test:subscriber', 'subscriber')
  for (const client of [command, subscriber]) client.on('error', () => {})
  await Promise.all([command.connect(), subscriber.connect()])
  t.teardown(() => { command.disconnect(); subscriber.disconnect() })
  const reported: string[] = []
  const broker = new RedisBroker({
    command,
    subscriber,
    nodeId: 'n',
    historySize: 100,
    historyMaxBytes: 65536,
    historyTtlS: 60,
    readyProbeMs: 100,
    onError: (error, context) => reported.push(`${context}: ${(error as Error).message}`)
  })
  const delivered: string[] = []
  await broker.start((message) => delivered.push(`${message.room}/${message.text}`))
  t.teardown(() => broker.close())
  await waitFor(() => broker.health().ok, 'a probe back from every master', 10_000)

  const rooms = Array.from({ length: 9 }, (_, i) => `r${i}`)
  const masters = new Set(rooms.map((room) => (subscriber as unknown as { slots: string[][] }).slots[keySlot(roomKeys(room).channel)]?.[0]))
  t.equal(masters.size, 3, 'the rooms live on all three masters')
  for (const room of rooms) broker.subscribe(room)
  for (const room of rooms) await broker.read(room, { limit: 1 })
  for (const room of rooms) await broker.publish(room, 'f', 'one')
  await waitFor(() => delivered.length === rooms.length, 'the first messages')

  // Every subscriber connection dropped from the client side (what a stale probe does), then messages published at once.
  const subscription = (broker as unknown as { subscription: ShardedSubscription }).subscription
  subscription.reconnect()
  for (const room of rooms) await broker.publish(room, 'f', 'two')
  await waitFor(() => delivered.length === 2 * rooms.length, 'the second messages, repaired or live', 10_000)
  // The pub/sub connections killed on the server side.
  for (const master of await cluster.masters()) await cluster.command(master.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub')
  for (const room of rooms) await broker.publish(room, 'f', 'three')
  await waitFor(() => delivered.length === 3 * rooms.length, 'the third messages', 10_000)
  for (const room of rooms) t.same(delivered.filter((entry) => entry.startsWith(`${room}/`)), [`${room}/one`, `${room}/two`, `${room}/three`], `${room}: once each, in order`)
  await waitFor(() => broker.health().ok, 'ready again', 10_000)
  t.ok(broker.clusterStats.redisReconnects >= 1, 'the returns are counted')

  // A probe that stops coming back from one master drops that master's connection only.
  const probe = (broker as unknown as { probe: { channels: Map<string, { master: string, liveness: SubscriptionLiveness }>, send: () => void } }).probe
  const [stale] = [...probe.channels.values()]
  const reconnects = broker.clusterStats.redisReconnects
  // Its subscription heard from last long ago (a probe at 1 ms after the epoch), and never made again since.
  if (stale) {
    stale.liveness = new SubscriptionLiveness(300, 0)
    stale.liveness.probeReturned(1)
  }
  t.match(broker.health(), { ok: false, check: 'redis-subscription', reason: /through the Redis master 127\.0\.0\.1:\d+/ })
  // Judged now, not as a late tick.
  ;(probe as unknown as { lastTickAt: number | undefined }).lastTickAt = undefined
  probe.send()
  await waitFor(() => broker.clusterStats.redisReconnects > reconnects && broker.health().ok, 'that connection back and probed', 10_000)
  t.same(reported, [], 'nothing unexpected reported')
})

t.test('a sharded subscription on one server resubscribes in chunks after a reconnect', async (t) => {
  const server = await RedisServer.start(t)
  const client: RedisClient = createRedisClient({ kind: 'server', url: server.url }, 'test:chunks', 'subscriber')
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.disconnect())
  const subscription = new ShardedSubscription(client)
  const events: string[] = []
  subscription.listen({
    message: (channel, payload) => events.push(`${channel}:${payload}`),
    interrupted: () => events.push('interrupted'),
    restored: () => events.push('restored'),
    restoreFailed: () => events.push('failed')
  })
  const channels = Array.from({ length: 2500 }, (_, i) => `chat:{c${i}}:ch`)
  await subscription.subscribe(channels)
  t.equal(subscription.size, 2500)
  subscription.reconnect()
  await waitFor(() => events.includes('restored'), 'restored')
  t.same(events, ['interrupted', 'restored'])
  t.same(await server.command('PUBSUB', 'SHARDNUMSUB', 'chat:{c0}:ch', 'chat:{c2499}:ch'), ['chat:{c0}:ch', 1, 'chat:{c2499}:ch', 1], 'every channel subscribed again')
  await server.command('SPUBLISH', 'chat:{c2499}:ch', 'hello')
  await waitFor(() => events.includes('chat:{c2499}:ch:hello'), 'a message on the last chunk')
  await subscription.unsubscribe('chat:{c0}:ch')
  t.equal(subscription.size, 2499)
  subscription.stop()
  await server.command('SPUBLISH', 'chat:{c1}:ch', 'ignored')
  await sleep(100)
  t.notOk(events.includes('chat:{c1}:ch:ignored'), 'a stopped subscription hands nothing on')
})

t.test('a Cluster whose subscribers are back before it is ready restores once it is', async (t) => {
  const cluster = await RedisCluster.start(t)
  const topology: RedisTopology = { kind: 'cluster', seeds: [{ host: '127.0.0.1', port: cluster.nodes[0]?.port ?? 0 }], password: undefined, tls: false }
  const client = createRedisClient(topology, 'test:early', 'subscriber')
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const subscription = new ShardedSubscription(client)
  const events: string[] = []
  subscription.listen({
    message: () => {},
    interrupted: () => events.push('interrupted'),
    restored: () => events.push('restored'),
    restoreFailed: (error) => events.push(`failed: ${(error as Error).message}`)
  })
  // Not connected yet (nothing to send, so nothing connects it).
  await subscription.subscribe([])
  // What ioredis emits when its sharded subscribers are back, here while the Cluster is not ready yet.
  client.emit('subscribersReady')
  client.emit('subscribersReady')
  t.same(events, ['interrupted', 'interrupted'], 'held, not restored: the Cluster takes no commands yet')
  await client.connect()
  await waitFor(() => events.includes('restored'), 'restored once ready', 10_000)
  t.equal(events.filter((event) => event === 'restored').length, 1, 'once, however many returns came before')
})

t.test('a Redis Cluster failover moves the probe to the new master; readiness comes back', async (t) => {
  const cluster = await RedisCluster.start(t)
  const topology: RedisTopology = { kind: 'cluster', seeds: [{ host: '127.0.0.1', port: cluster.nodes[0]?.port ?? 0 }], password: undefined, tls: false }
  const command = createRedisClient(topology, 'test:command', 'command')
  const subscriber = createRedisClient(topology, 'test:subscriber', 'subscriber')
  for (const client of [command, subscriber]) client.on('error', () => {})
  await Promise.all([command.connect(), subscriber.connect()])
  t.teardown(() => { command.disconnect(); subscriber.disconnect() })
  const broker = new RedisBroker({ command, subscriber, nodeId: 'f', historySize: 100, historyMaxBytes: 65536, historyTtlS: 60, readyProbeMs: 100, onError: () => {} })
  await broker.start(() => {})
  t.teardown(() => broker.close())
  await waitFor(() => broker.health().ok, 'ready', 10_000)
  const probe = (broker as unknown as { probe: { channels: Map<string, { master: string }> } }).probe
  const before = new Set([...probe.channels.values()].map((channel) => channel.master))
  // A replica takes over its master's slots (a manual, graceful failover).
  const replica = cluster.nodes.find((node) => !before.has(node.address))
  await cluster.command(replica?.port ?? 0, 'CLUSTER', 'FAILOVER')
  await waitFor(async () => (await cluster.masters()).some((master) => master.port === replica?.port), 'the replica promoted', 20_000, 100)
  await waitFor(() => [...probe.channels.values()].some((channel) => channel.master === replica?.address), 'a probe channel on the new master', 20_000, 100)
  t.equal(probe.channels.size, 3, 'still one probe channel per master')
  await waitFor(() => broker.health().ok, 'ready again', 20_000)
  t.pass('a probe came back from every master, the new one included')
})
