// A node holding more rooms than one command can carry loses its
// subscription (CLIENT KILL TYPE pubsub): it subscribes again in chunks of
// SUBSCRIBE_CHUNK_CHANNELS (one SUBSCRIBE of 150k channels threw a RangeError
// and took the node down) and repairs every room from its log. The node runs
// in a process of its own (test/helpers/broker-process.ts).
import t from 'tap'
import { BrokerProcess } from '../helpers/broker-process.js'
import { startRedisNode } from '../helpers/redis-node.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/wait.js'

const ROOMS = 150_000
/** Rooms that get a message while the node resubscribes: every hundredth. */
const SAMPLE_EVERY = 100
/** Joining 150k rooms and repairing them all takes minutes on a busy CI machine. */
const JOIN_BUDGET_MS = 300_000
const REPAIR_BUDGET_MS = 240_000
t.setTimeout(JOIN_BUDGET_MS + REPAIR_BUDGET_MS + 60_000)

t.test(`a node with ${ROOMS} rooms survives a subscriber kill and repairs every room`, async (t) => {
  const server = await RedisServer.start(t, ['--appendonly', 'no'])
  const node = await BrokerProcess.start(t, server.url)
  const joined = await node.ask({ kind: 'join', prefix: 'big-', count: ROOMS, perTurn: 1000 }, JOIN_BUDGET_MS)
  t.equal(joined.failed, 0, `every room joined in ${joined.ms} ms (first failure: ${joined.firstFailure ?? 'none'})`)

  t.equal(await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub'), 1, 'killed the node\'s subscriber connection')
  // Messages stored while it resubscribes: some arrive live, the rest only through the repair.
  const writer = await startRedisNode(t, server, 'writer')
  const sample: Array<Promise<unknown>> = []
  for (let i = 0; i < ROOMS; i += SAMPLE_EVERY) sample.push(writer.broker.publish(`big-${i}`, 'writer', `to room ${i}`))
  await Promise.all(sample)

  const expected = ROOMS / SAMPLE_EVERY
  let seen = { rooms: 0, messages: 0 }
  const repairStarted = Date.now()
  await waitFor(async () => {
    seen = await node.ask({ kind: 'delivered', prefix: 'big-' }, 30_000)
    return seen.rooms === expected
  }, `a message delivered in each of ${expected} rooms`, REPAIR_BUDGET_MS, 1000).catch((error: Error) => {
    throw new Error(`${error.message} (${seen.rooms} so far)`)
  })
  t.pass(`repaired in ${Date.now() - repairStarted} ms`)
  t.same(await node.ask({ kind: 'delivered', prefix: 'big-' }, 30_000), { kind: 'delivered', rooms: expected, messages: expected }, 'each once')
  t.match(String(await server.command('CLIENT', 'LIST', 'TYPE', 'pubsub')), new RegExp(`sub=${ROOMS + 1} `), 'every room subscribed again, and the probe channel')
  const stats = await node.ask({ kind: 'stats' }, 30_000)
  t.match(stats, { reconnects: 1, healthy: true, reported: [] }, 'one reconnect, ready again, nothing unexpected reported')
})
