// Route tests of routes/health.ts: liveness, readiness, and readiness during shutdown.
import t from 'tap'
import { buildTestApp, injectClient, upgradeStatus } from '../helpers/inject.js'

t.test('live and ready while serving', async (t) => {
  const app = await buildTestApp(t)
  const live = await app.inject('/health/live')
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'ok' })
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok' })
})

t.test('ready is 503 naming the failing check when the broker is unhealthy', async (t) => {
  const app = await buildTestApp(t)
  app.broker.health = () => ({ ok: false, check: 'redis', reason: 'probe stale' })
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 'unavailable', check: 'redis', reason: 'probe stale' })
  t.equal((await app.inject('/health/live')).statusCode, 200, 'the process is still alive')
})

t.test('ready is 503 with check "shutdown" from the moment the drain starts', async (t) => {
  const app = await buildTestApp(t, { SHUTDOWN_GRACE_MS: '2000' })
  const client = await injectClient(app, '/ws?name=alice')
  await client.next((f) => f.type === 'welcome', 'welcome')
  const drained = app.connections.drain()
  t.equal(app.connections.draining, true)
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 'unavailable', check: 'shutdown' })
  t.equal(await upgradeStatus(app, '/ws?name=bob'), 503, 'new upgrades are refused')
  t.equal((await app.inject('/health/live')).statusCode, 200, 'live still answers')
  const closed = await client.waitClosed()
  t.equal(closed.code, 1001, 'open connections are closed with 1001')
  await drained
  t.equal((await app.inject('/health/ready')).statusCode, 503, 'and stays 503 after the drain')
  t.equal(app.connections.size, 0)
})
