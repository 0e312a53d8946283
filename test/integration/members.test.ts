// GET /rooms/:id/members (PROTOCOL §4) over real sockets: one entry per user
// id with its connections, one per guest connection, `count` = connections;
// on a single node and across two node processes sharing a real redis-server,
// where a SIGKILLed node's members drop out within PRESENCE_TTL_MS.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { readiness } from '../helpers/cluster.js'
import { NodeProcess } from '../helpers/node-process.js'
import { RedisServer } from '../helpers/redis-server.js'
import { startServer, TEST_TOKEN } from '../helpers/server.js'
import { hsToken, nowS, TEST_JWT_SECRET } from '../helpers/tokens.js'
import { waitFor } from '../helpers/wait.js'
import { TestClient } from '../helpers/ws-client.js'

const AUTH_ENV = { AUTH_JWT_SECRET: TEST_JWT_SECRET }

interface Entry {
  name: string
  user?: string
  connections: number
}

interface Members {
  room: string
  count: number
  members: Entry[]
}

async function members (url: string, room: string): Promise<Members> {
  const response = await fetch(`${url}/rooms/${room}/members`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
  if (response.status !== 200) throw new Error(`members answered ${response.status}: ${await response.text()}`)
  return await response.json() as Members
}

/** Entries in a stable order, for comparing. */
function sorted (list: Entry[]): Entry[] {
  const key = (entry: Entry) => `${entry.user ?? ''}/${entry.name}`
  return [...list].sort((x, y) => key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0)
}

async function connect (t: Test, wsUrl: string, token: string): Promise<TestClient> {
  const client = await new Promise<TestClient>((resolve, reject) => {
    const socket = new WebSocket(wsUrl, ['chat', `bearer.${token}`])
    const client = new TestClient(socket)
    socket.once('open', () => resolve(client))
    socket.once('error', reject)
  })
  t.teardown(() => client.socket.terminate())
  await client.next((f) => f.type === 'welcome', 'welcome')
  return client
}

t.test('single node: a user once with its connections, guests once per connection, count = connections', async (t) => {
  const server = await startServer(t, AUTH_ENV)
  t.same(await members(server.url, 'hall'), { room: 'hall', count: 0, members: [] }, 'an empty room')

  const token = await hsToken({ sub: 'alice', name: 'Alice', exp: nowS() + 600 })
  const first = await connect(t, server.wsUrl, token)
  const second = await connect(t, server.wsUrl, token)
  await first.join('hall')
  await second.join('hall')
  // Two guests under one name are still two people.
  for (let i = 0; i < 2; i++) await (await TestClient.open(t, server.wsUrl, 'guest')).join('hall')
  await (await TestClient.open(t, server.wsUrl, 'elsewhere')).join('other')

  const list = await members(server.url, 'hall')
  t.equal(list.room, 'hall')
  t.equal(list.count, 4, 'four connections')
  t.same(sorted(list.members), [
    { name: 'guest', connections: 1 },
    { name: 'guest', connections: 1 },
    { name: 'Alice', user: 'alice', connections: 2 }
  ])

  second.send({ type: 'leave', room: 'hall' })
  await second.next((f) => f.type === 'left', 'left')
  t.same((await members(server.url, 'hall')).members.find((entry) => entry.user === 'alice'), { name: 'Alice', user: 'alice', connections: 1 }, 'one connection fewer')
  first.socket.close()
  await first.waitClosed()
  await waitFor(async () => (await members(server.url, 'hall')).count === 2, 'alice gone', 2000)
  t.notOk((await members(server.url, 'hall')).members.some((entry) => entry.user === 'alice'), 'her last connection gone: no entry')
})

t.test('presence off: members get no list, the back office gets the whole room', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-members-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const NAMESPACES_FILE = join(dir, 'namespaces.json')
  writeFileSync(NAMESPACES_FILE, JSON.stringify({ default: {}, namespaces: { stage: { presence: false } } }))
  const server = await startServer(t, { ...AUTH_ENV, NAMESPACES_FILE })
  const token = await hsToken({ sub: 'alice', name: 'Alice', exp: nowS() + 600 })
  for (let i = 0; i < 2; i++) t.same((await (await connect(t, server.wsUrl, token)).join('stage:main')).members, [], 'joined.members is empty')
  await (await TestClient.open(t, server.wsUrl, 'fan')).join('stage:main')
  const list = await members(server.url, 'stage:main')
  t.equal(list.count, 3)
  t.same(sorted(list.members), [{ name: 'fan', connections: 1 }, { name: 'Alice', user: 'alice', connections: 2 }])
})

t.test('the route is behind the bearer token and checks the room id', async (t) => {
  const server = await startServer(t)
  const anonymous = await fetch(`${server.url}/rooms/hall/members`)
  t.equal(anonymous.status, 401)
  t.equal(anonymous.headers.get('www-authenticate'), 'Bearer')
  const wrong = await fetch(`${server.url}/rooms/hall/members`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })
  t.equal(wrong.status, 401)
  const bad = await fetch(`${server.url}/rooms/bad%20room/members`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
  t.equal(bad.status, 400)
  t.match(await bad.json(), { field: 'room' })

  const disabled = await startServer(t, { BROADCAST_TOKEN: '' })
  const off = await fetch(`${disabled.url}/rooms/hall/members`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
  t.equal(off.status, 403)
  t.match(await off.json(), { message: /set BROADCAST_TOKEN/ })
})

async function startNode (t: Test, redis: RedisServer, nodeId: string, env: Record<string, string>): Promise<NodeProcess> {
  const node = await NodeProcess.start(t, { READY_PROBE_MS: '100', PRESENCE_BATCH_MS: '0', REDIS_URL: redis.url, NODE_ID: nodeId, ...AUTH_ENV, ...env })
  await waitFor(async () => await readiness(node.url) === 200, `node ${nodeId} ready`, 10_000)
  return node
}

t.test('cluster: a user\'s connections are summed over the nodes; a SIGKILLed node\'s members vanish within PRESENCE_TTL_MS', async (t) => {
  const TTL_MS = 2000
  const env = { PRESENCE_TTL_MS: String(TTL_MS) }
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a', env)
  const b = await startNode(t, redis, 'b', env)
  const token = await hsToken({ sub: 'alice', name: 'Alice', exp: nowS() + 600 })
  for (const url of [a.wsUrl, a.wsUrl, b.wsUrl]) await (await connect(t, url, token)).join('hall')
  await (await TestClient.open(t, a.wsUrl, 'ann')).join('hall')
  await (await TestClient.open(t, b.wsUrl, 'bo')).join('hall')
  await (await connect(t, b.wsUrl, await hsToken({ sub: 'carl', exp: nowS() + 600 }))).join('hall')

  const expected = [
    { name: 'ann', connections: 1 },
    { name: 'bo', connections: 1 },
    { name: 'Alice', user: 'alice', connections: 3 },
    { name: 'carl', user: 'carl', connections: 1 }
  ]
  for (const [id, node] of [['a', a], ['b', b]] as const) {
    await waitFor(async () => (await members(node.url, 'hall')).count === 6, `node ${id} to see all six connections`, 5000)
    const list = await members(node.url, 'hall')
    t.same(sorted(list.members), expected, `node ${id}: Alice once with 3 connections (2 on a, 1 on b)`)
  }
  // Joins and leaves were told to other nodes as before: the count did not leak into names.
  const watcher = await TestClient.open(t, b.wsUrl, 'watcher')
  t.same([...((await watcher.join('hall')).members as string[])].sort(), ['Alice', 'ann', 'bo', 'carl', 'watcher'], 'joined.members: plain names')

  a.kill('SIGKILL')
  await a.exited
  const killedAt = Date.now()
  await waitFor(async () => (await members(b.url, 'hall')).count === 4, 'a\'s members to vanish', TTL_MS + 1500)
  t.comment(`gone ${Date.now() - killedAt} ms after the kill (PRESENCE_TTL_MS ${TTL_MS})`)
  t.same(sorted((await members(b.url, 'hall')).members), [
    { name: 'bo', connections: 1 },
    { name: 'watcher', connections: 1 },
    { name: 'Alice', user: 'alice', connections: 1 },
    { name: 'carl', user: 'carl', connections: 1 }
  ], 'only b\'s connections are left: Alice with 1')
})
