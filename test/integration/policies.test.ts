// Room policies over real sockets on one node (PROTOCOL §2, §8): guests,
// users and granted users on each policy, owner rooms, a read-only room fed
// by the HTTP API, the check order, a refresh that narrows grants,
// per-namespace history and presence, and a token whose grants are malformed.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { broadcast, metric } from '../helpers/http.js'
import { policyFile, TEST_POLICIES } from '../helpers/policies.js'
import { startServer, TEST_TOKEN, type RunningServer } from '../helpers/server.js'
import { hsToken, TEST_JWT_SECRET } from '../helpers/tokens.js'
import { sleep } from '../helpers/wait.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

async function start (t: Test, env: Record<string, string> = {}): Promise<RunningServer> {
  return startServer(t, { AUTH_JWT_SECRET: TEST_JWT_SECRET, NAMESPACES_FILE: policyFile(), MAX_ROOMS_PER_CONNECTION: '4', ...env })
}

/** A connection with `token` (subprotocol form), or a guest, once welcomed. */
async function open (t: Test, wsUrl: string, token?: string, name?: string): Promise<TestClient> {
  if (token === undefined) return TestClient.open(t, wsUrl, name)
  const client = new TestClient(new WebSocket(wsUrl, ['chat', `bearer.${token}`]))
  t.teardown(() => client.socket.terminate())
  await client.next((frame) => frame.type === 'welcome', 'welcome')
  return client
}

let refs = 0

/** Sends `frame` with a fresh ref; resolves with the reply carrying it (`joined` for a join, which has no ref). */
async function ask (client: TestClient, frame: Record<string, unknown>): Promise<Frame> {
  const ref = `r${++refs}`
  const from = client.frames.length
  client.send({ ...frame, ref })
  return client.next((reply) => reply.ref === ref || (frame.type === 'join' && reply.type === 'joined' && reply.room === frame.room), `reply to ${ref}`, from)
}

/** `joined`, or the error code that refused the join. */
async function tryJoin (client: TestClient, room: string, since?: string): Promise<string> {
  const reply = await ask(client, since === undefined ? { type: 'join', room } : { type: 'join', room, since })
  return reply.type === 'joined' ? 'joined' : String(reply.code)
}

/** `ack`, or the error code that refused the send. */
async function trySend (client: TestClient, room: string, text = 'hi'): Promise<string> {
  const reply = await ask(client, { type: 'send', room, text })
  return reply.type === 'ack' ? 'ack' : String(reply.code)
}

t.test('guest, user and granted user on each policy', async (t) => {
  const server = await start(t)
  const guest = await open(t, server.wsUrl)
  const user = await open(t, server.wsUrl, await hsToken({ sub: 'bob' }))
  const grantedUser = await open(t, server.wsUrl, await hsToken({ sub: 'carol', rooms: { 'granted:*': ['join', 'send'], 'members:x': ['join'] } }))

  t.equal(await tryJoin(guest, 'lobby'), 'joined', 'default: anyone joins')
  t.equal(await trySend(guest, 'lobby'), 'ack', 'and any member sends')

  t.equal(await tryJoin(guest, 'members:x'), 'forbidden', 'authenticated: a guest is refused')
  t.equal(await tryJoin(user, 'members:x'), 'joined', 'a user joins')
  t.equal(await trySend(user, 'members:x'), 'ack')

  t.equal(await tryJoin(guest, 'granted:1'), 'forbidden', 'granted: a guest is refused')
  t.equal(await tryJoin(user, 'granted:1'), 'forbidden', 'a user without the grant is refused')
  t.equal(await tryJoin(grantedUser, 'granted:1'), 'joined', 'the granted user joins')
  t.equal(await trySend(grantedUser, 'granted:1'), 'ack', 'and sends')

  const error = guest.errors('forbidden')[0] as Frame
  t.match(error.message, /signed-in users only/, 'forbidden says why')
  t.match(error.ref, /^r\d+$/, 'and carries the frame\'s ref')
  t.equal(await trySend(guest, 'lobby'), 'ack', 'the connection stays open and usable')
  t.equal(await metric(server.url, 'chat_errors_total', { code: 'forbidden' }), 3, 'counted by code')
})

t.test('send: granted needs the send right, not just the join right', async (t) => {
  const server = await start(t)
  const joinOnly = await open(t, server.wsUrl, await hsToken({ sub: 'dave', rooms: { 'granted:1': ['join'] } }))
  t.equal(await tryJoin(joinOnly, 'granted:1'), 'joined')
  t.equal(await trySend(joinOnly, 'granted:1'), 'forbidden')
})

t.test('owner rooms: inbox:alice is alice\'s alone, and the back office may post into it', async (t) => {
  const server = await start(t)
  const alice = await open(t, server.wsUrl, await hsToken({ sub: 'alice' }))
  const bob = await open(t, server.wsUrl, await hsToken({ sub: 'bob', rooms: { '*': ['join', 'send'] } }))
  const guest = await open(t, server.wsUrl, undefined, 'alice')
  t.equal(await tryJoin(alice, 'inbox:alice'), 'joined')
  t.equal(await tryJoin(bob, 'inbox:alice'), 'forbidden', 'another user, even granted everything')
  t.equal(await tryJoin(guest, 'inbox:alice'), 'forbidden', 'a guest calling itself alice')
  t.equal(await tryJoin(bob, 'inbox:bob'), 'joined', 'bob has his own')
  await broadcast(server.url, 'inbox:alice', 'you have mail', 'postmaster')
  await alice.next((frame) => frame.type === 'message' && frame.text === 'you have mail', 'the API message')
  t.equal(await trySend(alice, 'inbox:alice', 'note to self'), 'ack', 'members of an owner room may send by default')
})

t.test('send: none — a read-only room fed by the HTTP API', async (t) => {
  const server = await start(t)
  const reader = await open(t, server.wsUrl, await hsToken({ sub: 'erin', rooms: { 'announce:*': ['join', 'send'] } }))
  t.equal(await tryJoin(reader, 'announce:news'), 'joined', 'anyone may join')
  t.equal(await trySend(reader, 'announce:news'), 'forbidden', 'nobody may send, whatever the grants')
  t.match(reader.errors('forbidden')[0]?.message, /read-only/)
  const { id } = await broadcast(server.url, 'announce:news', 'release 2.0 is out', 'ops')
  const message = await reader.next((frame) => frame.type === 'message', 'the announcement')
  t.match(message, { id, text: 'release 2.0 is out', from: 'ops', api: true })
  t.equal(reader.messages('announce:news').length, 1, 'the refused send published nothing')
})

t.test('the check order of §2: membership, then policy, then the room limit, then the send bucket', async (t) => {
  const server = await start(t, { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '1' })
  const guest = await open(t, server.wsUrl)
  t.equal(await trySend(guest, 'announce:news'), 'not_joined', 'not a member: not_joined before forbidden')
  for (const room of ['a', 'b', 'c', 'd']) t.equal(await tryJoin(guest, room), 'joined')
  t.equal(await tryJoin(guest, 'members:x'), 'forbidden', 'at the room limit: forbidden before too_many_rooms')
  t.equal(await tryJoin(guest, 'e'), 'too_many_rooms')
  guest.send({ type: 'leave', room: 'd' })
  await guest.next((frame) => frame.type === 'left' && frame.room === 'd', 'left d')
  t.equal(await tryJoin(guest, 'announce:news'), 'joined')
  const codes = []
  for (let i = 0; i < 3; i++) codes.push(await trySend(guest, 'announce:news'))
  t.same(codes, ['forbidden', 'forbidden', 'forbidden'], 'a forbidden send takes no token from the send bucket')
  t.equal(await trySend(guest, 'a'), 'ack', 'the bucket is still full')
  t.equal(await trySend(guest, 'a'), 'rate_limited', 'and then empty')
})

t.test('join … since is checked too (a resume is checked like any join)', async (t) => {
  const server = await start(t)
  const alice = await open(t, server.wsUrl, await hsToken({ sub: 'alice' }))
  await alice.join('inbox:alice')
  const id = await alice.sendAndAck('inbox:alice', 'private')
  const bob = await open(t, server.wsUrl, await hsToken({ sub: 'bob' }))
  t.equal(await tryJoin(bob, 'inbox:alice', id), 'forbidden')
  t.equal(bob.messages('inbox:alice').length, 0, 'no history leaks')
  const again = await open(t, server.wsUrl, await hsToken({ sub: 'alice' }))
  t.equal(await tryJoin(again, 'inbox:alice', id), 'joined')
})

t.test('a refresh that narrows grants leaves the rooms no longer granted, at once, and keeps the rest', async (t) => {
  const server = await start(t)
  const wide = await hsToken({ sub: 'frank', rooms: { 'granted:*': ['join', 'send'] } })
  const narrow = await hsToken({ sub: 'frank', rooms: { 'granted:a': ['join', 'send'] } })
  const frank = await open(t, server.wsUrl, wide)
  const other = await open(t, server.wsUrl, await hsToken({ sub: 'gina', rooms: { 'granted:*': ['join', 'send'] } }))
  for (const room of ['granted:a', 'granted:b', 'lobby']) t.equal(await tryJoin(frank, room), 'joined')
  await other.join('granted:b')

  const from = frank.frames.length
  const ack = await ask(frank, { type: 'auth', token: narrow })
  t.equal(ack.type, 'ack', 'the refresh is accepted')
  const after = frank.frames.slice(from)
  t.same(after.filter((frame) => frame.type === 'left'), [{ type: 'left', room: 'granted:b' }], 'left only the room no longer granted')
  t.ok(after.findIndex((frame) => frame.type === 'left') < after.indexOf(ack), 'before the ack')
  await other.next((frame) => frame.type === 'presence' && (frame.left as string[]).includes('frank'), 'others see a normal leave')

  t.equal(await tryJoin(frank, 'granted:b'), 'forbidden', 'no new join')
  t.equal(await trySend(frank, 'granted:b'), 'not_joined', 'no longer a member')
  t.equal(await trySend(frank, 'granted:a'), 'ack', 'the granted room is kept')
  t.equal(await trySend(frank, 'lobby'), 'ack', 'and so is the open one')
  await other.sendAndAck('granted:b', 'after')
  await frank.barrier()
  t.notOk(frank.messages('granted:b').some((frame) => frame.text === 'after'), 'nothing more arrives from the left room')

  t.equal((await ask(frank, { type: 'auth', token: wide })).type, 'ack', 'a widening refresh')
  t.equal(await tryJoin(frank, 'granted:b'), 'joined', 'allows the join again')
})

t.test('a malformed rooms claim refuses the token (4003), never ignored', async (t) => {
  const server = await start(t)
  const client = new TestClient(new WebSocket(server.wsUrl, ['chat', `bearer.${await hsToken({ sub: 'h', rooms: ['granted:*'] })}`]))
  t.teardown(() => client.socket.terminate())
  const { code, reason } = await client.waitClosed()
  t.equal(code, 4003)
  t.match(reason, /"rooms" must map room ids or prefix\* patterns/)
})

t.test('per-namespace history: historyOnJoin, historySize, and a room that keeps nothing', async (t) => {
  const server = await start(t)
  const writer = await open(t, server.wsUrl)
  await writer.join('short:1')
  const ids = []
  for (let i = 1; i <= 5; i++) ids.push(await writer.sendAndAck('short:1', `m${i}`))
  const plain = await open(t, server.wsUrl)
  await plain.join('short:1')
  await plain.barrier()
  t.same(plain.messages('short:1').map((frame) => frame.text), ['m4', 'm5'], 'a plain join replays historyOnJoin (2)')
  const resume = await open(t, server.wsUrl)
  t.equal((await resume.join('short:1', ids[2])).recovered, true, 'the last 3 are kept')
  await resume.barrier()
  t.same(resume.messages('short:1').map((frame) => frame.text), ['m4', 'm5'])
  const late = await open(t, server.wsUrl)
  t.equal((await late.join('short:1', ids[0])).recovered, false, 'older ones are trimmed (historySize 3)')
  await late.barrier()
  t.same(late.messages('short:1').map((frame) => frame.text), ['m4', 'm5'], 'then historyOnJoin recent ones')

  await writer.join('nohist:1')
  const reader = await open(t, server.wsUrl)
  await reader.join('nohist:1')
  const first = await writer.sendAndAck('nohist:1', 'now or never')
  await reader.next((frame) => frame.type === 'message' && frame.id === first, 'the live message')
  const second = await writer.sendAndAck('nohist:1', 'again')
  t.not(first, second, 'ids stay unique')
  const joiner = await open(t, server.wsUrl)
  const joined = await joiner.join('nohist:1')
  t.equal(joined.recovered, true, 'a plain join recovers nothing and asked for nothing')
  const resumer = await open(t, server.wsUrl)
  t.equal((await resumer.join('nohist:1', first)).recovered, false, 'a resume gets recovered: false')
  await joiner.barrier()
  await resumer.barrier()
  t.equal(joiner.messages('nohist:1').length + resumer.messages('nohist:1').length, 0, 'no history at all')
  const history = await (await fetch(`${server.url}/rooms/nohist:1/messages`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).json() as { messages: unknown[] }
  t.same(history.messages, [], 'the history API has nothing either')
})

t.test('presence: false — joined.members is [] and nobody gets presence frames', async (t) => {
  const server = await start(t, { PRESENCE_BATCH_MS: '0' })
  const first = await open(t, server.wsUrl, undefined, 'ann')
  t.same((await first.join('quiet:1')).members, [])
  const second = await open(t, server.wsUrl, undefined, 'ben')
  t.same((await second.join('quiet:1')).members, [], 'not even the joiner itself')
  second.close()
  await second.waitClosed()
  await sleep(50)
  await first.barrier()
  t.same(first.ofType('presence'), [], 'no presence frame for a join or a leave')
  await first.join('lobby')
  const third = await open(t, server.wsUrl, undefined, 'cat')
  await third.join('lobby')
  await first.next((frame) => frame.type === 'presence' && frame.room === 'lobby', 'presence elsewhere still works')
})

t.test('GET /config.json shows the policies without history sizes', async (t) => {
  const server = await start(t)
  const body = await (await fetch(`${server.url}/config.json`)).json() as { policies: { default: unknown, namespaces: Record<string, unknown> } }
  t.same(body.policies.default, { join: 'anyone', send: 'members', presence: true, signals: true })
  t.same(body.policies.namespaces.announce, { join: 'anyone', send: 'none', presence: true, signals: false })
  t.same(body.policies.namespaces.inbox, { join: 'owner', send: 'members', presence: true, signals: true })
  t.same(Object.keys(body.policies.namespaces).sort(), Object.keys(TEST_POLICIES.namespaces).sort())
})

t.test('signals: refused where signals are off or sending is not allowed, relayed elsewhere', async (t) => {
  const server = await start(t, {
    NAMESPACES_FILE: policyFile({
      namespaces: {
        nosig: { signals: false },
        board: { send: 'none' },
        granted: { join: 'granted', send: 'granted' }
      }
    })
  })
  const joinOnly = await open(t, server.wsUrl, await hsToken({ sub: 'erin', rooms: { 'granted:*': ['join'] } }))
  const sender = await open(t, server.wsUrl, await hsToken({ sub: 'frank', rooms: { 'granted:*': ['join', 'send'] } }))
  const trySignal = async (client: TestClient, room: string): Promise<string> => {
    const reply = await ask(client, { type: 'signal', room, event: 'typing' })
    return reply.type === 'ack' ? 'ack' : String(reply.code)
  }
  for (const room of ['nosig:1', 'board:1', 'granted:1', 'lobby']) {
    t.equal(await tryJoin(joinOnly, room), 'joined', `joins ${room}`)
    t.equal(await tryJoin(sender, room), 'joined', `joins ${room}`)
  }
  t.equal(await trySignal(sender, 'nosig:1'), 'forbidden', 'signals: false refuses a signal')
  t.match((sender.errors('forbidden').at(-1) as Frame).message, /signals are turned off/, 'and says why')
  t.equal(await trySignal(sender, 'board:1'), 'forbidden', 'send: none refuses a signal though signals are on')
  t.equal(await trySignal(joinOnly, 'granted:1'), 'forbidden', 'send: granted refuses a member without the send grant')
  t.equal(await trySignal(sender, 'granted:1'), 'ack', 'and relays the member who has it')
  t.equal(await trySignal(joinOnly, 'lobby'), 'ack', 'the default policy relays')
  const relayed = await joinOnly.next((frame) => frame.type === 'signal' && frame.room === 'granted:1', 'the granted signal')
  t.same({ event: relayed.event, user: relayed.user }, { event: 'typing', user: 'frank' })
  await sleep(100)
  const refusedRooms = joinOnly.frames.filter((frame) => frame.type === 'signal' && (frame.room === 'nosig:1' || frame.room === 'board:1'))
  t.same(refusedRooms, [], 'a refused signal reaches nobody')
  t.equal(await metric(server.url, 'chat_errors_total', { code: 'forbidden' }), 3, 'each refusal counted')
})
