// Identity in cluster mode (PROTOCOL §4, §7): `user` crosses nodes, one
// disconnect call closes the user on every node, and the revocation, kept
// in Redis, is applied by every node — on connect, on refresh, on resume.
import t from 'tap'
import WebSocket from 'ws'
import { startNode } from '../helpers/cluster.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { TEST_TOKEN } from '../helpers/server.js'
import { hsToken, nowS, TEST_JWT_SECRET } from '../helpers/tokens.js'
import { sleep } from '../helpers/wait.js'
import { TestClient } from '../helpers/ws-client.js'

const AUTH_ENV = { AUTH_JWT_SECRET: TEST_JWT_SECRET }

async function connect (t: Parameters<typeof TestClient.open>[0], wsUrl: string, token: string): Promise<TestClient> {
  const client = await new Promise<TestClient>((resolve, reject) => {
    const socket = new WebSocket(wsUrl, ['chat', `bearer.${token}`])
    const client = new TestClient(socket)
    socket.once('open', () => resolve(client))
    socket.once('error', reject)
  })
  t.teardown(() => client.socket.terminate())
  return client
}

t.test('one disconnect closes the user on both nodes; neither lets the token back; user crosses nodes', async (t) => {
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a', AUTH_ENV)
  const b = await startNode(t, redis, 'b', AUTH_ENV)
  const token = await hsToken({ sub: 'olga', name: 'Olga', iat: nowS() - 5, exp: nowS() + 600 })
  const onA = await connect(t, a.wsUrl, token)
  const onB = await connect(t, b.wsUrl, token)
  await onA.next((f) => f.type === 'welcome', 'welcome on a')
  await onB.next((f) => f.type === 'welcome', 'welcome on b')

  const reader = await TestClient.open(t, b.wsUrl, 'reader')
  await reader.join('lobby')
  await onA.join('lobby')
  onA.send({ type: 'send', room: 'lobby', text: 'from node a' })
  t.match(await reader.next((f) => f.type === 'message', 'the message on b'), { from: 'Olga', user: 'olga', text: 'from node a' }, 'user travels through Redis')

  const response = await fetch(`${a.url}/users/olga/disconnect`, {
    method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: '{}'
  })
  t.equal(response.status, 202)
  const started = Date.now()
  t.equal((await onA.waitClosed()).code, 4003, 'closed on the node that was called')
  t.equal((await onB.waitClosed()).code, 4003, 'and on the other')
  t.ok(Date.now() - started < 2000, 'within READY_PROBE_MS-ish')
  t.equal(reader.closeCode, undefined)

  for (const node of [a, b]) {
    const again = await connect(t, node.wsUrl, token)
    t.match(await again.waitClosed(), { code: 4003, reason: /revoked/ }, `the same token is refused on ${node.url === a.url ? 'a' : 'b'}`)
  }
})

t.test('a node that never heard the notice still refuses the revoked token (read from Redis), on connect and on refresh', async (t) => {
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a', AUTH_ENV)
  const token = await hsToken({ sub: 'pete', iat: nowS() - 5, exp: nowS() + 600 })
  const response = await fetch(`${a.url}/users/pete/disconnect`, {
    method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: '{"reason":"gone"}'
  })
  t.equal(response.status, 202)
  // b starts after the notice was published: only Redis can tell it.
  const b = await startNode(t, redis, 'b', AUTH_ENV)
  const late = await connect(t, b.wsUrl, token)
  t.match(await late.waitClosed(), { code: 4003, reason: /revoked/ }, 'a resume on another node re-verifies the token')
  await sleep(1100 - (Date.now() % 1000))
  const fresh = await connect(t, b.wsUrl, await hsToken({ sub: 'pete', exp: nowS() + 600 }))
  await fresh.next((f) => f.type === 'welcome', 'a token issued after the disconnect')
  fresh.send({ type: 'auth', token, ref: 'old' })
  t.match(await fresh.next((f) => f.type === 'error' && f.ref === 'old', 'the refresh answer'), { code: 'token_invalid', message: /revoked/ }, 'a refresh with the revoked token is refused')

  const other = await connect(t, b.wsUrl, await hsToken({ sub: 'quinn', exp: nowS() + 600 }))
  await other.next((f) => f.type === 'welcome', 'welcome')
  await fetch(`${a.url}/users/quinn/disconnect`, {
    method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: '{}'
  })
  t.equal((await other.waitClosed()).code, 4003)
})

t.test('a node that missed the notice closes the open connections it revokes once its subscription is repaired', async (t) => {
  const redis = await RedisServer.start(t)
  const proxy = await TcpProxy.start(t, redis.port)
  const a = await startNode(t, redis, 'a', AUTH_ENV)
  // Node b reaches Redis through the proxy, so its users subscription can be silenced.
  const b = await startNode(t, { url: `redis://127.0.0.1:${proxy.port}` }, 'b', AUTH_ENV)
  const alice = await connect(t, b.wsUrl, await hsToken({ sub: 'alice', iat: nowS() - 5, exp: nowS() + 600 }))
  await alice.next((f) => f.type === 'welcome', 'alice welcome on b')
  const bob = await connect(t, b.wsUrl, await hsToken({ sub: 'bob', iat: nowS() - 5, exp: nowS() + 600 }))
  await bob.next((f) => f.type === 'welcome', 'bob welcome on b')

  t.equal(proxy.blackHole('chat:b:users'), 1, 'silenced the users subscription of node b')
  const response = await fetch(`${a.url}/users/alice/disconnect`, {
    method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: '{}'
  })
  t.equal(response.status, 202)
  await sleep(500)
  t.equal(alice.closeCode, undefined, 'b never heard the notice: alice is still connected there')

  // Redis drops the silenced connection; b reconnects and subscribes again.
  const list = String(await redis.command('CLIENT', 'LIST'))
  const id = /id=(\d+) .*name=chat:b:users /.exec(list)?.[1]
  t.ok(id, 'found the users subscription of b')
  await redis.command('CLIENT', 'KILL', 'ID', id as string)
  t.match(await alice.waitClosed(), { code: 4003, reason: /revoked/ }, 'alice closed on b after the repair')
  await sleep(200)
  t.equal(bob.closeCode, undefined, 'a user never disconnected stays')
})

t.test('members and presence count a user once across nodes: joined on its first connection in the room, left on its last', async (t) => {
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a', AUTH_ENV)
  const b = await startNode(t, redis, 'b', AUTH_ENV)
  const token = await hsToken({ sub: 'alice', name: 'Alice', exp: nowS() + 600 })
  const watcher = await TestClient.open(t, a.wsUrl, 'watcher')
  await watcher.join('hall')
  const aliceOnA = await connect(t, a.wsUrl, token)
  await aliceOnA.join('hall')
  await watcher.next((f) => f.type === 'presence' && (f.joined as string[]).includes('Alice'), 'Alice joined')
  const aliceOnB = await connect(t, b.wsUrl, token)
  await aliceOnB.join('hall')
  const third = await TestClient.open(t, b.wsUrl, 'third')
  const members = (await third.join('hall')).members as string[]
  t.same([...members].sort(), ['Alice', 'third', 'watcher'], 'Alice once in the members of a client of either node')
  const onA = await TestClient.open(t, a.wsUrl, 'onA')
  t.same([...((await onA.join('hall')).members as string[])].sort(), ['Alice', 'onA', 'third', 'watcher'], 'and on the other node')

  /** Presence frames of `client` naming Alice. */
  const aboutAlice = (client: TestClient, from: number) => client.frames.slice(from)
    .filter((f) => f.type === 'presence' && ((f.joined as string[]).includes('Alice') || (f.left as string[]).includes('Alice')))
  t.equal(aboutAlice(watcher, 0).length, 1, 'her second node\'s join announced nothing')
  const marks = { watcher: watcher.frames.length, third: third.frames.length }
  aliceOnA.socket.close()
  await aliceOnA.waitClosed()
  // A guest joining afterwards on each node: its presence comes after any Alice would have had.
  const p1 = await TestClient.open(t, b.wsUrl, 'p1')
  await p1.join('hall')
  await watcher.next((f) => f.type === 'presence' && (f.joined as string[]).includes('p1'), 'p1 on a', marks.watcher)
  const p2 = await TestClient.open(t, a.wsUrl, 'p2')
  await p2.join('hall')
  await third.next((f) => f.type === 'presence' && (f.joined as string[]).includes('p2'), 'p2 on b', marks.third)
  await sleep(300)
  t.same(aboutAlice(watcher, marks.watcher), [], 'Alice still in the room through node b: no left on a')
  t.same(aboutAlice(third, marks.third), [], 'nor on b')

  aliceOnB.socket.close()
  t.same(await watcher.next((f) => f.type === 'presence' && (f.left as string[]).includes('Alice'), 'Alice left on a', marks.watcher),
    { type: 'presence', room: 'hall', joined: [], left: ['Alice'] }, 'her last connection gone: left')
  await third.next((f) => f.type === 'presence' && (f.left as string[]).includes('Alice'), 'Alice left on b', marks.third)
  t.equal(aboutAlice(watcher, marks.watcher).length, 1, 'once')
})

t.test('Redis away: the disconnect answers 503, and tokens wait (1013) rather than pass unchecked', async (t) => {
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a', AUTH_ENV)
  const client = await connect(t, a.wsUrl, await hsToken({ sub: 'rita', exp: nowS() + 600 }))
  await client.next((f) => f.type === 'welcome', 'welcome')
  await redis.stop()
  const response = await fetch(`${a.url}/users/rita/disconnect`, {
    method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: '{}'
  })
  t.equal(response.status, 503)
  t.equal((await client.waitClosed()).code, 4003, 'the local connection is closed all the same')
  const later = await connect(t, a.wsUrl, await hsToken({ sub: 'sam', exp: nowS() + 600 }))
  t.equal((await later.waitClosed()).code, 1013)
})
