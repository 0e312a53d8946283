// Route tests of routes/rooms.ts: the HTTP broadcast (auth, validation,
// Idempotency-Key) and the history API.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { BrokerTimeoutError, BrokerUnavailableError } from '../../lib/broker.js'
import { BROADCAST_BODY_LIMIT_BYTES } from '../../lib/limits.js'
import { AUTH, buildTestApp, injectClient } from '../helpers/inject.js'
import { TEST_TOKEN } from '../helpers/server.js'

function broadcast (app: FastifyInstance, room: string, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: `/rooms/${room}/broadcast`,
    headers: { ...AUTH, 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body)
  })
}

function history (app: FastifyInstance, room: string, query = '', headers: Record<string, string> = AUTH) {
  return app.inject({ method: 'GET', url: `/rooms/${room}/messages${query}`, headers })
}

/** Counts what the broker publishes, to tell "answered" from "published". */
function countPublishes (app: FastifyInstance): { count: number } {
  const counter = { count: 0 }
  const publish = app.broker.publish.bind(app.broker)
  app.broker.publish = (room, from, text) => {
    counter.count++
    return publish(room, from, text)
  }
  return counter
}

t.test('without BROADCAST_TOKEN both endpoints answer 403 saying how to enable them', async (t) => {
  const app = await buildTestApp(t, { BROADCAST_TOKEN: '' })
  t.equal(app.config.broadcastToken, undefined)
  for (const response of [await broadcast(app, 'lobby', { text: 'hi' }), await history(app, 'lobby')]) {
    t.equal(response.statusCode, 403)
    t.match(response.json(), { error: 'Forbidden', message: /set BROADCAST_TOKEN/ })
  }
})

t.test('a missing or wrong token is 401, on both endpoints', async (t) => {
  const app = await buildTestApp(t)
  const cases: Array<[string, Record<string, string>]> = [
    ['no header', { authorization: '' }],
    ['wrong token', { authorization: 'Bearer not-the-token-at-all' }],
    ['a prefix of the token', { authorization: `Bearer ${TEST_TOKEN.slice(0, -1)}` }],
    ['the token with more after it', { authorization: `Bearer ${TEST_TOKEN}x` }],
    ['another scheme', { authorization: `Basic ${TEST_TOKEN}` }],
    ['the bare token', { authorization: TEST_TOKEN }]
  ]
  for (const [why, headers] of cases) {
    const post = await app.inject({ method: 'POST', url: '/rooms/lobby/broadcast', headers: { 'content-type': 'application/json', ...headers }, payload: '{"text":"hi"}' })
    t.equal(post.statusCode, 401, `broadcast: ${why}`)
    t.equal(post.headers['www-authenticate'], 'Bearer')
    t.match(post.json(), { error: 'Unauthorized' })
    const get = await app.inject({ method: 'GET', url: '/rooms/lobby/messages', headers })
    t.equal(get.statusCode, 401, `history: ${why}`)
  }
  const missing = await app.inject({ method: 'POST', url: '/rooms/lobby/broadcast', payload: { text: 'hi' } })
  t.match(missing.json(), { message: /missing "Authorization: Bearer <token>"/ })
  t.equal((await history(app, 'lobby')).statusCode, 200, 'the right token passes')
})

t.test('auth comes before validation: an anonymous caller learns nothing about the body', async (t) => {
  const app = await buildTestApp(t)
  const response = await app.inject({ method: 'POST', url: '/rooms/bad%20room/broadcast', headers: { 'content-type': 'application/json' }, payload: 'not json' })
  t.equal(response.statusCode, 401)
  const big = await app.inject({ method: 'POST', url: '/rooms/lobby/broadcast', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ text: 'x'.repeat(BROADCAST_BODY_LIMIT_BYTES) }) })
  t.equal(big.statusCode, 401, 'not 413')
})

t.test('a broadcast is 202 {id, room, ts} and reaches the room\'s members', async (t) => {
  const app = await buildTestApp(t)
  const member = await injectClient(app, '/ws?name=alice')
  t.teardown(() => member.close())
  await member.join('lobby')
  const before = Date.now()
  const response = await broadcast(app, 'lobby', { text: 'maintenance at noon', from: '  ops  ' })
  t.equal(response.statusCode, 202)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['id', 'room', 'ts'])
  t.equal(body.room, 'lobby')
  t.type(body.id, 'string')
  t.ok(body.ts >= before && body.ts <= Date.now(), 'ts is the server\'s time')
  const message = await member.next((f) => f.type === 'message', 'the broadcast message')
  t.same(message, { type: 'message', room: 'lobby', id: body.id, from: 'ops', text: 'maintenance at noon', ts: body.ts, api: true }, 'api: true marks the back office')

  await broadcast(app, 'lobby', { text: 'trimmed like a name', from: '\tops\n' })
  t.match(await member.next((f) => f.type === 'message' && f.text === 'trimmed like a name', 'trimmed'), { from: 'ops' },
    'from follows the name rule: controls at the ends are trimmed, not refused')

  await broadcast(app, 'lobby', { text: 'no from' })
  t.match(await member.next((f) => f.type === 'message' && f.text === 'no from', 'second'), { from: 'system' }, 'from defaults to "system"')
  await broadcast(app, 'elsewhere', { text: 'other room' })
  await broadcast(app, 'lobby', { text: 'last' })
  await member.next((f) => f.type === 'message' && f.text === 'last', 'last')
  t.same(member.messages('lobby').map((f) => f.text), ['maintenance at noon', 'trimmed like a name', 'no from', 'last'], 'only the room\'s messages')
})

t.test('invalid broadcasts are 400 naming the field, and publish nothing', async (t) => {
  const app = await buildTestApp(t, { MAX_TEXT_LENGTH: '10' })
  const published = countPublishes(app)
  const cases: Array<[string, string, unknown, Record<string, string>, string, RegExp]> = [
    ['bad room id', 'bad%20room', { text: 'hi' }, {}, 'room', /room id must be 1-64 characters/],
    ['room id too long', 'x'.repeat(65), { text: 'hi' }, {}, 'room', /1-64/],
    ['missing text', 'lobby', {}, {}, 'text', /expected a string/],
    ['text not a string', 'lobby', { text: 5 }, {}, 'text', /expected a string/],
    ['empty text', 'lobby', { text: '' }, {}, 'text', /expected 1-10 characters/],
    ['text too long', 'lobby', { text: 'x'.repeat(11) }, {}, 'text', /expected 1-10 characters/],
    ['text too long in code points', 'lobby', { text: '😀'.repeat(11) }, {}, 'text', /expected 1-10 characters/],
    ['extra field', 'lobby', { text: 'hi', room: 'other' }, {}, 'body', /unknown field\(s\) room/],
    ['bad from', 'lobby', { text: 'hi', from: 'x'.repeat(33) }, {}, 'from', /1-32/],
    ['from with a control character', 'lobby', { text: 'hi', from: 'o\u0007ps' }, {}, 'from', /control/],
    ['from with an RLO rendering as "admin"', 'lobby', { text: 'hi', from: '\u202Enimda' }, {}, 'from', /format characters/],
    ['from disguising a file name', 'lobby', { text: 'hi', from: 'report\u202Efdp.exe' }, {}, 'from', /format characters/],
    ['a zero-width from', 'lobby', { text: 'hi', from: '\u200B\u200C\u200D' }, {}, 'from', /format characters/],
    ['a blank from', 'lobby', { text: 'hi', from: '\u3164\u3164' }, {}, 'from', /blank/],
    ['not an object', 'lobby', [{ text: 'hi' }], {}, 'body', /JSON object/],
    ['not JSON', 'lobby', '{"text":', {}, 'body', /JSON/],
    ['Idempotency-Key too long', 'lobby', { text: 'hi' }, { 'idempotency-key': 'k'.repeat(129) }, 'Idempotency-Key', /1-128 printable ASCII/],
    ['empty Idempotency-Key', 'lobby', { text: 'hi' }, { 'idempotency-key': '' }, 'Idempotency-Key', /printable ASCII/],
    ['non-ASCII Idempotency-Key', 'lobby', { text: 'hi' }, { 'idempotency-key': 'kl\u00e9' }, 'Idempotency-Key', /printable ASCII/]
  ]
  for (const [why, room, body, headers, field, message] of cases) {
    const response = await broadcast(app, room, body, headers)
    t.equal(response.statusCode, 400, why)
    t.match(response.json(), { error: 'Bad Request', field, message }, `${why}: names ${field}`)
  }
  t.equal(published.count, 0)
  t.equal((await broadcast(app, 'lobby', { text: '😀'.repeat(10) })).statusCode, 202, 'exactly MAX_TEXT_LENGTH code points')
  t.equal((await broadcast(app, 'lobby', { text: 'hi' }, { 'idempotency-key': 'k'.repeat(128) })).statusCode, 202, 'a 128-character key')
})

t.test('a body over the limit is 413', async (t) => {
  const app = await buildTestApp(t, { MAX_TEXT_LENGTH: String(1024 * 1024) })
  const published = countPublishes(app)
  const response = await broadcast(app, 'lobby', { text: 'x'.repeat(BROADCAST_BODY_LIMIT_BYTES) })
  t.equal(response.statusCode, 413)
  t.match(response.json(), { error: 'Payload Too Large', message: new RegExp(String(BROADCAST_BODY_LIMIT_BYTES)) })
  t.equal(published.count, 0)
  t.equal((await broadcast(app, 'lobby', { text: 'x'.repeat(BROADCAST_BODY_LIMIT_BYTES - 100) })).statusCode, 202, 'just under the limit is fine')
})

t.test('broker unavailable: 503, nothing published, the key is not used up', async (t) => {
  const app = await buildTestApp(t)
  const publish = app.broker.publish.bind(app.broker)
  app.broker.publish = () => Promise.reject(new BrokerUnavailableError())
  const failed = await broadcast(app, 'lobby', { text: 'hi' }, { 'idempotency-key': 'retry-me' })
  t.equal(failed.statusCode, 503)
  t.match(failed.json(), { error: 'Service Unavailable', message: /nothing was published/ })
  app.broker.publish = publish
  const retried = await broadcast(app, 'lobby', { text: 'hi' }, { 'idempotency-key': 'retry-me' })
  t.equal(retried.statusCode, 202)
  t.equal((await history(app, 'lobby')).json().messages.length, 1)
})

t.test('broker timed out: 503 with outcome unknown, saying the message may have been published', async (t) => {
  const app = await buildTestApp(t)
  app.broker.publish = () => Promise.reject(new BrokerTimeoutError())
  const response = await broadcast(app, 'lobby', { text: 'hi' })
  t.equal(response.statusCode, 503)
  t.same(response.json(), {
    error: 'Service Unavailable',
    message: 'the message broker did not answer in time; the message may or may not have been published',
    outcome: 'unknown'
  })
})

t.test('Idempotency-Key: a repeat answers the first 202 again and publishes nothing', async (t) => {
  const app = await buildTestApp(t)
  const member = await injectClient(app, '/ws?name=alice')
  t.teardown(() => member.close())
  await member.join('lobby')
  const published = countPublishes(app)
  const key = { 'idempotency-key': 'order-42' }
  const first = await broadcast(app, 'lobby', { text: 'once' }, key)
  t.equal(first.statusCode, 202)
  const same = await broadcast(app, 'lobby', { text: 'once' }, key)
  t.equal(same.statusCode, 202)
  t.same(same.json(), first.json(), 'the same body')
  const different = await broadcast(app, 'lobby', { text: 'a different text', from: 'someone' }, key)
  t.equal(different.statusCode, 202)
  t.same(different.json(), first.json(), 'the first answer whatever the repeat\'s body says')
  const invalid = await broadcast(app, 'lobby', { nonsense: true }, key)
  t.equal(invalid.statusCode, 202, 'even an invalid body')
  t.same(invalid.json(), first.json())
  t.equal(published.count, 1, 'published once')

  await broadcast(app, 'lobby', { text: 'marker' })
  await member.next((f) => f.type === 'message' && f.text === 'marker', 'marker')
  t.same(member.messages('lobby').map((f) => f.text), ['once', 'marker'], 'the member got it once')
})

t.test('Idempotency-Key: concurrent repeats wait for the first and publish once', async (t) => {
  const app = await buildTestApp(t)
  const published = countPublishes(app)
  const responses = await Promise.all(Array.from({ length: 5 }, (_, i) => broadcast(app, 'lobby', { text: `try ${i}` }, { 'idempotency-key': 'burst' })))
  t.same(responses.map((r) => r.statusCode), [202, 202, 202, 202, 202])
  const bodies = responses.map((r) => r.json())
  for (const body of bodies) t.same(body, bodies[0])
  t.equal(published.count, 1)
})

t.test('Idempotency-Key: keys are per room; a failed first call stores nothing', async (t) => {
  const app = await buildTestApp(t)
  const published = countPublishes(app)
  const key = { 'idempotency-key': 'shared' }
  const a = await broadcast(app, 'room-a', { text: 'to a' }, key)
  const b = await broadcast(app, 'room-b', { text: 'to b' }, key)
  t.equal(a.statusCode, 202)
  t.equal(b.statusCode, 202)
  t.equal(a.json().room, 'room-a')
  t.equal(b.json().room, 'room-b')
  t.equal(published.count, 2, 'the same key in two rooms publishes twice')
  t.same((await broadcast(app, 'room-a', { text: 'again' }, key)).json(), a.json())

  const bad = await broadcast(app, 'lobby', { text: '' }, { 'idempotency-key': 'fix-me' })
  t.equal(bad.statusCode, 400)
  const fixed = await broadcast(app, 'lobby', { text: 'fixed' }, { 'idempotency-key': 'fix-me' })
  t.equal(fixed.statusCode, 202, 'a key whose first call was a 400 may be used again')
  t.same((await history(app, 'lobby')).json().messages.map((m: { text: string }) => m.text), ['fixed'])
})

t.test('history: default limit 50, most recent, oldest first', async (t) => {
  const app = await buildTestApp(t)
  const ids: string[] = []
  for (let i = 1; i <= 60; i++) ids.push((await app.hub.publish('lobby', 'ops', `m${i}`)).id)
  const response = await history(app, 'lobby')
  t.equal(response.statusCode, 200)
  const { messages } = response.json() as { messages: Array<Record<string, unknown>> }
  t.equal(messages.length, 50)
  t.same(messages.map((m) => m.text), Array.from({ length: 50 }, (_, i) => `m${i + 11}`))
  t.same(Object.keys(messages[0] ?? {}).sort(), ['from', 'id', 'room', 'text', 'ts'], 'the public fields only')
  t.match(messages[0], { room: 'lobby', id: ids[10], from: 'ops', text: 'm11' })

  t.same((await history(app, 'lobby', '?limit=3')).json().messages.map((m: { text: string }) => m.text), ['m58', 'm59', 'm60'])
  t.same((await history(app, 'empty-room')).json().messages, [], 'a room without messages')
})

t.test('history: since gives the messages after it', async (t) => {
  const app = await buildTestApp(t)
  const ids: string[] = []
  for (let i = 1; i <= 10; i++) ids.push((await app.hub.publish('lobby', 'ops', `m${i}`)).id)
  const after = await history(app, 'lobby', `?since=${ids[6]}`)
  t.equal(after.statusCode, 200)
  t.same(after.json().messages.map((m: { text: string }) => m.text), ['m8', 'm9', 'm10'])
  t.same((await history(app, 'lobby', `?since=${ids[1]}&limit=2`)).json().messages.map((m: { text: string }) => m.text), ['m3', 'm4'], 'the first `limit` after it')
  t.same((await history(app, 'lobby', `?since=${ids[9]}`)).json().messages, [], 'nothing after the newest')
  const unknown = await history(app, 'lobby', '?since=deadbeef-3&limit=2')
  t.equal(unknown.statusCode, 200)
  t.match(unknown.json(), { recovered: false })
  t.same(unknown.json().messages.map((m: { text: string }) => m.text), ['m9', 'm10'], 'an unknown since gives the recent messages')
})

t.test('history: limit is 1..1000, other query fields and bad rooms are 400', async (t) => {
  const app = await buildTestApp(t)
  await app.hub.publish('lobby', 'ops', 'hello')
  for (const limit of ['1', '1000']) t.equal((await history(app, 'lobby', `?limit=${limit}`)).statusCode, 200, `limit=${limit}`)
  for (const query of ['?limit=0', '?limit=1001', '?limit=-1', '?limit=abc', '?limit=1.5', '?limit=', '?since=', '?limit=1&limit=2', '?other=1']) {
    const response = await history(app, 'lobby', query)
    t.equal(response.statusCode, 400, query)
    t.equal(response.json().error, 'Bad Request')
  }
  t.match((await history(app, 'lobby', '?limit=0')).json(), { field: 'limit', message: /1-1000/ })
  t.match((await history(app, 'lobby', '?limit=1001')).json(), { field: 'limit' })
  t.match((await history(app, 'bad!room')).json(), { field: 'room' })
  t.equal((await history(app, 'x'.repeat(65))).statusCode, 400)
})
