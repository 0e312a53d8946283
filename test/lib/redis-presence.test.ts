// Tests of lib/redis-presence.ts against a real redis-server: members and
// changes across nodes (over the broker's ephemeral path), dead nodes, and
// which errors are reported (anything unexpected) or kept quiet (Redis away).
import t from 'tap'
import { nodeKey, roomKeys } from '../../lib/redis-scripts.js'
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
  await server.command('PUBLISH', roomKeys('r').channel, JSON.stringify({ k: 'e', r: 'r', n: 'z', c: 'presence', d: { j: 1 } }))
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
