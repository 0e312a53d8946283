// A storm of joins on one node, against a real redis-server: subscriptions go
// out paced (lib/subscription-batcher.ts) and history reads bounded
// (READS_MAX_IN_FLIGHT), so every join succeeds. The node runs in a process
// of its own (test/helpers/broker-process.ts).
import t from 'tap'
import { roomKeys } from '../../lib/redis-scripts.js'
import { BrokerProcess } from '../helpers/broker-process.js'
import { RedisServer } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/wait.js'

/**
 * Joins in the storm, all asked for in one turn of the node's event loop:
 * the harshest burst (before pacing every one of them failed with
 * `unavailable`: 50k SUBSCRIBE commands on one connection, the room starts
 * timing out behind them).
 */
const STORM_ROOMS = 50_000
/** The storm must be over by then, every join answered. */
const STORM_BUDGET_MS = 90_000

t.test(`a storm of ${STORM_ROOMS} joins on one node: every join succeeds, and the rooms are live`, async (t) => {
  const server = await RedisServer.start(t, ['--appendonly', 'no'])
  const node = await BrokerProcess.start(t, server.url)
  const joined = await node.ask({ kind: 'join', prefix: 'storm-', count: STORM_ROOMS, perTurn: STORM_ROOMS }, STORM_BUDGET_MS)
  t.equal(joined.failed, 0, `every join succeeded (${joined.failed} failed, the first with ${joined.firstFailure ?? 'nothing'})`)
  t.ok(joined.ms < STORM_BUDGET_MS, `in ${joined.ms} ms`)
  t.match(String(await server.command('CLIENT', 'LIST', 'TYPE', 'pubsub')), new RegExp(`sub=${STORM_ROOMS + 1} `), 'every room subscribed, and the probe channel')
  // Live: a message to the first and to the last room of the storm arrives.
  for (const room of ['storm-0', `storm-${STORM_ROOMS - 1}`]) {
    await server.command('SPUBLISH', roomKeys(room).channel, JSON.stringify({ k: 'm', r: room, e: 'E', s: 1, f: 'x', x: 'hi', t: 1 }))
  }
  await waitFor(async () => (await node.ask({ kind: 'delivered', prefix: 'storm-' }, 10_000)).rooms === 2, 'both messages to arrive', 10_000, 100)
  const stats = await node.ask({ kind: 'stats' }, 10_000)
  t.match(stats, { reconnects: 0, healthy: true, reported: [] }, 'the subscription held, and nothing unexpected was reported')
})
