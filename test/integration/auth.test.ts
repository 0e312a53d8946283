// Connection tokens over real sockets (PROTOCOL §1, §3, §7): HS256 and JWKS
// (RS256, ES256, EdDSA) tokens signed here with jose, every refusal's close
// code, identity on welcome and messages, refresh, expiry, the back office's
// disconnect — and the whole file's log, captured, holds no token.
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { buildApp } from '../../app.js'
import { metric } from '../helpers/http.js'
import { freePort } from '../helpers/free-port.js'
import { TEST_TOKEN, testConfig } from '../helpers/server.js'
import { hsToken, JwksServer, keyToken, nowS, sign, signedTokens, signingKey, TEST_JWT_SECRET } from '../helpers/tokens.js'
import { sleep } from '../helpers/wait.js'
import { TestClient } from '../helpers/ws-client.js'

/** Every log line of every server this file starts. */
let logText = ''
const logStream = new Writable({
  write (chunk: Buffer, _encoding, done) {
    logText += chunk.toString()
    done()
  }
})

interface Server {
  url: string
  wsUrl: string
}

async function start (t: Test, env: Record<string, string> = {}): Promise<Server> {
  const app = await buildApp(testConfig({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ...env }), { logger: { level: 'trace', stream: logStream } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return { url: `http://127.0.0.1:${address.port}`, wsUrl: `ws://127.0.0.1:${address.port}/ws` }
}

/** Connects (protocols optional) and tears the socket down with the test. */
async function connect (t: Test, url: string, protocols?: string[]): Promise<TestClient> {
  const client = await new Promise<TestClient>((resolve, reject) => {
    const socket = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols)
    const client = new TestClient(socket)
    socket.once('open', () => resolve(client))
    socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused with ${response.statusCode}`)))
    socket.once('error', reject)
  })
  t.teardown(() => client.socket.terminate())
  return client
}

/** A user's connection (subprotocol form), once welcomed. */
async function userClient (t: Test, wsUrl: string, token: string): Promise<TestClient> {
  const client = await connect(t, wsUrl, ['chat', `bearer.${token}`])
  await client.next((frame) => frame.type === 'welcome', 'welcome')
  return client
}

/** Connects with `token` and expects a close right after the upgrade. */
async function refused (t: Test, wsUrl: string, token: string): Promise<{ code: number, reason: string }> {
  // Characters a subprotocol cannot carry go in the query.
  const client = /^[\w.-]+$/.test(token)
    ? await connect(t, wsUrl, ['chat', `bearer.${token}`])
    : await connect(t, `${wsUrl}?token=${encodeURIComponent(token)}`)
  const closed = await client.waitClosed()
  t.same(client.ofType('welcome'), [], 'no welcome before the close')
  return closed
}

t.test('HS256 in the subprotocol: welcome with user and expiresIn, chat answered, user on messages', async (t) => {
  const server = await start(t)
  const exp = nowS() + 600
  const token = await hsToken({ sub: 'alice', name: 'Alice', exp })
  const alice = await connect(t, `${server.wsUrl}?name=Mallory`, ['chat', `bearer.${token}`])
  t.equal(alice.socket.protocol, 'chat', 'the server answers chat, never the token')
  const welcome = await alice.next((frame) => frame.type === 'welcome', 'welcome')
  t.match(welcome, { name: 'Alice', user: 'alice', node: 'test-node' }, 'the name claim wins over ?name')
  t.ok((welcome.expiresIn as number) >= 598 && (welcome.expiresIn as number) <= 600, `expiresIn is whole seconds to exp (${String(welcome.expiresIn)})`)
  t.ok(Number.isInteger(welcome.expiresIn))

  const guest = await TestClient.open(t, server.wsUrl, 'Alice')
  t.notOk('user' in (guest.ofType('welcome')[0] ?? {}), 'a guest has no user')
  t.notOk('expiresIn' in (guest.ofType('welcome')[0] ?? {}), 'nor expiresIn')
  await alice.join('lobby')
  await guest.join('lobby')
  alice.send({ type: 'send', room: 'lobby', text: 'from the user' })
  guest.send({ type: 'send', room: 'lobby', text: 'from the guest' })
  await guest.until((frames) => frames.filter((f) => f.type === 'message').length === 2, 'both messages')
  const [fromUser, fromGuest] = guest.messages('lobby')
  t.match(fromUser, { from: 'Alice', user: 'alice', text: 'from the user' })
  t.notOk('api' in (fromUser ?? {}))
  t.match(fromGuest, { from: 'Alice', text: 'from the guest' })
  t.notOk('user' in (fromGuest ?? {}), 'a guest may pick the same name, but carries no user')

  const response = await fetch(`${server.url}/rooms/lobby/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'from the API', from: 'alice' })
  })
  t.equal(response.status, 202)
  const api = await guest.next((frame) => frame.type === 'message' && frame.text === 'from the API', 'the API message')
  t.match(api, { from: 'alice', api: true })
  t.notOk('user' in api, 'the API is not a user')
})

t.test('the token query parameter works too; subprotocol and query must agree', async (t) => {
  const server = await start(t)
  const token = await hsToken({ sub: 'bob' })
  const bob = await connect(t, `${server.wsUrl}?token=${token}`)
  t.match(await bob.next((frame) => frame.type === 'welcome', 'welcome'), { user: 'bob', name: 'bob' }, 'no name claim: sub is the name')
  const same = await connect(t, `${server.wsUrl}?token=${token}`, ['chat', `bearer.${token}`])
  t.match(await same.next((frame) => frame.type === 'welcome', 'welcome'), { user: 'bob' }, 'the same token twice is one token')

  const other = await hsToken({ sub: 'carol' })
  const both = await connect(t, `${server.wsUrl}?token=${other}`, ['chat', `bearer.${token}`])
  t.match(await both.waitClosed(), { code: 4003, reason: /two different tokens/ })
  const twice = await connect(t, `${server.wsUrl}?token=${other}&token=${token}`)
  t.equal((await twice.waitClosed()).code, 4003, 'two query tokens')
})

t.test('refusals: 4003 with a reason for a bad token, 4001 for an expired one', async (t) => {
  const server = await start(t, { AUTH_ISSUER: 'https://issuer.test', AUTH_AUDIENCE: 'chat', AUTH_CLOCK_TOLERANCE_S: '5', AUTH_MAX_TOKEN_TTL_S: '3600' })
  const good = { sub: 'dave', iss: 'https://issuer.test', aud: 'chat' }
  t.match(await userClient(t, server.wsUrl, await hsToken(good)).then((c) => c.ofType('welcome')[0]), { user: 'dave' }, 'the good token passes')

  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...good, exp: nowS() + 60 })}.`
  signedTokens.add(none)
  const cases: Array<[string, string, number, RegExp]> = [
    ['alg none', none, 4003, /algorithm/],
    ['wrong secret', await hsToken(good, 'another-secret-0123456789abcdef-0123456789'), 4003, /signature/],
    ['wrong iss', await hsToken({ ...good, iss: 'https://evil.test' }), 4003, /iss/],
    ['wrong aud', await hsToken({ ...good, aud: 'other-app' }), 4003, /aud/],
    ['future nbf', await hsToken({ ...good, nbf: nowS() + 60 }), 4003, /nbf/],
    ['no exp', await hsToken({ ...good, exp: undefined }), 4003, /exp/],
    ['no sub', await hsToken({ ...good, sub: undefined }), 4003, /sub/],
    ['exp too far away', await hsToken({ ...good, exp: nowS() + 7200 }), 4003, /AUTH_MAX_TOKEN_TTL_S/],
    ['malformed', 'not-a-jwt', 4003, /JWT/],
    ['garbage segments', 'eyJhbGciOiJIUzI1NiJ9.!!!.???', 4003, /JWT/],
    ['oversize', `${await hsToken(good)}${'a'.repeat(8200)}`, 4003, /8192/],
    ['expired', await hsToken({ ...good, exp: nowS() - 60 }), 4001, /expired/]
  ]
  for (const [what, token, code, reason] of cases) {
    signedTokens.add(token)
    const closed = await refused(t, server.wsUrl, token)
    t.equal(closed.code, code, what)
    t.match(closed.reason, reason, `${what}: the reason says why`)
  }
  t.equal(await metric(server.url, 'chat_auth_failures_total', { reason: 'expired' }), 1, 'failures are counted by reason')
  t.equal(await metric(server.url, 'chat_auth_failures_total', { reason: 'claims' }), 5)
  t.equal(await metric(server.url, 'chat_auth_failures_total', { reason: 'oversize' }), 1)
  // The server still serves.
  await userClient(t, server.wsUrl, await hsToken(good))
})

t.test('expired within the leeway: accepted with expiresIn 0, then closed with 4001 when the leeway runs out', async (t) => {
  const server = await start(t, { AUTH_CLOCK_TOLERANCE_S: '2' })
  const exp = nowS() - 1
  const client = await userClient(t, server.wsUrl, await hsToken({ sub: 'erin', exp }))
  t.equal(client.ofType('welcome')[0]?.expiresIn, 0, 'expiresIn never goes below 0')
  const closed = await client.waitClosed(4000)
  const at = Date.now()
  t.equal(closed.code, 4001)
  t.ok(at >= (exp + 2) * 1000 - 50, 'not before exp + leeway')
})

t.test('no refresh: 4001 at exp + leeway; a refresh moves the deadline', async (t) => {
  const server = await start(t, { AUTH_CLOCK_TOLERANCE_S: '0' })
  const exp = nowS() + 2
  const lazy = await userClient(t, server.wsUrl, await hsToken({ sub: 'frank', exp }))
  const keen = await userClient(t, server.wsUrl, await hsToken({ sub: 'frank', exp }))
  keen.send({ type: 'auth', token: await hsToken({ sub: 'frank', exp: nowS() + 600 }), ref: 'r1' })
  const ack = await keen.next((frame) => frame.type === 'ack' && frame.ref === 'r1', 'the auth ack')
  t.ok((ack.expiresIn as number) >= 598, 'the ack carries the new expiresIn')
  t.notOk('id' in ack)
  const closed = await lazy.waitClosed(5000)
  t.equal(closed.code, 4001)
  t.ok(Date.now() >= exp * 1000 - 50, 'not before exp')
  t.ok(Date.now() <= exp * 1000 + 1500, 'soon after exp')
  await sleep(300)
  t.equal(keen.closeCode, undefined, 'the refreshed connection stays open')
  t.equal(await metric(server.url, 'chat_auth_refreshes_total'), 1)
})

t.test('refresh keeps rooms and order while a publisher keeps sending', async (t) => {
  const fast = '100000'
  const server = await start(t, { RATE_LIMIT_PER_SEC: fast, RATE_LIMIT_BURST: fast, FRAME_RATE_PER_SEC: fast, FRAME_BURST: fast })
  const reader = await userClient(t, server.wsUrl, await hsToken({ sub: 'gina', exp: nowS() + 120 }))
  const writer = await TestClient.open(t, server.wsUrl, 'writer')
  await reader.join('busy')
  await writer.join('busy')
  const total = 200
  let sent = 0
  const pump = (async () => {
    while (sent < total) {
      writer.send({ type: 'send', room: 'busy', text: String(sent++) })
      if (sent % 20 === 0) await sleep(5)
    }
  })()
  await sleep(10)
  reader.send({ type: 'auth', token: await hsToken({ sub: 'gina', exp: nowS() + 600 }), ref: 'refresh' })
  await pump
  await reader.next((frame) => frame.type === 'ack' && frame.ref === 'refresh', 'the refresh ack')
  await reader.until((frames) => frames.filter((f) => f.type === 'message').length >= total, 'every message', 10000)
  t.same(reader.messages('busy').map((m) => m.text), Array.from({ length: total }, (_v, i) => String(i)), 'nothing lost, nothing repeated, in order')
  t.match(reader.messages('busy')[0], { from: 'writer' })
})

t.test('refresh edge cases: another sub, a guest, a bad token → token_invalid and the connection goes on', async (t) => {
  const server = await start(t)
  const henry = await userClient(t, server.wsUrl, await hsToken({ sub: 'henry', name: 'Henry', exp: nowS() + 120 }))
  await henry.join('r')
  henry.send({ type: 'auth', token: await hsToken({ sub: 'ivan' }), ref: 'other' })
  t.match(await henry.next((f) => f.type === 'error' && f.ref === 'other', 'error'), { code: 'token_invalid', message: /another user/ })
  henry.send({ type: 'auth', token: await hsToken({ sub: 'henry', exp: nowS() - 60 }), ref: 'old' })
  t.match(await henry.next((f) => f.type === 'error' && f.ref === 'old', 'error'), { code: 'token_invalid', message: /expired/ })
  henry.send({ type: 'send', room: 'r', text: 'still here', ref: 's' })
  await henry.next((f) => f.type === 'ack' && f.ref === 's', 'the send ack')
  t.match(henry.messages('r').at(-1), { user: 'henry', from: 'Henry' }, 'identity unchanged')

  const guest = await TestClient.open(t, server.wsUrl, 'guest')
  guest.send({ type: 'auth', token: await hsToken({ sub: 'henry' }), ref: 'g' })
  t.match(await guest.next((f) => f.type === 'error' && f.ref === 'g', 'error'), { code: 'token_invalid', message: /guest/ })
  t.equal(guest.closeCode, undefined)
})

t.test('AUTH_REQUIRED=true closes guests with 4003; the default keeps them', async (t) => {
  const strict = await start(t, { AUTH_REQUIRED: 'true' })
  const guest = await connect(t, `${strict.wsUrl}?name=anon`)
  t.match(await guest.waitClosed(), { code: 4003, reason: /required/ })
  await userClient(t, strict.wsUrl, await hsToken({ sub: 'jane' }))

  const relaxed = await start(t)
  const welcome = (await TestClient.open(t, relaxed.wsUrl, 'anon')).ofType('welcome')[0]
  t.match(welcome, { name: 'anon' })
  t.notOk(welcome !== undefined && 'user' in welcome)
})

t.test('a token where none is configured is refused, not downgraded to a guest', async (t) => {
  const app = await buildApp(testConfig({}), { logger: { level: 'trace', stream: logStream } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address() as { port: number }
  const closed = await refused(t, `ws://127.0.0.1:${address.port}/ws`, await hsToken({ sub: 'kim' }))
  t.equal(closed.code, 4003)
})

t.test('display names from claims: an invalid name claim falls back to sub, an unusable sub to user-<hash>', async (t) => {
  const server = await start(t)
  const fallBack = await userClient(t, server.wsUrl, await hsToken({ sub: 'lena', name: 'bad\u0007name' }))
  t.match(fallBack.ofType('welcome')[0], { name: 'lena', user: 'lena' })
  const longSub = 'x'.repeat(40)
  const hashed = await userClient(t, server.wsUrl, await hsToken({ sub: longSub, name: 42 }))
  t.match(hashed.ofType('welcome')[0], { name: /^user-[0-9a-f]{8}$/, user: longSub })
})

t.test('POST /users/:id/disconnect closes every connection of the user with 4003 and revokes its tokens', async (t) => {
  const server = await start(t)
  const token = await hsToken({ sub: 'mia', iat: nowS() - 5 })
  const one = await userClient(t, server.wsUrl, token)
  const two = await userClient(t, server.wsUrl, token)
  const bystander = await userClient(t, server.wsUrl, await hsToken({ sub: 'ned', iat: nowS() - 5 }))
  const post = (user: string, body: unknown, auth = `Bearer ${TEST_TOKEN}`) => fetch(`${server.url}/users/${encodeURIComponent(user)}/disconnect`, {
    method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  t.equal((await post('mia', {}, 'Bearer wrong-token-0123456789')).status, 401, 'the bearer token is required')
  t.equal((await post('mia', { reason: 'x'.repeat(129) })).status, 400, 'reason at most 128 characters')
  t.equal((await post('mia', { reason: 1 })).status, 400)
  t.equal(one.closeCode, undefined, 'a refused call does nothing')

  const response = await post('mia', { reason: 'x'.repeat(128) })
  t.equal(response.status, 202)
  t.same(await response.json(), { user: 'mia' })
  t.match(await one.waitClosed(), { code: 4003, reason: /^disconnected: x+$/ })
  t.match(await two.waitClosed(), { code: 4003 })
  await sleep(100)
  t.equal(bystander.closeCode, undefined, 'other users stay')

  t.match(await refused(t, server.wsUrl, token), { code: 4003, reason: /revoked/ }, 'the same token cannot come back')
  t.match(await refused(t, server.wsUrl, await hsToken({ sub: 'mia', iat: undefined })), { code: 4003 }, 'nor one without iat')
  bystander.send({ type: 'auth', token: await hsToken({ sub: 'ned' }), ref: 'n' })
  await bystander.next((f) => f.type === 'ack' && f.ref === 'n', 'another user refreshes')
  await sleep(1100 - (Date.now() % 1000))
  await userClient(t, server.wsUrl, await hsToken({ sub: 'mia' }))
  t.pass('a token issued after the disconnect is accepted')
  t.equal(await metric(server.url, 'chat_api_disconnects_total'), 2)
})

t.test('JWKS: RS256, ES256 and EdDSA by kid; algorithm confusion; unknown kid while throttled → 1013; endpoint down → 1013', async (t) => {
  const rsa = await signingKey('RS256', 'rsa-1')
  const ec = await signingKey('ES256', 'ec-1')
  const ed = await signingKey('EdDSA', 'ed-1')
  const jwks = await JwksServer.start(t, [rsa, ec, ed])
  const server = await start(t, { AUTH_JWT_SECRET: '', AUTH_JWKS_URL: jwks.url, AUTH_AUDIENCE: 'chat' })
  for (const key of [rsa, ec, ed]) {
    const client = await userClient(t, server.wsUrl, await keyToken(key, { sub: `user-${key.alg}`, aud: 'chat' }))
    t.match(client.ofType('welcome')[0], { user: `user-${key.alg}` }, key.alg)
  }
  t.equal(jwks.fetches, 1, 'the key set is fetched once and cached')
  t.match(await refused(t, server.wsUrl, await keyToken(rsa, { sub: 'x', aud: 'other' })), { code: 4003 }, 'AUTH_AUDIENCE is enforced')

  // The classic confusion: HS256 "signed" with the RSA public key as the secret.
  const { exportSPKI } = await import('jose')
  const pem = await exportSPKI(rsa.publicKey)
  const confused = await sign({ sub: 'x', aud: 'chat' }, { alg: 'HS256', kid: 'rsa-1' }, new TextEncoder().encode(pem))
  t.match(await refused(t, server.wsUrl, confused), { code: 4003, reason: /algorithm/ }, 'HS256 is not accepted from a key set')

  const rotated = await signingKey('ES256', 'ec-2')
  jwks.keys.push(rotated.jwk)
  t.match(await refused(t, server.wsUrl, await keyToken(rotated, { sub: 'x', aud: 'chat' })), { code: 1013 }, 'unknown kid moments after a fetch: try again later, not 4003')

  // A refresh whose key the set cannot give yet (same cooldown): `unavailable`,
  // never `token_invalid`, and the connection keeps its token and its rooms.
  const holder = await userClient(t, server.wsUrl, await keyToken(rsa, { sub: 'holder', aud: 'chat' }))
  await holder.join('kept')
  holder.send({ type: 'auth', token: await keyToken(rotated, { sub: 'holder', aud: 'chat' }), ref: 'refresh' })
  t.match(await holder.next((frame) => frame.type === 'error', 'the refresh refused'), { code: 'unavailable', ref: 'refresh' }, 'key set cannot tell: unavailable')
  t.ok((await holder.sendAndAck('kept', 'still here')).length > 0, 'the connection goes on with its current token')
  t.equal(holder.socket.readyState, WebSocket.OPEN)

  jwks.down = true
  const closedPort = await freePort()
  const dead = await start(t, { AUTH_JWT_SECRET: '', AUTH_JWKS_URL: `http://127.0.0.1:${closedPort}/jwks.json`, AUTH_AUDIENCE: 'chat' })
  t.match(await refused(t, dead.wsUrl, await keyToken(rsa, { sub: 'x', aud: 'chat' })), { code: 1013, reason: /key set/ }, 'endpoint down: 1013, never 4003')
  t.equal(await metric(dead.url, 'chat_auth_failures_total', { reason: 'unavailable' }), 1)
})

t.test('no token ever reaches the log', async (t) => {
  t.ok(signedTokens.size > 20, `tokens were used (${signedTokens.size})`)
  t.match(logText, /token=\[redacted\]/, 'the upgrade URLs were logged, redacted')
  t.match(logText, /incoming request/, 'requests were logged at all')
  for (const token of signedTokens) {
    if (logText.includes(token)) t.fail(`a token is in the log: ${token.slice(0, 12)}…`)
    // Its signature alone must not be there either.
    const signature = token.split('.')[2]
    if (signature !== undefined && signature.length > 10 && logText.includes(signature)) t.fail('a token signature is in the log')
  }
  t.notMatch(logText, /bearer\.eyJ/i, 'no subprotocol header')
})

t.test('members and presence count a user once: joined on the first connection, left on the last', async (t) => {
  const server = await start(t, { PRESENCE_BATCH_MS: '0' })
  const watcher = await TestClient.open(t, server.wsUrl, 'watcher')
  await watcher.join('team')
  const token = await hsToken({ sub: 'zoe', name: 'Zoe' })
  const laptop = await userClient(t, server.wsUrl, token)
  const phone = await userClient(t, server.wsUrl, token)
  await laptop.join('team')
  await watcher.next((f) => f.type === 'presence' && (f.joined as string[]).includes('Zoe'), 'Zoe joined')
  const joined = await phone.join('team')
  t.same([...(joined.members as string[])].sort(), ['Zoe', 'watcher'], 'members lists the user once')
  const guest = await TestClient.open(t, server.wsUrl, 'Zoe')
  await guest.join('team')
  await watcher.next((f) => f.type === 'presence' && (f.joined as string[]).includes('Zoe'), 'the guest named Zoe', watcher.frames.length - 1)
  laptop.send({ type: 'leave', room: 'team' })
  await laptop.next((f) => f.type === 'left', 'left')
  phone.send({ type: 'leave', room: 'team' })
  await phone.next((f) => f.type === 'left', 'left')
  // The guest's leave comes last: once it is seen, every earlier change has been told.
  guest.send({ type: 'leave', room: 'team' })
  await guest.next((f) => f.type === 'left', 'left')
  const lefts = () => watcher.ofType('presence').filter((f) => (f.left as string[]).includes('Zoe')).length
  await watcher.until(() => lefts() >= 2, 'the user and the guest left')
  await sleep(100)
  const presence = watcher.ofType('presence')
  t.equal(presence.filter((f) => (f.joined as string[]).includes('Zoe')).length, 2, 'joined twice: the user once, the guest once')
  t.equal(lefts(), 2, 'left twice: the user once (on its last connection), the guest once')
})

t.test('frames sent while the token is checked wait for it, in order, even beyond the held count', async (t) => {
  const server = await start(t)
  const token = await hsToken({ sub: 'yuri' })
  const client = await new Promise<TestClient>((resolve, reject) => {
    const socket = new WebSocket(server.wsUrl, ['chat', `bearer.${token}`])
    const client = new TestClient(socket)
    socket.once('open', () => {
      // Sent before the welcome: the server is still verifying the token.
      for (let i = 0; i < 20; i++) client.send({ type: 'join', room: `early-${i}` })
      resolve(client)
    })
    socket.once('error', reject)
  })
  t.teardown(() => client.socket.terminate())
  await client.until((frames) => frames.filter((f) => f.type === 'joined').length === 20, 'all 20 joins')
  t.equal(client.frames[0]?.type, 'welcome', 'the welcome comes first')
  t.same(client.ofType('joined').map((f) => f.room), Array.from({ length: 20 }, (_v, i) => `early-${i}`), 'in order')
})
