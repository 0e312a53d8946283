// Quick check that the helpers and the app work together; the full suites live beside it.
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'

t.test('welcome, join, send, ack', async (t) => {
  const server = await startServer(t)
  const client = await TestClient.connect(`${server.wsUrl}?name=alice`)
  t.teardown(() => client.close())
  const welcome = await client.next((f) => f.type === 'welcome', 'welcome')
  t.match(welcome, { name: 'alice', node: 'test-node' })
  const joined = await client.join('lobby')
  t.same(joined, { type: 'joined', room: 'lobby', members: ['alice'], recovered: true })
  client.send({ type: 'send', room: 'lobby', text: 'hi', ref: 'r1' })
  const ack = await client.next((f) => f.type === 'ack', 'ack')
  const message = await client.next((f) => f.type === 'message', 'message')
  t.equal(ack.id, message.id)
  t.match(message, { room: 'lobby', from: 'alice', text: 'hi' })
})
