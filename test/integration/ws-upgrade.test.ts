// The upgrade request (PROTOCOL §1): methods, plain GETs, display names and
// the origin check, over real sockets, and the welcome frame that follows.
import t from 'tap'
import { metric } from '../helpers/http.js'
import { waitFor } from '../helpers/wait.js'
import { startServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'
import { rawUpgrade } from '../helpers/ws-upgrade.js'

t.test('other methods get 405, a plain GET gets 426', async (t) => {
  const server = await startServer(t)
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const response = await fetch(`${server.url}/ws`, { method })
    t.equal(response.status, 405, `${method} /ws`)
    t.equal(response.headers.get('allow'), 'GET', `${method}: Allow: GET`)
  }
  const plain = await fetch(`${server.url}/ws`)
  t.equal(plain.status, 426, 'GET /ws without upgrade headers')
  t.match(await plain.json(), { error: 'Upgrade Required' })
})

t.test('welcome right after the upgrade', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.connect(`${server.wsUrl}?name=alice`)
  t.teardown(() => client.close())
  const welcome = await client.next((f) => f.type === 'welcome', 'welcome')
  t.equal(client.frames.indexOf(welcome), 0, 'the first frame')
  t.same(Object.keys(welcome).sort(), ['id', 'name', 'node', 'type'])
  t.match(welcome, { name: 'alice', node: 'test-node', id: String })
  const other = await TestClient.connect(`${server.wsUrl}?name=alice`)
  t.teardown(() => other.close())
  const second = await other.next((f) => f.type === 'welcome', 'second welcome')
  t.not(second.id, welcome.id, 'each connection has its own id, even with the same name')
})

t.test('display names', async (t) => {
  const server = await startServer(t)
  const name = async (query: string): Promise<string> => {
    const client = await TestClient.connect(`${server.wsUrl}${query}`)
    t.teardown(() => client.close())
    const welcome = await client.next((f) => f.type === 'welcome', 'welcome')
    return welcome.name as string
  }
  t.match(await name(''), /^guest-[0-9a-f]{4}$/, 'absent: the server assigns guest-XXXX')
  t.equal(await name('?name=%20%20bob%20%20'), 'bob', 'trimmed')
  t.equal(await name(`?name=${'n'.repeat(32)}`), 'n'.repeat(32), '32 characters')
  t.equal(await name(`?name=${encodeURIComponent('😀'.repeat(32))}`), '😀'.repeat(32), '32 code points')
  t.equal(await name(`?name=${encodeURIComponent('Zoë 李')}`), 'Zoë 李', 'any Unicode')

  const refused: Array<[string, string]> = [
    ['?name=', 'empty'],
    ['?name=%20%20%20', 'blank after trimming'],
    [`?name=${'n'.repeat(33)}`, '33 characters'],
    [`?name=${encodeURIComponent('😀'.repeat(33))}`, '33 code points'],
    ['?name=a%07b', 'a control character'],
    ['?name=a%0Ab', 'a newline']
  ]
  for (const [query, what] of refused) {
    const { status, body, headers } = await rawUpgrade(`${server.wsUrl}${query}`)
    t.equal(status, 400, `${what}: 400`)
    t.equal(headers?.['x-content-type-options'], 'nosniff', `${what}: the refusal carries nosniff`)
    t.match(body, { field: 'name', message: String }, `${what}: the answer names the field`)
  }
  t.equal(await metric(server.url, 'chat_connections'), 5, 'refused upgrades hold no connection')
})

t.test('origin check', async (t) => {
  const server = await startServer(t, { ALLOWED_ORIGINS: 'https://chat.example.com' })
  const status = async (headers: Record<string, string> = {}) => (await rawUpgrade(server.wsUrl, { headers })).status
  t.equal(await status(), 101, 'no Origin (not a browser): accepted')
  t.equal(await status({ origin: server.url }), 101, "the request's own host: accepted")
  t.equal(await status({ origin: 'https://chat.example.com' }), 101, 'listed in ALLOWED_ORIGINS: accepted')
  const refused = await rawUpgrade(server.wsUrl, { headers: { origin: 'https://evil.example.com' } })
  t.equal(refused.status, 403, 'another origin: 403')
  t.match(refused.body, { message: /origin/ }, 'the answer says why')
  t.equal(await status({ origin: 'https://chat.example.com:8443' }), 403, 'a listed host on another port: 403')
  t.equal(await status({ origin: 'http://chat.example.com' }), 403, 'a listed host with another scheme: 403')
  t.equal(await status({ origin: 'null' }), 403, 'an opaque origin: 403')
  t.equal(await status({ origin: `http://127.0.0.1:${new URL(server.url).port === '1' ? 2 : 1}` }), 403, 'the same host name on another port: 403')
  // A real client with an Origin header is refused before the upgrade.
  const evil = await TestClient.connect(server.wsUrl, { origin: 'https://evil.example.com' }).then(
    (client) => { client.close(); return 101 },
    (error: { statusCode?: number }) => error.statusCode)
  t.equal(evil, 403, 'a ws client with a foreign Origin is refused with 403')
  const allowed = await TestClient.connect(server.wsUrl, { origin: 'https://chat.example.com' })
  t.teardown(() => allowed.close())
  await allowed.next((f) => f.type === 'welcome', 'welcome with an allowed origin')
  // The hand-made upgrades above hung up; only the ws client stays.
  await waitFor(async () => (await metric(server.url, 'chat_connections')) === 1, 'chat_connections = 1')
  t.pass('refused upgrades hold no connection')
})

t.test('origin check: scheme, host and port, from X-Forwarded-Proto/-Host only when TRUST_PROXY trusts the peer (issue 10, finding 10)', async (t) => {
  const trusted = await startServer(t, { TRUST_PROXY: '127.0.0.1' })
  const status = async (wsUrl: string, headers: Record<string, string>, localAddress?: string) => (await rawUpgrade(wsUrl, { headers, localAddress })).status
  const own = new URL(trusted.url)
  t.equal(await status(trusted.wsUrl, { origin: trusted.url }), 101, 'the request\'s own origin')
  t.equal(await status(trusted.wsUrl, { origin: `https://${own.host}` }), 403, 'an https page may not open ws on the http origin of the same host and port')
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example.com' }
  t.equal(await status(trusted.wsUrl, { ...forwarded, origin: 'https://chat.example.com' }), 101, 'the public https origin a trusted proxy forwards')
  t.equal(await status(trusted.wsUrl, { ...forwarded, origin: 'http://chat.example.com' }), 403, 'an http page on the https origin')
  t.equal(await status(trusted.wsUrl, { ...forwarded, origin: trusted.url }), 403, 'the node\'s own address is not the public origin')
  t.equal(await status(trusted.wsUrl, { 'x-forwarded-proto': 'https', host: 'chat.example.com', origin: 'https://chat.example.com' }), 101, 'X-Forwarded-Proto with the Host header')
  t.equal(await status(trusted.wsUrl, { ...forwarded, origin: 'https://chat.example.com' }, '127.0.0.2'), 403, 'the same headers from an untrusted peer are ignored')
  t.equal(await status(trusted.wsUrl, { ...forwarded, origin: trusted.url }, '127.0.0.2'), 101, 'and the request\'s own scheme and Host decide')

  const untrusting = await startServer(t)
  t.equal(await status(untrusting.wsUrl, { ...forwarded, origin: 'https://chat.example.com' }), 403, 'without TRUST_PROXY forwarded headers are ignored')
})
