// The three Redis topologies at start: a process pointed at the wrong kind of
// Redis, or at none, stops with one clear line (and never prints the
// password); a node pointed at a Sentinel set works end to end.
import t from 'tap'
import { CLUSTER_ENV, readiness } from '../helpers/cluster.js'
import { freePort } from '../helpers/free-port.js'
import { NodeProcess, runUntilExit } from '../helpers/node-process.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { SENTINEL_MASTER, SentinelSet } from '../helpers/redis-sentinel.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TestClient } from '../helpers/ws-client.js'
import { waitFor } from '../helpers/wait.js'

const SECRET = 'hunter2-very-secret-password'

/** Runs the server until it exits, logging everything: no log line may print the password either. */
const run = async (env: Record<string, string>) => await runUntilExit({ LOG_LEVEL: 'debug', ...env })

/** The line the process ends with on stderr. */
function cannotStart (output: string): string {
  return output.split('\n').find((line) => line.startsWith('cannot start: ')) ?? `(no "cannot start" line in:\n${output})`
}

t.test('configuration: at most one topology, Sentinels need their master, a password only where the URL has none', async (t) => {
  const { code, output } = await run({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: '127.0.0.1:2', REDIS_SENTINELS: '127.0.0.1:3', REDIS_PASSWORD: SECRET })
  t.equal(code, 1)
  t.match(output, /REDIS_SENTINELS: expected at most one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES/)
  t.match(output, /REDIS_SENTINEL_MASTER: expected the name of the master/)
  const bad = await run({ REDIS_CLUSTER_NODES: 'redis-0:6379,nonsense', REDIS_URL: 'redis://127.0.0.1:1' })
  t.match(bad.output, /REDIS_CLUSTER_NODES: expected comma-separated host:port addresses like redis-0.internal:6379, got "nonsense"/)
  const password = await run({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_PASSWORD: SECRET })
  t.match(password.output, /REDIS_PASSWORD: expected unset unless REDIS_SENTINELS or REDIS_CLUSTER_NODES is set \(a REDIS_URL carries its own password\) \(got 28 characters\)/)
  t.notOk(output.includes(SECRET) || password.output.includes(SECRET), 'the password is never printed')
})

t.test('REDIS_URL pointing at a Redis Cluster node says to use REDIS_CLUSTER_NODES', async (t) => {
  const cluster = await RedisCluster.start(t)
  const { code, output } = await run({ REDIS_URL: `redis://127.0.0.1:${cluster.nodes[0]?.port}` })
  t.equal(code, 1)
  t.match(cannotStart(output), /REDIS_URL points at a Redis Cluster node \(redis:\/\/127\.0\.0\.1:\d+\); set REDIS_CLUSTER_NODES instead/)
})

t.test('REDIS_CLUSTER_NODES pointing at a plain Redis says to use REDIS_URL', async (t) => {
  const server = await RedisServer.start(t)
  const { code, output } = await run({ REDIS_CLUSTER_NODES: `127.0.0.1:${server.port}` })
  t.equal(code, 1)
  t.equal(cannotStart(output), `cannot start: REDIS_CLUSTER_NODES: 127.0.0.1:${server.port} is not a Redis Cluster node (cluster support is disabled); set REDIS_URL instead`)
})

t.test('unreachable Cluster seeds or Sentinels: one line naming every address, never the password', async (t) => {
  const [one, two] = [await freePort(), await freePort()]
  const cluster = await run({ REDIS_CLUSTER_NODES: `127.0.0.1:${one},127.0.0.1:${two}`, REDIS_PASSWORD: SECRET, REDIS_TLS: 'true' })
  t.equal(cluster.code, 1)
  t.match(cannotStart(cluster.output), new RegExp(`cannot reach any Redis Cluster seed of REDIS_CLUSTER_NODES \\(127\\.0\\.0\\.1:${one}: .*ECONNREFUSED.*; 127\\.0\\.0\\.1:${two}: .*\\)`))
  const sentinels = await run({ REDIS_SENTINELS: `127.0.0.1:${one}`, REDIS_SENTINEL_MASTER: 'chat', REDIS_PASSWORD: SECRET })
  t.equal(sentinels.code, 1)
  t.match(cannotStart(sentinels.output), /cannot reach any Sentinel of REDIS_SENTINELS \(127\.0\.0\.1:\d+: .*ECONNREFUSED.*\)\. Start the Sentinels or fix REDIS_SENTINELS/)
  t.notOk(cluster.output.includes(SECRET) || sentinels.output.includes(SECRET), 'the password is never printed')
})

t.test('Sentinel: nodes find the master through the Sentinels and work end to end; an unknown master name is named', async (t) => {
  const sentinels = await SentinelSet.start(t)
  const { master } = sentinels
  const sentinelPort = Number(sentinels.addresses.split(',')[0]?.split(':')[1])

  const unknown = await run({ REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`, REDIS_SENTINEL_MASTER: 'nope' })
  t.equal(unknown.code, 1)
  t.equal(cannotStart(unknown.output), `cannot start: REDIS_SENTINEL_MASTER: the Sentinel at 127.0.0.1:${sentinelPort} knows no master named "nope"`)

  const env = { ...CLUSTER_ENV, REDIS_SENTINELS: sentinels.addresses, REDIS_SENTINEL_MASTER: SENTINEL_MASTER }
  const a = await NodeProcess.start(t, { ...env, NODE_ID: 'a' })
  const b = await NodeProcess.start(t, { ...env, NODE_ID: 'b' })
  await waitFor(async () => await readiness(a.url) === 200 && await readiness(b.url) === 200, 'both nodes ready', 10_000, 50)
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  await alice.join('sentinel-room')
  const joined = await bob.join('sentinel-room')
  t.same([...(joined.members as string[])].sort(), ['alice', 'bob'], 'presence across nodes')
  const id = await alice.sendAndAck('sentinel-room', 'through the Sentinel master')
  await bob.until((frames) => frames.some((f) => f.type === 'message' && f.id === id), 'the message on node b')
  t.equal(Number(await master.command('EXISTS', 'chat:{sentinel-room}:log')), 1, 'stored on the master the Sentinel named')
})
