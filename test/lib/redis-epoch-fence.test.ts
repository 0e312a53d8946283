// The failover fence of PUBLISH_SCRIPT against a real redis-server: a log
// last written by another server (a promoted replica, a restart) goes on in a
// new epoch, so no id is given out twice, and the nodes deliver what follows
// instead of dropping it as a duplicate. A promoted replica that missed the
// tail is played here by rewinding the log and naming another writer in the
// meta, as the replica's copy would have it; test/integration/failover.test.ts
// does it with a real replica.
import t from 'tap'
import { parseMessageId } from '../../lib/message-id.js'
import { roomKeys } from '../../lib/redis-scripts.js'
import { startRedisNode } from '../helpers/redis-node.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/wait.js'

const OTHER_SERVER = 'f'.repeat(40)

/** What a replica promoted before it got the messages after `kept` holds of the room's log. */
async function loseTail (server: RedisServer, room: string, kept: number): Promise<void> {
  const { meta, log } = roomKeys(room)
  // Rebuilt rather than trimmed: a stream remembers its top id, the replica's copy never had the tail's.
  const entries = await server.command('XRANGE', log, '-', `${kept}-0`) as Array<[string, string[]]>
  await server.command('DEL', log)
  let bytes = 0
  for (const [id, fields] of entries) {
    await server.command('XADD', log, id, ...fields)
    bytes += Buffer.byteLength(fields[3] ?? '')
  }
  await server.command('HSET', meta, 's', kept, 'b', bytes, 'r', OTHER_SERVER)
}

const epochOf = (id: string) => parseMessageId(id)?.epoch

t.test('a promoted replica without the tail: new ids take a new epoch; nodes deliver them; resumes from before the loss recover', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  for (const node of [a, b]) {
    node.broker.subscribe('r')
    await node.broker.read('r', { limit: 1 })
  }
  const before = []
  for (let i = 1; i <= 5; i++) before.push(await a.broker.publish('r', 'alice', `m${i}`))
  await waitFor(() => b.delivered.length === 5, 'b to deliver the first five')
  await loseTail(server, 'r', 3)

  const after = [await a.broker.publish('r', 'alice', 'n1'), await a.broker.publish('r', 'alice', 'n2')]
  t.same(after.map((m) => m.seq), [4, 5], 'sequences go on from what the server has')
  const oldEpoch = epochOf(before[0]?.id ?? '')
  const newEpoch = epochOf(after[0]?.id ?? '')
  t.not(newEpoch, oldEpoch, 'in a new epoch')
  const given = new Set(before.map((m) => m.id))
  for (const message of after) t.notOk(given.has(message.id), `${message.id} was never given out before`)

  for (const node of [a, b]) {
    await waitFor(() => node.delivered.length === 7, 'each node to deliver the two new messages')
    t.same(node.delivered.map((m) => m.text), ['m1', 'm2', 'm3', 'm4', 'm5', 'n1', 'n2'], 'once each, none dropped as a duplicate')
    t.same(node.reported, [])
  }

  const history = await a.broker.read('r', { limit: 10 })
  t.same(history.messages.map((m) => m.id), [...before.slice(0, 3), ...after].map((m) => m.id), 'each entry keeps the id it was given')
  const resumed = await b.broker.read('r', { since: before[1]?.id, limit: 10 })
  t.same(resumed, { messages: [before[2], ...after], recovered: true }, 'a resume from before the loss gets the rest')
  const pastLoss = await b.broker.read('r', { since: before[4]?.id, limit: 10, fallbackLimit: 2 })
  t.same(pastLoss, { messages: after, recovered: false }, 'a resume past the lost tail is not recovered')
  const current = await b.broker.read('r', { since: after[0]?.id, limit: 10 })
  t.same(current, { messages: [after[1]], recovered: true })
})

t.test('a node that learns of the rewind from a resync goes back to where the log stands, then takes the new epoch', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  b.broker.subscribe('r')
  await b.broker.read('r', { limit: 1 })
  for (let i = 1; i <= 4; i++) await a.broker.publish('r', 'alice', `m${i}`)
  await waitFor(() => b.delivered.length === 4, 'b to deliver four')
  await loseTail(server, 'r', 2)
  // b's subscriber drops: it resubscribes and repairs from e1-4, which the log no longer reaches.
  await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await waitFor(() => b.broker.clusterStats.redisReconnects === 1 && b.broker.clusterStats.gapsDetected === 1, 'b to repair')
  await a.broker.publish('r', 'alice', 'n1')
  await waitFor(() => b.delivered.length === 5, 'b to deliver the new message')
  t.same(b.delivered.map((m) => m.text), ['m1', 'm2', 'm3', 'm4', 'n1'])
  t.equal(b.delivered[4]?.seq, 3, 'n1 took seq 3, in a new epoch')
  t.not(epochOf(b.delivered[4]?.id ?? ''), epochOf(b.delivered[2]?.id ?? ''))
})

t.test('a restart with the same data: a new epoch, nothing lost or repeated, old ids still resume', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const first = await a.broker.publish('r', 'alice', 'one')
  const second = await a.broker.publish('r', 'alice', 'two')
  await server.stop()
  await server.restart()
  await waitFor(() => a.command.status === 'ready', 'a to reconnect')
  const third = await a.broker.publish('r', 'alice', 'three')
  t.equal(third.seq, 3)
  t.not(epochOf(third.id), epochOf(second.id), 'the new server took a new epoch')
  t.same(await a.broker.read('r', { since: first.id, limit: 10 }), { messages: [second, third], recovered: true })
  t.same((await a.broker.read('r', { limit: 10 })).messages.map((m) => m.id), [first.id, second.id, third.id])
  const fourth = await a.broker.publish('r', 'alice', 'four')
  t.equal(epochOf(fourth.id), epochOf(third.id), 'one epoch per server')
})

t.test('a log written before fencing takes the server without a new epoch; earlier epochs whose entries are gone are dropped', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a', { historySize: 2 })
  const { meta } = roomKeys('r')
  const first = await a.broker.publish('r', 'alice', 'one')
  await server.command('HDEL', meta, 'r')
  const second = await a.broker.publish('r', 'alice', 'two')
  t.equal(epochOf(second.id), epochOf(first.id), 'no writer recorded: no new epoch')

  await server.command('HSET', meta, 'r', OTHER_SERVER)
  const third = await a.broker.publish('r', 'alice', 'three')
  t.equal(await server.command('HGET', meta, 'h'), `${epochOf(first.id)} 2`)
  await a.broker.publish('r', 'alice', 'four')
  const fifth = await a.broker.publish('r', 'alice', 'five')
  // The log keeps 4 and 5 now: the first epoch's entries are gone.
  await server.command('HSET', meta, 'r', OTHER_SERVER)
  const sixth = await a.broker.publish('r', 'alice', 'six')
  t.equal(await server.command('HGET', meta, 'h'), `${epochOf(third.id)} 5`, 'only epochs with entries left are kept')
  t.same(await a.broker.read('r', { since: first.id, limit: 10, fallbackLimit: 10 }), { messages: [fifth, sixth], recovered: false },
    'an epoch dropped: resumes from it are not recovered')
  t.same(await a.broker.read('r', { since: fifth.id, limit: 10 }), { messages: [sixth], recovered: true })
})
