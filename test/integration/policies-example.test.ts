// The example policy file of docs/protocol.md (deploy/namespaces.example.json)
// behaves as the docs say: a public lobby, support rooms granted per ticket,
// read-only announcement rooms fed by the HTTP API, personal inboxes.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { broadcast } from '../helpers/http.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { hsToken, TEST_JWT_SECRET } from '../helpers/tokens.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'namespaces.example.json')

async function open (t: Test, server: RunningServer, claims?: Record<string, unknown>): Promise<TestClient> {
  if (claims === undefined) return TestClient.open(t, server.wsUrl, 'visitor')
  const client = new TestClient(new WebSocket(server.wsUrl, ['chat', `bearer.${await hsToken(claims)}`]))
  t.teardown(() => client.socket.terminate())
  await client.next((frame) => frame.type === 'welcome', 'welcome')
  return client
}

let refs = 0

/** The reply to a frame: `joined` for a join, else what carries its ref. */
async function ask (client: TestClient, frame: Record<string, unknown>): Promise<Frame> {
  const ref = `x${++refs}`
  const from = client.frames.length
  client.send({ ...frame, ref })
  return client.next((reply) => reply.ref === ref || (frame.type === 'join' && reply.type === 'joined' && reply.room === frame.room), ref, from)
}

const tryJoin = async (client: TestClient, room: string) => {
  const reply = await ask(client, { type: 'join', room })
  return reply.type === 'joined' ? 'joined' : reply.code
}
const trySend = async (client: TestClient, room: string) => {
  const reply = await ask(client, { type: 'send', room, text: 'hello' })
  return reply.type === 'ack' ? 'ack' : reply.code
}

t.test('the documented example policy file, as a new user would try it', async (t) => {
  const server = await startServer(t, { AUTH_JWT_SECRET: TEST_JWT_SECRET, NAMESPACES_FILE: EXAMPLE })
  const visitor = await open(t, server)
  const agent = await open(t, server, { sub: 'agent-7', rooms: { 'support:*': ['join', 'send'] } })
  const customer = await open(t, server, { sub: 'alice', rooms: { 'support:1234': ['join', 'send'] } })

  t.test('lobby: anyone joins and talks', async (t) => {
    t.equal(await tryJoin(visitor, 'lobby'), 'joined')
    t.equal(await trySend(visitor, 'lobby'), 'ack')
  })

  t.test('support:<ticket>: only tokens granting the ticket (or support:*)', async (t) => {
    t.equal(await tryJoin(visitor, 'support:1234'), 'forbidden')
    t.equal(await tryJoin(customer, 'support:1234'), 'joined')
    t.equal(await tryJoin(customer, 'support:9999'), 'forbidden', 'another customer\'s ticket')
    t.equal(await tryJoin(agent, 'support:1234'), 'joined', 'the agent is granted every ticket')
    t.equal(await trySend(customer, 'support:1234'), 'ack')
    await agent.next((frame) => frame.type === 'message' && frame.room === 'support:1234' && frame.user === 'alice', 'the customer\'s message')
  })

  t.test('announce:<topic>: read-only, fed by the HTTP API, no presence', async (t) => {
    const joined = await ask(visitor, { type: 'join', room: 'announce:releases' })
    t.same(joined.members, [], 'no member list')
    t.equal(await trySend(visitor, 'announce:releases'), 'forbidden')
    t.equal(await tryJoin(agent, 'announce:releases'), 'joined')
    t.equal(await trySend(agent, 'announce:releases'), 'forbidden', 'not even with a token')
    await broadcast(server.url, 'announce:releases', 'v2 is out', 'release-bot')
    await visitor.next((frame) => frame.type === 'message' && frame.text === 'v2 is out', 'the announcement')
  })

  t.test('inbox:<user>: the owner alone reads it; the back office writes to it', async (t) => {
    t.equal(await tryJoin(customer, 'inbox:alice'), 'joined')
    t.equal(await tryJoin(agent, 'inbox:alice'), 'forbidden')
    t.equal(await tryJoin(visitor, 'inbox:alice'), 'forbidden')
    t.equal(await trySend(customer, 'inbox:alice'), 'forbidden', 'an inbox is written by the server')
    await broadcast(server.url, 'inbox:alice', 'your ticket 1234 was answered', 'helpdesk')
    await customer.next((frame) => frame.type === 'message' && frame.room === 'inbox:alice', 'the notification')
  })
})
