// Route tests of routes/openapi.ts: the document is valid OpenAPI 3.1, names
// every registered route, and real answers of every endpoint, errors included, match it.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { Validator } from '@seriousme/openapi-schema-validator'
import app from '../../app.js'
import { BrokerUnavailableError } from '../../lib/broker.js'
import { BROADCAST_BODY_LIMIT_BYTES } from '../../lib/limits.js'
import { buildOpenApiDocument } from '../../lib/openapi.js'
import { AUTH, buildTestApp, injectClient } from '../helpers/inject.js'
import { startServer, testConfig } from '../helpers/server.js'
import { rawUpgrade } from '../helpers/ws-upgrade.js'

type Document = ReturnType<typeof buildOpenApiDocument>

interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
}

interface Operation {
  responses: Record<string, { content?: Record<string, unknown>, headers?: Record<string, unknown> }>
}

/**
 * Checks a real answer against the document: the status is listed for the
 * operation, its content type is documented, a JSON body and every documented
 * header validate against their schemas (ajv, JSON Schema 2020-12 as OpenAPI 3.1).
 */
function conformance (document: Document) {
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  ajv.addSchema({ ...document, $id: 'openapi.json' })
  const pointer = (...parts: string[]) => 'openapi.json#/' + parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/')
  const validate = (schemaPointer: string, value: unknown): string | undefined => {
    const check = ajv.compile({ $ref: schemaPointer })
    return check(value) ? undefined : ajv.errorsText(check.errors)
  }

  return function check (t: Test, method: string, path: string, answer: Answer): void {
    const operation = (document.paths as Record<string, Record<string, Operation>>)[path]?.[method]
    const status = String(answer.statusCode)
    const documented = operation?.responses[status]
    if (!t.ok(documented, `${method.toUpperCase()} ${path} ${status} is documented`) || documented === undefined) return
    const base = ['paths', path, method, 'responses', status]
    for (const header of Object.keys(documented.headers ?? {})) {
      const value = answer.headers[header.toLowerCase()]
      t.ok(value !== undefined, `${method.toUpperCase()} ${path} ${status} has the ${header} header`)
      t.equal(validate(pointer(...base, 'headers', header, 'schema'), value), undefined, `${header} header matches`)
    }
    const types = Object.keys(documented.content ?? {})
    if (types.length === 0) {
      t.equal(answer.body, '', `${method.toUpperCase()} ${path} ${status} has no body`)
      return
    }
    const given = String(answer.headers['content-type'] ?? '').split(';')[0]?.trim() ?? ''
    const type = types.find((candidate) => candidate === given) ?? types.find((candidate) => candidate === '*/*')
    if (!t.ok(type, `${method.toUpperCase()} ${path} ${status}: content type ${given} is documented (${types.join(', ')})`) || type === undefined) return
    if (type !== 'application/json') return
    const problem = validate(pointer(...base, 'content', type, 'schema'), JSON.parse(answer.body))
    t.equal(problem, undefined, `${method.toUpperCase()} ${path} ${status}: the body matches: ${answer.body}`)
  }
}

/** A WebSocket upgrade over a real socket, for the answers given before it (injectWS hides their bodies). */
async function upgrade (url: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const { status, headers: answered, text } = await rawUpgrade(url + path, { headers })
  return { statusCode: status, headers: answered, body: text }
}

const document = buildOpenApiDocument({ maxTextLength: testConfig().maxTextLength, maxDataBytes: testConfig().maxDataBytes })

t.test('the document is valid OpenAPI 3.1', async (t) => {
  const result = await new Validator().validate(structuredClone(document))
  t.same(result.errors, undefined, 'no validation errors')
  t.equal(result.valid, true)
  t.equal(document.openapi, '3.1.0')
})

t.test('the broadcast body and the history page describe data, with its bound', async (t) => {
  const schemas = document.components.schemas as Record<string, { properties: Record<string, { type?: string, description?: string }> }>
  const data = schemas.BroadcastBody?.properties.data
  t.equal(data?.type, 'object')
  t.match(data?.description, `at most ${testConfig().maxDataBytes} bytes (MAX_DATA_BYTES)`)
  const page = schemas.HistoryPage as unknown as { properties: { messages: { items: { properties: Record<string, { type?: string }> } } } }
  t.equal(page.properties.messages.items.properties.data?.type, 'object')
})

t.test('the validator catches a broken document (the check above can fail)', async (t) => {
  const broken = structuredClone(document) as unknown as { paths: Record<string, { get?: { responses?: unknown } }> }
  broken.paths['/health/live'] = { get: { responses: { 200: { content: {} } } } }
  t.equal((await new Validator().validate(broken)).valid, false, 'a response without its description is refused')
})

t.test('every registered route is documented, with its method', async (t) => {
  const routes: Array<{ method: string, url: string }> = []
  const fastify = Fastify({ logger: false })
  fastify.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url })
  })
  await fastify.register(fp(app), { config: testConfig() })
  await fastify.ready()
  t.teardown(() => fastify.close())

  const paths = document.paths as Record<string, Record<string, unknown>>
  t.ok(routes.length >= 10, `found the routes (${routes.length})`)
  for (const { method, url } of routes) {
    // Fastify answers HEAD for every GET on its own; OpenAPI's GET covers it.
    if (method === 'HEAD') continue
    // @fastify/static's wildcard serves the page at / and each asset at /{asset}.
    const templated = url === '/*' || url === '*' ? ['/', '/{asset}'] : [url.replace(/:(\w+)/g, '{$1}')]
    for (const path of templated) t.ok(paths[path]?.[method.toLowerCase()], `${method} ${path} is documented`)
  }
  // And the other way round: nothing documented that the app does not serve.
  const served = new Set(routes.map(({ method, url }) => `${method} ${url.replace(/:(\w+)/g, '{$1}')}`))
  for (const [path, operations] of Object.entries(paths)) {
    for (const method of Object.keys(operations)) {
      const key = `${method.toUpperCase()} ${path}`
      const wildcard = (path === '/' || path === '/{asset}') && method === 'get' && (served.has('GET /*') || served.has('GET *'))
      t.ok(served.has(key) || wildcard, `${key} is served`)
    }
  }
})

t.test('real answers of the HTTP API match the document', async (t) => {
  const check = conformance(document)
  const app = await buildTestApp(t)
  const inject = async (method: string, path: string, url: string, options: { headers?: Record<string, string>, payload?: unknown } = {}) => {
    const answer = await app.inject({ method: method.toUpperCase() as 'GET', url, ...options } as never)
    check(t, method, path, { statusCode: answer.statusCode, headers: answer.headers, body: answer.body })
    return answer
  }
  const broadcast = '/rooms/{id}/broadcast'
  const history = '/rooms/{id}/messages'

  await inject('get', '/', '/')
  await inject('get', '/{asset}', '/chat-client.js')
  await inject('get', '/{asset}', '/no-such-file.js')
  await inject('get', '/health/live', '/health/live')
  await inject('get', '/health/ready', '/health/ready')
  await inject('get', '/metrics', '/metrics')
  await inject('get', '/config.json', '/config.json')
  await inject('get', '/openapi.json', '/openapi.json')

  const first = await inject('post', broadcast, '/rooms/lobby/broadcast', { headers: { ...AUTH, 'idempotency-key': 'k1' }, payload: { text: 'hi', from: 'ops' } })
  t.equal(first.statusCode, 202)
  const since = first.json().id as string
  await inject('post', broadcast, '/rooms/lobby/broadcast', { headers: AUTH, payload: { text: 'second', data: { kind: 'note', n: [1, 2] } } })
  for (const payload of [{ text: '' }, { text: 'hi', extra: 1 }, { from: 'ops' }, '{"text":', { text: 'hi', data: [1] }, { text: 'hi', data: 'x' }]) {
    const answer = await inject('post', broadcast, '/rooms/lobby/broadcast', { headers: { ...AUTH, 'content-type': 'application/json' }, payload })
    t.equal(answer.statusCode, 400, `400 for ${JSON.stringify(payload)}`)
  }
  const plain = await inject('post', broadcast, '/rooms/lobby/broadcast', { headers: { ...AUTH, 'content-type': 'application/xml' }, payload: '<text>hi</text>' })
  t.equal(plain.statusCode, 415)
  t.equal((await inject('post', broadcast, '/rooms/bad%20room/broadcast', { headers: AUTH, payload: { text: 'hi' } })).statusCode, 400)
  t.equal((await inject('post', broadcast, '/rooms/lobby/broadcast', { headers: { ...AUTH, 'idempotency-key': 'é' }, payload: { text: 'hi' } })).statusCode, 400)
  t.equal((await inject('post', broadcast, '/rooms/lobby/broadcast', { payload: { text: 'hi' } })).statusCode, 401)
  t.equal((await inject('post', broadcast, '/rooms/lobby/broadcast', { headers: { authorization: 'Bearer wrong-token' }, payload: { text: 'hi' } })).statusCode, 401)
  const tooLarge = { text: 'x'.repeat(BROADCAST_BODY_LIMIT_BYTES) }
  t.equal((await inject('post', broadcast, '/rooms/lobby/broadcast', { headers: AUTH, payload: tooLarge })).statusCode, 413)

  t.equal((await inject('get', history, '/rooms/lobby/messages', { headers: AUTH })).json().messages.length, 2)
  const after = await inject('get', history, `/rooms/lobby/messages?since=${encodeURIComponent(since)}&limit=10`, { headers: AUTH })
  t.same(after.json().messages.map((m: { text: string }) => m.text), ['second'])
  t.same(after.json().messages[0].data, { kind: 'note', n: [1, 2] }, 'the history answers the data, as documented')
  t.equal((await inject('get', history, '/rooms/lobby/messages?since=unknown-id', { headers: AUTH })).json().recovered, false)
  t.equal((await inject('get', history, '/rooms/lobby/messages?limit=0', { headers: AUTH })).statusCode, 400)
  t.equal((await inject('get', history, '/rooms/lobby/messages?extra=1', { headers: AUTH })).statusCode, 400)
  t.equal((await inject('get', history, '/rooms/lobby/messages?limit=10', { headers: { authorization: 'Bearer wrong-token' } })).statusCode, 401)

  const members = '/rooms/{id}/members'
  t.same((await inject('get', members, '/rooms/lobby/members', { headers: AUTH })).json(), { room: 'lobby', count: 0, members: [] })
  const guest = await injectClient(app, '/ws?name=ann')
  await guest.join('lobby')
  t.same((await inject('get', members, '/rooms/lobby/members', { headers: AUTH })).json().members, [{ name: 'ann', connections: 1 }])
  t.equal((await inject('get', members, '/rooms/bad%20room/members', { headers: AUTH })).statusCode, 400)
  t.equal((await inject('get', members, '/rooms/lobby/members')).statusCode, 401)

  const disconnect = '/users/{id}/disconnect'
  t.equal((await inject('post', disconnect, '/users/alice/disconnect', { headers: AUTH, payload: { reason: 'moderated' } })).statusCode, 202)
  t.equal((await inject('post', disconnect, '/users/alice/disconnect', { headers: AUTH })).statusCode, 202, 'no body')
  t.equal((await inject('post', disconnect, '/users/alice/disconnect', { headers: AUTH, payload: { reason: 'x'.repeat(129) } })).statusCode, 400)
  t.equal((await inject('post', disconnect, `/users/${'u'.repeat(129)}/disconnect`, { headers: AUTH })).statusCode, 400)
  t.equal((await inject('post', disconnect, '/users/alice/disconnect', { headers: { ...AUTH, 'content-type': 'application/json' }, payload: '{"reason":' })).statusCode, 400)
  t.equal((await inject('post', disconnect, '/users/alice/disconnect', { headers: { ...AUTH, 'content-type': 'application/xml' }, payload: '<x/>' })).statusCode, 415)
  t.equal((await inject('post', disconnect, '/users/alice/disconnect', { headers: AUTH, payload: { reason: 'x'.repeat(5000) } })).statusCode, 413)
  t.equal((await inject('post', disconnect, '/users/alice/disconnect', { payload: {} })).statusCode, 401)

  // The broker refusing: 503 on both routes.
  const { publish, read } = app.broker
  app.broker.publish = () => Promise.reject(new BrokerUnavailableError())
  app.broker.read = () => Promise.reject(new BrokerUnavailableError())
  const { remoteRoster } = app.presence
  app.presence.remoteRoster = () => Promise.reject(new BrokerUnavailableError())
  t.equal((await inject('post', broadcast, '/rooms/lobby/broadcast', { headers: AUTH, payload: { text: 'hi' } })).statusCode, 503)
  t.equal((await inject('get', history, '/rooms/lobby/messages', { headers: AUTH })).statusCode, 503)
  t.equal((await inject('get', members, '/rooms/lobby/members', { headers: AUTH })).statusCode, 503)
  Object.assign(app.broker, { publish, read })
  app.presence.remoteRoster = remoteRoster

  for (const method of ['post', 'put', 'patch', 'delete']) {
    t.equal((await inject(method, '/ws', '/ws', { payload: { text: 'hi' } })).statusCode, 405)
  }
  t.equal((await inject('get', '/ws', '/ws')).statusCode, 426)

  app.broker.health = () => ({ ok: false, check: 'redis', reason: 'probe stale' })
  t.equal((await inject('get', '/health/ready', '/health/ready')).statusCode, 503)
})

t.test('the API without BROADCAST_TOKEN answers 403 as documented', async (t) => {
  const check = conformance(document)
  const app = await buildTestApp(t, { BROADCAST_TOKEN: '' })
  const routes = [
    ['post', '/rooms/{id}/broadcast', '/rooms/lobby/broadcast'],
    ['get', '/rooms/{id}/messages', '/rooms/lobby/messages'],
    ['get', '/rooms/{id}/members', '/rooms/lobby/members'],
    ['post', '/users/{id}/disconnect', '/users/alice/disconnect']
  ] as const
  for (const [method, path, url] of routes) {
    const answer = await app.inject({ method: method === 'post' ? 'POST' : 'GET', url, headers: AUTH, ...(method === 'post' ? { payload: { text: 'hi' } } : {}) })
    t.equal(answer.statusCode, 403)
    check(t, method, path, { statusCode: answer.statusCode, headers: answer.headers, body: answer.body })
  }
})

t.test('real answers to WebSocket upgrades match the document', async (t) => {
  const check = conformance(document)
  const server = await startServer(t, { SHUTDOWN_GRACE_MS: '1000' })
  const cases: Array<[string, Record<string, string>, number]> = [
    ['/ws?name=alice', {}, 101],
    ['/ws?name=%20%20', {}, 400],
    ['/ws?name=bob', { origin: 'https://elsewhere.example' }, 403]
  ]
  for (const [path, headers, status] of cases) {
    const answer = await upgrade(server.url, path, headers)
    t.equal(answer.statusCode, status, `${path} ${JSON.stringify(headers)}`)
    check(t, 'get', '/ws', answer)
  }
  await server.app.connections.drain()
  const refused = await upgrade(server.url, '/ws?name=carol')
  t.equal(refused.statusCode, 503, 'refused while shutting down')
  check(t, 'get', '/ws', refused)
})

t.test('the conformance check fails on an undocumented answer (it can fail)', async (t) => {
  const check = conformance(document)
  const failures: string[] = []
  const probe = { ok: (value: unknown, message: string) => { if (!value) failures.push(message); return Boolean(value) }, equal: (a: unknown, b: unknown, message: string) => { if (a !== b) failures.push(message); return a === b } }
  check(probe as unknown as Test, 'get', '/health/live', { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"status":"fine"}' })
  check(probe as unknown as Test, 'get', '/health/live', { statusCode: 418, headers: {}, body: '' })
  check(probe as unknown as Test, 'get', '/health/ready', { statusCode: 503, headers: { 'content-type': 'text/html' }, body: '<p>down</p>' })
  t.equal(failures.length, 3, failures.join('\n'))
})
