// Cluster mode on a real Redis Cluster (three masters, a replica each): two
// node processes seeded from different masters serve 100 rooms spread over
// every master — delivery across nodes once and in order, presence, history,
// idempotent broadcasts, readiness — and keep every message once and in order
// while the sharded subscriber connections of every master are killed.
import t, { type Test } from 'tap'
import { keySlot } from '../../lib/key-slot.js'
import { roomKeys } from '../../lib/redis-scripts.js'
import { CLUSTER_ENV, ids, readiness } from '../helpers/cluster.js'
import { NodeProcess } from '../helpers/node-process.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { TEST_TOKEN } from '../helpers/server.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'
import { sleep, waitFor } from '../helpers/wait.js'

const ROOMS = Array.from({ length: 100 }, (_, i) => `room-${i}`)
const READY_TIMEOUT_MS = 20_000

/** A node process on the cluster, seeded from `seed` only (it finds the other masters itself), once ready. */
async function startClusterNode (t: Test, seed: string, nodeId: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  const node = await NodeProcess.start(t, { ...CLUSTER_ENV, REDIS_CLUSTER_NODES: seed, NODE_ID: nodeId, ...env })
  await waitFor(async () => await readiness(node.url) === 200, `node ${nodeId} ready`, READY_TIMEOUT_MS, 50)
  return node
}

/** Which master serves each slot, by CLUSTER SLOTS. */
async function slotOwners (cluster: RedisCluster): Promise<Map<number, number>> {
  const [first] = await cluster.masters()
  const ranges = await cluster.command((first as { port: number }).port, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
  const owners = new Map<number, number>()
  for (const [from, to, [, port]] of ranges) for (let slot = from; slot <= to; slot++) owners.set(slot, port)
  return owners
}

t.test('two nodes seeded from different masters serve 100 rooms on every master', async (t) => {
  const cluster = await RedisCluster.start(t)
  const masters = await cluster.masters()
  t.equal(masters.length, 3, 'three masters')
  const owners = await slotOwners(cluster)
  const roomMasters = new Set(ROOMS.map((room) => owners.get(keySlot(roomKeys(room).channel))))
  t.equal(roomMasters.size, 3, 'the rooms live on all three masters')

  const [masterA, masterB] = masters as [typeof masters[0], typeof masters[0]]
  const a = await startClusterNode(t, masterA.address, 'a')
  const b = await startClusterNode(t, masterB.address, 'b')
  t.equal(await readiness(a.url), 200, 'node a ready (a probe came back from every master)')
  t.equal(await readiness(b.url), 200, 'node b ready')

  const alice = await TestClient.open(t, a.wsUrl, 'alice')
  const bob = await TestClient.open(t, b.wsUrl, 'bob')
  for (const room of ROOMS) await alice.join(room)
  const joined: Frame[] = []
  for (const room of ROOMS) joined.push(await bob.join(room))
  t.ok(joined.every((frame) => [...(frame.members as string[])].sort().join() === 'alice,bob'), 'every room lists the members of both nodes')
  await alice.until((frames) => frames.filter((f) => f.type === 'presence').length >= ROOMS.length, 'a presence frame per room on node a', 10_000)
  t.ok(ROOMS.every((room) => alice.frames.some((f) => f.type === 'presence' && f.room === room && (f.joined as string[]).includes('bob'))),
    'node a hears bob join every room (sharded presence)')

  // Three messages per room from node b, one per room from node a.
  for (let round = 0; round < 3; round++) for (const room of ROOMS) bob.send({ type: 'send', room, text: `b${round}` })
  for (const room of ROOMS) alice.send({ type: 'send', room, text: 'a' })
  for (const client of [alice, bob]) {
    await client.until((frames) => frames.filter((f) => f.type === 'message').length >= ROOMS.length * 4, 'every message', 20_000)
  }
  await alice.barrier()
  await bob.barrier()
  for (const room of ROOMS) {
    const atA = alice.messages(room)
    const atB = bob.messages(room)
    if (atA.length !== 4 || new Set(ids(atA)).size !== 4 || ids(atA).join() !== ids(atB).join()) {
      t.fail(`${room}: each message once, in one order on both nodes`, { atA, atB })
    }
    const fromB = atA.map((f) => f.text).filter((text) => text !== 'a')
    if (fromB.join() !== 'b0,b1,b2') t.fail(`${room}: node b's messages in send order on node a`, { fromB })
  }
  t.pass('every room: each message once on both nodes, in one order')

  // History and an idempotent broadcast, across nodes.
  const post = (node: NodeProcess, text: string) => fetch(`${node.url}/rooms/room-7/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': 'cluster-1' },
    body: JSON.stringify({ text })
  })
  const first = await post(a, 'once')
  t.equal(first.status, 202)
  const firstBody = await first.json() as { id: string }
  const repeat = await post(b, 'twice?')
  t.same(await repeat.json(), firstBody, 'the repeat on the other node gets the first answer')
  await bob.until((frames) => frames.some((f) => f.type === 'message' && f.id === firstBody.id), 'the broadcast on node b')
  const history = await fetch(`${b.url}/rooms/room-7/messages`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
  const body = await history.json() as { messages: Frame[] }
  t.equal(body.messages.length, 5, 'history holds the five messages, the broadcast once')
  t.same(ids(body.messages), ids(bob.messages('room-7')), 'in the order the members got them')
  t.equal(body.messages.at(-1)?.id, firstBody.id)
  for (const master of masters) t.ok(Number(await cluster.command(master.port, 'DBSIZE')) > 0, `master ${master.port} holds room keys`)
})

t.test('sharded subscriber connections killed on every master while messages flow: every message once, in order', async (t) => {
  const cluster = await RedisCluster.start(t)
  const masters = await cluster.masters()
  const [masterA, masterB] = masters as [typeof masters[0], typeof masters[0]]
  const a = await startClusterNode(t, masterA.address, 'a')
  const b = await startClusterNode(t, masterB.address, 'b')
  const rooms = ROOMS.slice(0, 12)
  const publisher = await TestClient.open(t, a.wsUrl, 'publisher')
  const reader = await TestClient.open(t, b.wsUrl, 'reader')
  for (const room of rooms) {
    await publisher.join(room)
    await reader.join(room)
  }
  const PER_ROOM = 40
  const run = { killing: true }
  let kills = 0
  const killer = (async () => {
    while (run.killing && kills < 30) {
      await sleep(250)
      await Promise.all(masters.map((master) => cluster.command(master.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub')))
      kills++
    }
  })()
  for (let i = 0; i < PER_ROOM; i++) {
    for (const room of rooms) publisher.send({ type: 'send', room, text: `m${i}`, ref: `${room}/${i}` })
    await sleep(40)
  }
  const total = PER_ROOM * rooms.length
  await publisher.until((frames) => frames.filter((f) => f.type === 'ack' || f.type === 'error').length >= total, 'every send answered', 20_000)
  run.killing = false
  await killer
  t.ok(kills >= 5, `the pub/sub connections of every master were killed ${kills} times`)
  t.equal(publisher.ofType('error').length, 0, 'no send was refused')
  await reader.until((frames) => frames.filter((f) => f.type === 'message').length >= total, 'every message on node b', 30_000)
  await reader.barrier()
  const expected = Array.from({ length: PER_ROOM }, (_, i) => `m${i}`)
  for (const room of rooms) t.same(reader.messages(room).map((f) => f.text), expected, `${room}: every message once, in order`)
  await waitFor(async () => await readiness(b.url) === 200 && await readiness(a.url) === 200, 'both nodes ready again', READY_TIMEOUT_MS)
})
