// Failover through the topologies' own clients, with real processes: a
// Sentinel set (REDIS_SENTINELS, ioredis asks the sentinels where the master
// is) and a Redis Cluster (REDIS_CLUSTER_NODES) whose master of a busy room is
// SIGKILLed and replaced by its replica. The promises of PROTOCOL §5: no two
// different messages share an id, no new message is dropped as a duplicate,
// clients stay connected, readiness dips and returns, and with
// REDIS_WAIT_REPLICAS=1 nothing acknowledged is lost.
import t, { type Test } from 'tap'
import { keySlot } from '../../lib/key-slot.js'
import { parseMessageId } from '../../lib/message-id.js'
import { roomKeys } from '../../lib/redis-scripts.js'
import { CLUSTER_ENV, readiness } from '../helpers/cluster.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { SENTINEL_MASTER, SentinelSet, startReplica } from '../helpers/redis-sentinel.js'
import { NodeProcess } from '../helpers/node-process.js'
import { type Frame, TestClient } from '../helpers/ws-client.js'
import { sleep, waitFor } from '../helpers/wait.js'

/** Detection, promotion, reconnects and a probe round, on a loaded machine. */
const RECOVERY_TIMEOUT_MS = 30_000

/**
 * Two ready node processes on `env`'s Redis, a member of `room` on each.
 * Processes, killed in teardown: a client of a Cluster or Sentinel set with a
 * dead server keeps reconnecting to it, which would keep a test process alive.
 */
async function nodesWithMembers (t: Test, env: Record<string, string>, room: string) {
  const nodes: NodeProcess[] = []
  for (const id of ['a', 'b']) {
    const node = await NodeProcess.start(t, { ...CLUSTER_ENV, NODE_ID: id, ...env })
    await waitFor(async () => await readiness(node.url) === 200, `node ${id} ready`, RECOVERY_TIMEOUT_MS, 50)
    nodes.push(node)
  }
  const [a, b] = nodes as [NodeProcess, NodeProcess]
  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  await alice.join(room)
  await bob.join(room)
  return { a, b, alice, bob }
}

/** Sends `m0`, `m1`… every 20 ms until stopped, keeping every answer (ack or error); stopped in teardown too. */
function sendContinuously (t: Test, client: TestClient, room: string) {
  const replies: Frame[] = []
  const run = { sending: true }
  const done = (async () => {
    for (let i = 0; run.sending && i < 1000; i++) {
      const ref = `send-${i}`
      const from = client.frames.length
      client.send({ type: 'send', room, text: `m${i}`, ref })
      replies.push(await client.next((frame) => (frame.type === 'ack' || frame.type === 'error') && frame.ref === ref, `the answer to m${i}`, from, 10_000))
      await sleep(20)
    }
  })()
  const stop = async () => {
    run.sending = false
    await done
  }
  t.teardown(async () => {
    run.sending = false
    await done.catch(() => {})
  })
  return { replies, stop, acked: () => replies.filter((r) => r.type === 'ack').map((r) => r.id as string) }
}

/** The promoted master carries the log on in a new epoch: the last acknowledged id's is not the first's. */
function assertNewEpoch (t: Test, acked: string[]): void {
  const epochOf = (id: string | undefined) => parseMessageId(id ?? '')?.epoch
  t.not(epochOf(acked.at(-1)), epochOf(acked[0]), 'the ids after the failover are in a new epoch')
}

/** The promises, checked on every client: ids name one message each, acknowledged ones delivered once in order, still connected. */
async function assertNothingLied (t: Test, clients: TestClient[], room: string, acked: string[], mustHaveAll: boolean): Promise<void> {
  for (const client of clients) {
    if (mustHaveAll) {
      await client.until(() => acked.every((id) => client.messages(room).some((f) => f.id === id)), 'every acknowledged message', RECOVERY_TIMEOUT_MS)
    }
    await client.barrier()
    const got = client.messages(room)
    const byId = new Map<string, string>()
    for (const frame of got) {
      const seen = byId.get(frame.id as string)
      if (seen !== undefined) t.fail(`id ${String(frame.id)} delivered twice ("${seen}", "${String(frame.text)}")`)
      byId.set(frame.id as string, frame.text as string)
    }
    t.equal(byId.size, got.length, 'no id twice')
    const delivered = got.map((f) => f.id as string).filter((id) => acked.includes(id))
    if (mustHaveAll) t.same(delivered, acked, 'every acknowledged message, once, in send order')
    t.equal(client.closeCode, undefined, 'the client stayed connected')
  }
}

t.test('Sentinel (REDIS_SENTINELS), REDIS_WAIT_REPLICAS=1: the master killed while messages flow', async (t) => {
  const set = await SentinelSet.start(t)
  const { a, b, alice, bob } = await nodesWithMembers(t, {
    REDIS_SENTINELS: set.addresses, REDIS_SENTINEL_MASTER: SENTINEL_MASTER, REDIS_WAIT_REPLICAS: '1'
  }, 'flow')
  const sender = sendContinuously(t, alice, 'flow')
  await waitFor(() => sender.acked().length >= 20, 'twenty acknowledged before the failover', 10_000)
  await set.failover()
  await waitFor(async () => await readiness(a.url) === 200 && await readiness(b.url) === 200, 'readiness back on both nodes', RECOVERY_TIMEOUT_MS, 50)
  await startReplica(t, set.replica)
  const before = sender.replies.length
  await waitFor(() => sender.replies.slice(before).filter((r) => r.type === 'ack').length >= 20, 'twenty acknowledged after the failover', RECOVERY_TIMEOUT_MS)
  await sender.stop()
  for (const error of sender.replies.filter((r) => r.type === 'error')) t.match(error, { code: /^(unavailable|timeout)$/ }, 'refused loudly')
  assertNewEpoch(t, sender.acked())
  await assertNothingLied(t, [alice, bob], 'flow', sender.acked(), true)
})

t.test('Redis Cluster: the busy room\'s master SIGKILLed, its replica promoted while messages flow', async (t) => {
  const cluster = await RedisCluster.start(t)
  const room = 'busy'
  const slot = keySlot(roomKeys(room).channel)
  /** The port of the master serving the room's slot, as the first live master tells it. */
  const ownerOf = async (): Promise<number | undefined> => {
    const [master] = await cluster.masters()
    if (master === undefined) return undefined
    const ranges = await cluster.command(master.port, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
    return ranges.find(([from, to]) => slot >= from && slot <= to)?.[2][1]
  }
  const doomed = await ownerOf()
  const seeds = (await cluster.masters()).filter((master) => master.port !== doomed).map((master) => master.address).join(',')
  const { a, b, alice, bob } = await nodesWithMembers(t, { REDIS_CLUSTER_NODES: seeds }, room)
  const sender = sendContinuously(t, alice, room)
  await waitFor(() => sender.acked().length >= 20, 'twenty acknowledged before the kill', 10_000)
  const node = cluster.nodes.find((candidate) => candidate.port === doomed)
  node?.process.kill('SIGKILL')
  await waitFor(async () => await readiness(a.url) === 503, 'readiness to dip: a master is gone', RECOVERY_TIMEOUT_MS, 50)
  await waitFor(async () => { try { const owner = await ownerOf(); return owner !== undefined && owner !== doomed } catch { return false } },
    'the replica to take the slot over', RECOVERY_TIMEOUT_MS, 100)
  await waitFor(async () => await readiness(a.url) === 200 && await readiness(b.url) === 200, 'readiness back on both nodes', RECOVERY_TIMEOUT_MS, 50)
  const before = sender.replies.length
  await waitFor(() => sender.replies.slice(before).filter((r) => r.type === 'ack').length >= 20, 'twenty acknowledged after the promotion', RECOVERY_TIMEOUT_MS)
  await sender.stop()
  for (const error of sender.replies.filter((r) => r.type === 'error')) t.match(error, { code: /^(unavailable|timeout)$/ }, 'refused loudly')
  // REDIS_WAIT_REPLICAS=0: a tail may be lost; what came after the promotion must all arrive.
  const acked = sender.acked()
  const after = acked.filter((id) => sender.replies.slice(before).some((r) => r.id === id))
  assertNewEpoch(t, acked)
  await assertNothingLied(t, [alice, bob], room, after, true)
  await assertNothingLied(t, [alice, bob], room, acked, false)
})
