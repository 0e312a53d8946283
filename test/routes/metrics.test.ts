// Route tests of routes/metrics.ts: the Prometheus text, and the chat_*
// counters moving with what happens on the node.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from '../helpers/inject.js'
import { startServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'
import { waitFor } from '../helpers/wait.js'

/** One sample of `name` whose labels include `labels`, from a fresh scrape. */
async function sample (app: FastifyInstance, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const response = await app.inject('/metrics')
  for (const line of response.body.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]))
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3])
  }
  return undefined
}

t.test('GET /metrics is Prometheus text with the chat_* metrics', async (t) => {
  const app = await buildTestApp(t)
  const response = await app.inject('/metrics')
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  for (const name of [
    'chat_connections', 'chat_rooms', 'chat_messages_in_total', 'chat_messages_out_total',
    'chat_errors_total', 'chat_slow_consumer_closes_total', 'chat_rate_limited_frames_total',
    'chat_heartbeat_terminations_total', 'chat_signals_in_total', 'chat_signals_out_total'
  ]) {
    t.match(response.body, new RegExp(`^# TYPE ${name} (counter|gauge)$`, 'm'), `${name} is declared`)
  }
  t.match(response.body, /^# TYPE chat_connections gauge$/m)
  t.match(response.body, /^# TYPE chat_messages_in_total counter$/m)
  t.match(response.body, /^process_cpu_user_seconds_total\{node="test-node"\} /m, 'default process metrics, labelled with the node')
  t.equal(await sample(app, 'chat_messages_in_total', { node: 'test-node' }), 0)
  for (const code of ['invalid_frame', 'not_joined', 'rate_limited', 'too_many_rooms', 'unavailable']) {
    t.equal(await sample(app, 'chat_errors_total', { code }), 0, `errors{code="${code}"} starts at 0`)
  }
})

t.test('counters move with traffic, and scraping twice does not double them', async (t) => {
  // Real sockets: a close started by an injectWS client never reaches the server.
  const { app, wsUrl } = await startServer(t)
  const alice = await TestClient.connect(`${wsUrl}?name=alice`)
  const bob = await TestClient.connect(`${wsUrl}?name=bob`)
  t.teardown(() => { alice.close(); bob.close() })
  t.equal(await sample(app, 'chat_connections'), 2)

  alice.send('not json')
  alice.send({ type: 'send', room: 'nowhere', text: 'x', ref: 'nj' })
  await alice.next((f) => f.type === 'error' && f.ref === 'nj', 'not_joined')
  t.equal(await sample(app, 'chat_errors_total', { code: 'invalid_frame' }), 1)
  t.equal(await sample(app, 'chat_errors_total', { code: 'not_joined' }), 1)
  t.equal(await sample(app, 'chat_errors_total', { code: 'invalid_frame' }), 1, 'a second scrape reports the same count')

  await alice.join('lobby')
  await bob.join('lobby')
  t.equal(await sample(app, 'chat_rooms'), 1)
  alice.send({ type: 'send', room: 'lobby', text: 'hi', ref: 'a1' })
  await alice.next((f) => f.type === 'ack', 'ack')
  await bob.next((f) => f.type === 'message', 'message to bob')
  t.equal(await sample(app, 'chat_messages_in_total'), 1)
  t.equal(await sample(app, 'chat_messages_out_total'), 2, 'one message frame per member')

  await app.inject({ method: 'POST', url: '/rooms/lobby/broadcast', headers: { authorization: `Bearer ${app.config.broadcastToken}` }, payload: { text: 'from http' } })
  await bob.next((f) => f.type === 'message' && f.text === 'from http', 'broadcast to bob')
  t.equal(await sample(app, 'chat_messages_in_total'), 2, 'HTTP broadcasts count as messages in')
  t.equal(await sample(app, 'chat_messages_out_total'), 4)

  alice.close()
  await alice.waitClosed()
  await waitFor(() => app.connections.size === 1, 'the server forgets alice')
  t.equal(await sample(app, 'chat_connections'), 1, 'the gauge follows closes')
})
