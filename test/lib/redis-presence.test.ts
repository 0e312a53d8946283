// Tests of lib/redis-presence.ts against a real redis-server: members and
// changes across nodes (over the broker's ephemeral path), dead nodes and
// earlier runs of a node (incarnations), the expiry of every presence key, and
// which errors are reported (anything unexpected) or kept quiet (Redis away).
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { EphemeralChannel } from '../../lib/broker.js'
import { RedisPresence } from '../../lib/redis-presence.js'
import { nodeKey, roomKeys } from '../../lib/redis-scripts.js'
import { connectionOptions } from '../../lib/redis-topology.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { type RedisNode, startRedisNode } from '../helpers/redis-node.js'
import { RedisServer } from '../helpers/redis-server.js'

async function serving (room: string, ...nodes: RedisNode[]): Promise<void> {
  for (const node of nodes) {
    node.broker.subscribe(room)
    await node.broker.read(room, { limit: 1 })
  }
}

t.test('members and changes cross nodes; a node hears no echo of its own changes', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  await serving('r', a, b)
  a.presence.memberJoined('r', { id: '1', name: 'alice' })
  await waitFor(async () => (await b.presence.remoteMembers('r')).length === 1, 'b to see alice')
  t.same(await b.presence.remoteMembers('r'), ['alice'])
  t.same(await a.presence.remoteMembers('r'), [], 'a node\'s own members are not remote to it')

  a.presence.publishPresence('r', ['alice'], [])
  b.presence.publishPresence('r', [], ['bob'])
  await waitFor(() => a.remoteChanges.length === 1 && b.remoteChanges.length === 1, 'both changes to arrive')
  t.same(b.remoteChanges, [{ room: 'r', joined: ['alice'], left: [] }])
  t.same(a.remoteChanges, [{ room: 'r', joined: [], left: ['bob'] }])
  for (const node of [a, b]) t.equal(node.broker.clusterStats.gapsDetected, 0, 'presence took no place in the message order')

  a.presence.memberLeft('r', { id: '1', name: 'alice' })
  await waitFor(async () => (await b.presence.remoteMembers('r')).length === 0, 'alice to leave')
  t.same(a.reported, [])
  t.same(b.reported, [])
})

t.test('members of a node whose heartbeat key expired are not listed, and are tidied away', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  a.presence.memberJoined('r', { id: '1', name: 'alice' })
  await waitFor(async () => (await b.presence.remoteMembers('r')).length === 1, 'b to see alice')
  await server.command('DEL', nodeKey('a'))
  t.same(await b.presence.remoteMembers('r'), [])
  await waitFor(async () => await server.command('HLEN', roomKeys('r').members) === 0, 'the dead member to be removed')
})

t.test('close removes this node\'s members and heartbeat key, so others drop them at once', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  a.presence.memberJoined('r', { id: '1', name: 'alice' })
  await waitFor(async () => (await b.presence.remoteMembers('r')).length === 1, 'b to see alice')
  await a.presence.close()
  t.equal(await server.command('EXISTS', nodeKey('a')), 0)
  t.same(await b.presence.remoteMembers('r'), [])
})

t.test('unexpected errors are reported; the joiner still gets an answer', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  await server.command('SET', roomKeys('w').members, 'not a hash')
  a.presence.memberJoined('w', { id: '1', name: 'alice' })
  t.same(await a.presence.remoteMembers('w'), [], 'no list rather than no answer')
  await waitFor(() => a.reported.length === 2, 'both failures to be reported')
  t.match(a.reported.map((r) => r.context).sort(), ['adding a member', 'reading the member list'])
  t.match(a.reported[0], { error: { message: /WRONGTYPE/ } })
})

t.test('a malformed presence change from another node is reported and ignored', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  await serving('r', a)
  await server.command('SPUBLISH', roomKeys('r').channel, JSON.stringify({ k: 'e', r: 'r', n: 'z', c: 'presence', d: { j: 1 } }))
  await waitFor(() => a.reported.length === 1, 'the report')
  t.same(a.remoteChanges, [])
  t.match(a.reported[0], { context: 'room r', error: { message: /malformed presence change/ } })
})

t.test('Redis away: membership changes are kept for later and nothing is reported; they are written when it returns', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  a.presence.memberJoined('r', { id: '1', name: 'alice' })
  a.presence.memberJoined('r', { id: '2', name: 'carol' })
  await waitFor(async () => (await b.presence.remoteMembers('r')).length === 2, 'b to see both')
  await server.stop()
  await waitFor(() => a.command.status !== 'ready', 'the connection to notice')
  a.presence.memberJoined('r', { id: '3', name: 'dave' })
  a.presence.memberLeft('r', { id: '2', name: 'carol' })
  a.presence.publishPresence('r', ['dave'], ['carol'])
  t.same(await a.presence.remoteMembers('r'), [])
  await sleep(300)
  t.same(a.reported, [], 'Redis being away is expected, not news')
  await server.restart()
  await waitFor(async () => {
    const names = await b.presence.remoteMembers('r').catch(() => [])
    return names.sort().join() === 'alice,dave'
  }, 'the join and the leave made while away to reach Redis', 10_000)
  t.same(a.reported, [])
})

/** A RedisPresence of its own (a run of node `nodeId`), on its own connection; `crash` cuts it off without its cleanup. */
async function run (t: Test, server: RedisServer, nodeId: string, incarnation: string, presenceTtlMs = 3000) {
  const command = new Redis(server.url, connectionOptions(`test:${nodeId}:${incarnation}`))
  command.on('error', () => {})
  await command.connect()
  const reported: unknown[] = []
  // Presence changes travel on the broker's channel; these tests only look at the member lists.
  const channel: EphemeralChannel = { publishEphemeral () {}, onEphemeral () {} }
  const presence = new RedisPresence({ command, channel, nodeId, presenceTtlMs, incarnation, onError: (error) => reported.push(error) })
  await presence.start(() => {})
  t.teardown(async () => {
    await presence.close()
    command.disconnect()
  })
  return { presence, reported, crash: () => command.disconnect() }
}

t.test('a later run of a node under the same NODE_ID hides the earlier run\'s members at once', async (t) => {
  const server = await RedisServer.start(t)
  const b = await startRedisNode(t, server, 'b')
  const first = await run(t, server, 'a', 'run1')
  first.presence.memberJoined('r', { id: '1', name: 'alice' })
  await waitFor(async () => (await b.presence.remoteMembers('r')).length === 1, 'b to see alice')
  first.crash()

  const second = await run(t, server, 'a', 'run2')
  t.equal(await server.command('GET', nodeKey('a')), 'run2', 'the heartbeat key holds the live run')
  t.same(await b.presence.remoteMembers('r'), [], 'alice died with the first run')
  t.same(await second.presence.remoteMembers('r'), [], 'the node itself does not list its earlier run\'s members')
  await waitFor(async () => await server.command('HLEN', roomKeys('r').members) === 0, 'the dead field to be tidied away')
  second.presence.memberJoined('r', { id: '1', name: 'bob' })
  await waitFor(async () => (await b.presence.remoteMembers('r')).join() === 'bob', 'b to see the new run\'s member')
  t.same(await server.command('HKEYS', roomKeys('r').members), ['a/run2.1'], 'fields carry the run: <node>/<incarnation>.<connection>')
  t.same([...first.reported, ...second.reported], [])
})

t.test('members of a node of the version before incarnations count while its key holds "1"', async (t) => {
  const server = await RedisServer.start(t)
  const b = await startRedisNode(t, server, 'b')
  await server.command('HSET', roomKeys('r').members, 'old/0123abcd', 'veteran')
  await server.command('SET', nodeKey('old'), '1', 'PX', 3000)
  t.same(await b.presence.remoteMembers('r'), ['veteran'], 'a rolling upgrade neither hides nor tidies them')
  t.equal(await server.command('HLEN', roomKeys('r').members), 1)
  await server.command('SET', nodeKey('old'), 'newer-run', 'PX', 3000)
  t.same(await b.presence.remoteMembers('r'), [], 'once a run with incarnations owns the node id, they are gone')
})

t.test('member hashes expire unless a node with members in them refreshes them', async (t) => {
  const TTL_MS = 300
  const server = await RedisServer.start(t)
  const a = await run(t, server, 'a', 'run1', TTL_MS)
  a.presence.memberJoined('r', { id: '1', name: 'alice' })
  a.presence.memberJoined('gone', { id: '1', name: 'alice' })
  a.presence.memberLeft('gone', { id: '1', name: 'alice' })
  await waitFor(async () => await server.command('PTTL', roomKeys('r').members) as number > 0, 'the hash to get an expiry')
  t.ok(await server.command('PTTL', roomKeys('r').members) as number <= TTL_MS, 'of at most PRESENCE_TTL_MS')
  await sleep(TTL_MS * 3)
  t.equal(await server.command('EXISTS', roomKeys('r').members), 1, 'kept alive by the refresh while the member is there')
  t.ok(await server.command('PTTL', nodeKey('a')) as number <= TTL_MS, 'like the heartbeat key')

  // Gone anyway (Redis was away longer than the TTL): the refresh writes the members back.
  await server.command('DEL', roomKeys('r').members)
  await waitFor(async () => await server.command('HGET', roomKeys('r').members, 'a/run1.1') === 'alice', 'the member to be written back')
  await waitFor(async () => await server.command('PTTL', roomKeys('r').members) as number > 0, 'with its expiry')

  a.presence.memberLeft('r', { id: '1', name: 'alice' })
  a.presence.memberJoined('r', { id: '2', name: 'bob' })
  a.crash()
  await sleep(TTL_MS * 2)
  t.same(await server.command('KEYS', '*'), [], 'once nobody refreshes them, every presence key expires')
  t.same(a.reported, [])
})

t.test('close deletes the heartbeat key only while it holds its own run', async (t) => {
  const server = await RedisServer.start(t)
  const first = await run(t, server, 'a', 'run1')
  const second = await run(t, server, 'a', 'run2')
  await first.presence.close()
  t.equal(await server.command('GET', nodeKey('a')), 'run2', 'the later run keeps its key')
  await second.presence.close()
  t.equal(await server.command('EXISTS', nodeKey('a')), 0)
})

t.test('a user on several nodes is one remote member; remoteHasUser sees the other nodes only', async (t) => {
  const server = await RedisServer.start(t)
  const a = await startRedisNode(t, server, 'a')
  const b = await startRedisNode(t, server, 'b')
  const c = await startRedisNode(t, server, 'c')
  // As the hub records a user: id `user:<id>`, its first connection's name.
  a.presence.memberJoined('r', { id: 'user:alice', name: 'Alice' })
  b.presence.memberJoined('r', { id: 'user:alice', name: 'Alice' })
  b.presence.memberJoined('r', { id: '1f', name: 'guest' })
  b.presence.memberJoined('r', { id: '2f', name: 'guest' })
  await waitFor(async () => (await c.presence.remoteMembers('r')).length === 3, 'c to see alice once and both guests')
  t.same((await c.presence.remoteMembers('r')).sort(), ['Alice', 'guest', 'guest'], 'one entry per user, one per guest connection')
  t.same((await a.presence.remoteMembers('r', new Set(['alice']))).sort(), ['guest', 'guest'], 'a user the node has itself is not listed again')
  t.equal(await a.presence.remoteHasUser('r', 'alice'), true, 'b has alice')
  t.equal(await c.presence.remoteHasUser('r', 'bob'), false)
  b.presence.memberLeft('r', { id: 'user:alice', name: 'Alice' })
  await waitFor(async () => !await a.presence.remoteHasUser('r', 'alice'), 'a to see alice only on itself')
  t.equal(await c.presence.remoteHasUser('r', 'alice'), true, 'still on a')
})
