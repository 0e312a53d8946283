// The page's token source: GET /config.json names PAGE_TOKEN_URL and
// AUTH_REQUIRED, and public/token.js reads the host application's endpoint.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { tokenFetcher } from '../../public/token.js'
import { buildTestApp } from '../helpers/inject.js'

t.test('/config.json carries tokenUrl and authRequired only when set', async (t) => {
  const plain = await buildTestApp(t)
  const body = (await plain.inject('/config.json')).json()
  t.notOk('tokenUrl' in body || 'authRequired' in body, 'nothing new for a deployment without tokens')
  const app = await buildTestApp(t, { PAGE_TOKEN_URL: '/session/chat-token', AUTH_REQUIRED: 'true', AUTH_JWT_SECRET: 'x'.repeat(32) })
  t.match((await app.inject('/config.json')).json(), { tokenUrl: '/session/chat-token', authRequired: true })
})

t.test('tokenFetcher: JSON or text, 401 means guest, other failures throw', async (t) => {
  let answer: { status: number, type: string, body: string } = { status: 200, type: 'application/json', body: '{"token":"tok-1"}' }
  const server = http.createServer((request, response) => {
    response.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const getToken = tokenFetcher(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/token`))
  t.equal(await getToken(), 'tok-1')
  answer = { status: 200, type: 'text/plain', body: ' tok-2\n' }
  t.equal(await getToken(), 'tok-2')
  answer = { status: 401, type: 'text/plain', body: '' }
  t.equal(await getToken(), undefined, 'not signed in: a guest')
  answer = { status: 500, type: 'text/plain', body: '' }
  await t.rejects(getToken(), /500/)
  answer = { status: 200, type: 'application/json', body: '{"nope":1}' }
  await t.rejects(getToken(), /token/)
})
