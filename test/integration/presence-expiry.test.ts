// Finding 8 of issue 10 (presence that never expires), against real server
// processes and a real redis-server: a node killed with SIGKILL and restarted
// at once under the same NODE_ID must not bring its dead members back (they
// used to be listed for as long as the new run kept the heartbeat key alive),
// and a dead node's presence keys must be gone within PRESENCE_TTL_MS (member
// hashes used to live forever). Rerun: `npx tap test/integration/presence-expiry.test.ts`.
import t from 'tap'
import { nodeKey, roomKeys } from '../../lib/redis-scripts.js'
import { readiness } from '../helpers/cluster.js'
import { NodeProcess } from '../helpers/node-process.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/wait.js'
import { TestClient } from '../helpers/ws-client.js'

/** Short probe period and no presence batching, so the test reacts quickly. */
const NODE_ENV = { READY_PROBE_MS: '100', PRESENCE_BATCH_MS: '0' }
/** How long after PRESENCE_TTL_MS a dead node's keys may still be seen (Redis expires keys by sampling, 10 times a second). */
const EXPIRY_MARGIN_MS = 1500

async function startNode (t: Parameters<typeof NodeProcess.start>[0], redis: RedisServer, nodeId: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  const node = await NodeProcess.start(t, { ...NODE_ENV, REDIS_URL: redis.url, NODE_ID: nodeId, ...env })
  await waitFor(async () => await readiness(node.url) === 200, `node ${nodeId} ready`, 10_000)
  return node
}

async function members (client: TestClient, room: string): Promise<string[]> {
  const joined = await client.join(room)
  return [...(joined.members as string[])].sort()
}

t.test('a node SIGKILLed and restarted at once with the same NODE_ID shows none of its old members', async (t) => {
  const redis = await RedisServer.start(t)
  // The default TTL: the restart happens well within it.
  const a = await startNode(t, redis, 'a')
  const b = await startNode(t, redis, 'b')
  for (const name of ['ghost1', 'ghost2']) {
    const ghost = await TestClient.open(t, a.wsUrl, name)
    await ghost.join('r')
  }
  const observer = await TestClient.open(t, b.wsUrl, 'observer')
  t.same(await members(observer, 'r'), ['ghost1', 'ghost2', 'observer'], 'before the crash, b lists a\'s members')

  a.kill('SIGKILL')
  await a.exited
  const restarted = await startNode(t, redis, 'a')
  const fresh = await TestClient.open(t, restarted.wsUrl, 'fresh')
  t.same(await members(fresh, 'r'), ['fresh', 'observer'], 'the restarted node lists none of its old members')
  t.same(await members(observer, 'r'), ['fresh', 'observer'], 'nor does the other node')
  const newcomer = await TestClient.open(t, b.wsUrl, 'newcomer')
  t.same(await members(newcomer, 'r'), ['fresh', 'newcomer', 'observer'], 'a newcomer on the other node neither')
  const fields = await redis.command('HKEYS', roomKeys('r').members) as string[]
  t.equal(fields.length, 3, 'the dead members\' fields were tidied away')
})

t.test('a dead node\'s presence keys are gone within PRESENCE_TTL_MS', async (t) => {
  const TTL_MS = 2000
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a', { PRESENCE_TTL_MS: String(TTL_MS) })
  const b = await startNode(t, redis, 'b', { PRESENCE_TTL_MS: String(TTL_MS) })
  const alone = await TestClient.open(t, a.wsUrl, 'alone')
  await alone.join('only-a')
  await alone.join('shared')
  const other = await TestClient.open(t, b.wsUrl, 'other')
  t.same(await members(other, 'shared'), ['alone', 'other'])
  // Longer than the TTL: the live nodes keep their keys alive.
  await new Promise((resolve) => setTimeout(resolve, TTL_MS + EXPIRY_MARGIN_MS))
  t.equal(await redis.command('EXISTS', roomKeys('only-a').members), 1, 'a live node\'s member hash stays')
  t.equal(await redis.command('EXISTS', nodeKey('a')), 1, 'and its heartbeat key')

  a.kill('SIGKILL')
  await a.exited
  const killedAt = Date.now()
  await waitFor(async () => await redis.command('EXISTS', nodeKey('a'), roomKeys('only-a').members) === 0,
    'the dead node\'s heartbeat key and its room\'s member hash to expire', TTL_MS + EXPIRY_MARGIN_MS)
  t.comment(`gone ${Date.now() - killedAt} ms after the kill (PRESENCE_TTL_MS ${TTL_MS})`)
  t.equal(await redis.command('EXISTS', roomKeys('shared').members), 1, 'the hash a live node has members in stays')
  t.same(await members(other, 'shared'), ['other'], 'without the dead node\'s member')
  t.same(await redis.command('HVALS', roomKeys('shared').members), ['other'], 'whose field was tidied away on the read')
  const ttl = await redis.command('PTTL', roomKeys('shared').members) as number
  t.ok(ttl > 0 && ttl <= TTL_MS, `and it expires too unless refreshed (PTTL ${ttl})`)
})
