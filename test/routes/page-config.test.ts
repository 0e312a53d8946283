// Route tests of routes/page-config.ts: GET /config.json gives the page the
// server's own limits and rules, never a cached copy.
import t from 'tap'
import { ROOM_PATTERN, ROOM_RULE } from '../../lib/frames.js'
import { buildTestApp } from '../helpers/inject.js'

t.test('GET /config.json: the limits the page checks input against', async (t) => {
  const app = await buildTestApp(t)
  const response = await app.inject('/config.json')
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^application\/json/)
  t.equal(response.headers['cache-control'], 'no-cache')
  t.same(response.json(), {
    maxTextLength: 4096,
    maxNameLength: 32,
    roomPattern: ROOM_PATTERN.source,
    roomRule: ROOM_RULE,
    policies: { default: { join: 'anyone', send: 'members', presence: true, signals: true }, namespaces: {} }
  })
  const pattern = new RegExp(response.json().roomPattern)
  t.ok(pattern.test('team.dev:ops-2'), 'the pattern as served accepts a valid room')
  t.notOk(pattern.test('has space'), 'and refuses an invalid one')
  t.notOk(pattern.test('x'.repeat(65)), 'anchored: a long id is refused whole')
})

t.test('maxTextLength follows MAX_TEXT_LENGTH', async (t) => {
  const app = await buildTestApp(t, { MAX_TEXT_LENGTH: '10' })
  t.equal((await app.inject('/config.json')).json().maxTextLength, 10)
})
