// Route tests of routes/users.ts: POST /users/:id/disconnect's refusals.
import t from 'tap'
import { buildApp } from '../../app.js'
import { loadConfig } from '../../lib/config.js'
import { TEST_TOKEN } from '../helpers/server.js'
import { buildTestApp } from '../helpers/inject.js'

t.test('without BROADCAST_TOKEN the endpoint is off: 403 saying how to enable it', async (t) => {
  const app = await buildApp(loadConfig({ NODE_ID: 'test-node' }))
  t.teardown(() => app.close())
  const response = await app.inject({ method: 'POST', url: '/users/alice/disconnect', payload: {} })
  t.equal(response.statusCode, 403)
  t.match(response.json(), { message: /BROADCAST_TOKEN/ })
})

t.test('a user id over 128 characters is 400 naming id; a non-object body is 400', async (t) => {
  const app = await buildTestApp(t)
  const headers = { authorization: `Bearer ${TEST_TOKEN}` }
  const longest = await app.inject({ method: 'POST', url: `/users/${encodeURIComponent('é'.repeat(128))}/disconnect`, headers, payload: {} })
  t.equal(longest.statusCode, 202, 'a 128-character id, percent-encoded, reaches the route')
  const long = await app.inject({ method: 'POST', url: `/users/${'u'.repeat(129)}/disconnect`, headers, payload: {} })
  t.equal(long.statusCode, 400)
  t.match(long.json(), { field: 'id' })
  const array = await app.inject({ method: 'POST', url: '/users/alice/disconnect', headers, payload: [] })
  t.equal(array.statusCode, 400)
  const empty = await app.inject({ method: 'POST', url: '/users/alice/disconnect', headers })
  t.equal(empty.statusCode, 202, 'no body at all is an empty body')
  t.same(empty.json(), { user: 'alice' })
})
