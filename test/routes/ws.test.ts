// Route tests of routes/ws.ts: the upgrade checks (method, upgrade headers,
// name, origin) and the WebSocket session over injectWS and a real socket.
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { AUTH, buildTestApp, injectClient, upgradeStatus } from '../helpers/inject.js'
import { TestClient } from '../helpers/ws-client.js'
import { rawUpgrade } from '../helpers/ws-upgrade.js'

t.test('other methods on /ws get 405 with Allow: GET', async (t) => {
  const app = await buildTestApp(t)
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
    const response = await app.inject({ method, url: '/ws' })
    t.equal(response.statusCode, 405, method)
    t.equal(response.headers.allow, 'GET', `${method}: Allow: GET`)
    t.match(response.json(), { error: 'Method Not Allowed', message: /only GET/ })
  }
})

t.test('POST /ws gets 405 whatever its body (issue 10, finding 10)', async (t) => {
  const app = await buildTestApp(t)
  const bodies: Array<[string, Record<string, string>, string | undefined]> = [
    ['text/plain', { 'content-type': 'text/plain' }, 'hello'],
    ['an unknown type', { 'content-type': 'application/x-unknown' }, 'x'],
    ['a form', { 'content-type': 'application/x-www-form-urlencoded' }, 'a=b'],
    ['invalid JSON', { 'content-type': 'application/json' }, '{oops'],
    ['no body', {}, undefined]
  ]
  for (const [why, headers, payload] of bodies) {
    const response = await app.inject({ method: 'POST', url: '/ws', headers, ...(payload === undefined ? {} : { payload }) })
    t.equal(response.statusCode, 405, why)
    t.equal(response.headers.allow, 'GET', `${why}: Allow: GET`)
    t.match(response.json(), { error: 'Method Not Allowed' }, `${why}: the 405 body`)
  }
})

t.test('every JSON answer carries X-Content-Type-Options: nosniff (issue 10, finding 10)', async (t) => {
  const app = await buildTestApp(t)
  const answers = [
    await app.inject('/health/live'),
    await app.inject('/health/ready'),
    await app.inject('/config.json'),
    await app.inject('/ws'),
    await app.inject({ method: 'POST', url: '/ws' }),
    await app.inject('/no/such/route'),
    await app.inject({ method: 'POST', url: '/rooms/lobby/broadcast', payload: { text: 'hi' } }),
    await app.inject({ method: 'POST', url: '/rooms/lobby/broadcast', headers: { ...AUTH, 'content-type': 'application/json' }, payload: '{oops' }),
    await app.inject({ method: 'POST', url: '/rooms/lobby/broadcast', headers: { ...AUTH, 'content-type': 'application/xml' }, payload: '<a/>' })
  ]
  for (const response of answers) {
    t.match(response.headers['content-type'], /^application\/json/, `${response.statusCode} is JSON`)
    t.equal(response.headers['x-content-type-options'], 'nosniff', `${response.statusCode} ${response.body.slice(0, 40)}`)
  }
})

t.test('a plain GET /ws gets 426', async (t) => {
  const app = await buildTestApp(t)
  const response = await app.inject('/ws')
  t.equal(response.statusCode, 426)
  t.equal(response.headers.upgrade, 'websocket')
  t.match(response.json(), { error: 'Upgrade Required' })
  t.equal((await app.inject('/ws?name=alice')).statusCode, 426, 'with a name too')
})

t.test('a bad name is refused with 400 before the upgrade', async (t) => {
  const app = await buildTestApp(t)
  const bad = {
    'too long': 'x'.repeat(33),
    'control character': 'ali%01ce',
    'a tab inside': 'al%09ice',
    DEL: 'ali%7Fce',
    'C1 control': 'ali%C2%85ce',
    empty: '',
    'blank after trimming': '%20%20%20',
    'given twice': 'alice&name=bob'
  }
  for (const [why, name] of Object.entries(bad)) {
    t.equal(await upgradeStatus(app, `/ws?name=${name}`), 400, why)
  }
  t.equal(await upgradeStatus(app, `/ws?name=${'x'.repeat(32)}`), 101, '32 characters are fine')
  t.equal(await upgradeStatus(app, `/ws?name=${encodeURIComponent('😀'.repeat(32))}`), 101, '32 emoji are 32 characters')
  t.equal(await upgradeStatus(app, `/ws?name=${encodeURIComponent('😀'.repeat(33))}`), 400, '33 emoji are too many')
})

t.test('names that impersonate are refused with 400 (issue 10, finding 7)', async (t) => {
  const app = await buildTestApp(t)
  const impersonations = {
    'an RLO making "nimda" render as "admin"': '\u202Enimda',
    'report\\u202Efdp.exe rendering as "reportexe.pdf"': 'report\u202Efdp.exe',
    'a zero-width name': '\u200B',
    'zero-width characters only': '\u200B\u200C\u200D\u2060\uFEFF',
    'a zero-width joiner inside': 'ad\u200Dmin',
    'a bidi isolate': '\u2067admin\u2069',
    'a blank Hangul filler': '\u3164'
  }
  for (const [why, name] of Object.entries(impersonations)) {
    t.equal(await upgradeStatus(app, `/ws?name=${encodeURIComponent(name)}`), 400, why)
  }
  const client = await injectClient(app, `/ws?name=${encodeURIComponent('Zoe\u0308')}`)
  t.teardown(() => client.close())
  t.match(await client.next((f) => f.type === 'welcome', 'welcome'), { name: 'Zo\u00EB' }, 'the name is NFC-normalised')
})

t.test('refusals carry a JSON body naming the problem', async (t) => {
  const server = await startServer(t, { ALLOWED_ORIGINS: '' })
  const refusal = async (path: string, headers: Record<string, string> = {}) => {
    const answer = await rawUpgrade(`${server.url}${path}`, { headers })
    t.not(answer.status, 101, `${path}: the upgrade is refused`)
    return answer
  }
  const name = await refusal(`/ws?name=${'x'.repeat(40)}`)
  t.equal(name.status, 400)
  t.match(name.body, { error: 'Bad Request', field: 'name', message: /1-32 characters/ })
  const control = await refusal('/ws?name=a%07b')
  t.match(control.body, { field: 'name', message: /control characters/ })
  const origin = await refusal('/ws', { origin: 'https://evil.example' })
  t.equal(origin.status, 403)
  t.match(origin.body, { error: 'Forbidden', message: /https:\/\/evil\.example is not allowed; add it to ALLOWED_ORIGINS/ })
})

t.test('the name is trimmed; without one the server picks guest-XXXX', async (t) => {
  const app = await buildTestApp(t)
  const trimmed = await injectClient(app, '/ws?name=%20%20alice%20')
  t.teardown(() => trimmed.close())
  t.match(await trimmed.next((f) => f.type === 'welcome', 'welcome'), { name: 'alice', node: 'test-node' })
  const names = new Set<string>()
  for (let i = 0; i < 5; i++) {
    const guest = await injectClient(app)
    t.teardown(() => guest.close())
    const welcome = await guest.next((f) => f.type === 'welcome', 'welcome')
    t.match(welcome.name, /^guest-[0-9a-f]{4}$/)
    t.match(welcome.id, /^[0-9a-f]{16}$/)
    names.add(welcome.name as string)
  }
  t.ok(names.size > 1, 'guest names are random')
})

t.test('origin check', async (t) => {
  const app = await buildTestApp(t, { ALLOWED_ORIGINS: 'https://app.example.com' })
  const host = 'chat.example.com'
  t.equal(await upgradeStatus(app, '/ws', { host, origin: 'https://evil.example.net' }), 403, 'a foreign origin')
  t.equal(await upgradeStatus(app, '/ws', { host, origin: 'https://chat.example.com.evil.net' }), 403, 'a look-alike suffix')
  t.equal(await upgradeStatus(app, '/ws', { host, origin: 'null' }), 403, 'an opaque origin')
  t.equal(await upgradeStatus(app, '/ws', { host, origin: 'http://chat.example.com' }), 101, 'the same scheme, host and port')
  t.equal(await upgradeStatus(app, '/ws', { host, origin: 'https://chat.example.com' }), 403, 'an https page may not open ws on the http origin of the same host')
  t.equal(await upgradeStatus(app, '/ws', { host, origin: 'http://chat.example.com:8080' }), 403, 'the same host on another port')
  t.equal(await upgradeStatus(app, '/ws', { host: 'chat.example.com:80', origin: 'http://chat.example.com' }), 101, 'the default port is the same port')
  t.equal(await upgradeStatus(app, '/ws', { host, origin: 'https://app.example.com' }), 101, 'an ALLOWED_ORIGINS one')
  t.equal(await upgradeStatus(app, '/ws', { host, origin: 'http://app.example.com' }), 403, 'an allowed host with another scheme is another origin')
  t.equal(await upgradeStatus(app, '/ws', { host }), 101, 'no Origin: a non-browser client')
  t.equal(await upgradeStatus(app, '/ws?name=', { host, origin: 'https://evil.example.net' }), 403, 'the origin is checked before the name')
})

t.test('origin check over a real socket', async (t) => {
  const server = await startServer(t)
  const same = await TestClient.connect(`${server.wsUrl}?name=alice`, { origin: server.url })
  t.teardown(() => same.close())
  t.match(await same.next((f) => f.type === 'welcome', 'welcome'), { name: 'alice' })
  const refused = await TestClient.connect(server.wsUrl, { origin: 'https://elsewhere.example' }).then(
    (client) => { client.close(); return 101 },
    (error: { statusCode?: number }) => error.statusCode
  )
  t.equal(refused, 403)
})

t.test('a session over injectWS: invalid frames keep the connection open', async (t) => {
  const app = await buildTestApp(t)
  const client = await injectClient(app, '/ws?name=alice')
  t.teardown(() => client.close())
  await client.next((f) => f.type === 'welcome', 'welcome')
  client.send('{oops')
  t.match(await client.next((f) => f.type === 'error', 'error'), { code: 'invalid_frame', message: 'frame is not valid JSON' })
  client.send({ type: 'join', room: 'lobby', since: null, ref: 'j' })
  t.match(await client.next((f) => f.type === 'error' && f.ref === 'j', 'error j'), { code: 'invalid_frame', message: /null/ })
  t.same(await client.join('lobby'), { type: 'joined', room: 'lobby', members: ['alice'], recovered: true })
  client.send({ type: 'send', room: 'lobby', text: 'hello', ref: 's' })
  const ack = await client.next((f) => f.type === 'ack', 'ack')
  t.match(client.messages('lobby'), [{ id: ack.id, from: 'alice', text: 'hello' }])
  t.equal(client.closeCode, undefined, 'still open')
})

t.test('a binary frame closes with 1003; an oversized frame with 1009', async (t) => {
  const server = await startServer(t, { MAX_PAYLOAD_BYTES: '1024' })
  const binary = await TestClient.connect(server.wsUrl)
  binary.socket.send(Buffer.from('{"type":"join","room":"r"}'), { binary: true })
  t.equal((await binary.waitClosed()).code, 1003)
  const big = await TestClient.connect(server.wsUrl)
  big.send({ type: 'send', room: 'r', text: 'x'.repeat(2000) })
  t.equal((await big.waitClosed()).code, 1009)
})
