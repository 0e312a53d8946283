// The client module's tokens (public/chat-client.js `getToken`) against the
// real server over real sockets: the token as a subprotocol, a refresh
// before expiry, a new token after 4001, and a full stop on 4003.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { ChatClient, ChatError } from '../../public/chat-client.js'
import type { ChatClientOptions, ConnectionState, WelcomeFrame } from '../../public/chat-client.js'
import { broadcast } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'
import { hsToken, nowS, TEST_JWT_SECRET } from '../helpers/tokens.js'
import { sleep, waitFor } from '../helpers/wait.js'

/** A client over `ws` that records the URL and subprotocols of every socket it opens. */
function makeClient (t: Test, options: Omit<ChatClientOptions, 'WebSocket'>) {
  const opened: Array<{ url: string, protocols: string[] | undefined }> = []
  class RecordingSocket extends WebSocket {
    constructor (url: string, protocols?: string[]) {
      super(url, protocols)
      opened.push({ url, protocols })
    }
  }
  const client = new ChatClient({ ...options, WebSocket: RecordingSocket })
  const welcomes: WelcomeFrame[] = []
  const states: ConnectionState[] = []
  client.on('welcome', (frame) => welcomes.push(frame))
  client.on('state', (state) => states.push(state))
  t.teardown(() => client.close())
  return { client, opened, welcomes, states }
}

t.test('getToken on connect: the token goes as a subprotocol, never in the URL', async (t) => {
  const server = await startServer(t, { AUTH_JWT_SECRET: TEST_JWT_SECRET })
  let calls = 0
  const { client, opened, welcomes } = makeClient(t, {
    url: server.wsUrl,
    name: 'ignored',
    getToken: async () => { calls++; return hsToken({ sub: 'amy', name: 'Amy' }) }
  })
  client.connect()
  await waitFor(() => welcomes.length === 1, 'welcome')
  t.match(welcomes[0], { user: 'amy', name: 'Amy' })
  t.equal(calls, 1)
  t.notMatch(opened[0]?.url ?? '', /token/)
  t.match(opened[0]?.protocols, ['chat', /^bearer\.eyJ/])
  const texts: Array<Record<string, unknown>> = []
  client.on('message', (frame) => texts.push({ ...frame }))
  await client.join('r')
  await client.send('r', 'mine')
  await broadcast(server.url, 'r', 'theirs', 'Amy')
  await waitFor(() => texts.length === 2, 'both messages')
  t.match(texts[0], { from: 'Amy', user: 'amy' }, 'the client keeps user')
  t.notOk('api' in (texts[0] ?? {}))
  t.match(texts[1], { from: 'Amy', api: true }, 'and api: the API is told apart from a user of the same name')
  t.notOk('user' in (texts[1] ?? {}))
})

t.test('refresh before expiry keeps the connection past exp', async (t) => {
  const server = await startServer(t, { AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_CLOCK_TOLERANCE_S: '0' })
  let calls = 0
  const { client, welcomes, states } = makeClient(t, {
    url: server.wsUrl,
    random: () => 0,
    getToken: () => { calls++; return hsToken({ sub: 'ben', exp: nowS() + 2 }) }
  })
  const firstExp = nowS() + 2
  client.connect()
  await waitFor(() => welcomes.length === 1, 'welcome')
  await sleep(Math.max(0, (firstExp + 1) * 1000 - Date.now()))
  t.ok(calls >= 2, `getToken was asked again before expiry (${calls} calls)`)
  t.equal(welcomes.length, 1, 'no reconnect: the refresh kept the connection')
  t.notOk(states.some((s) => s.state === 'reconnecting'))
})

t.test('4001: a new token and a resume with since; 4003: stop, unauthorized, no loop', async (t) => {
  const server = await startServer(t, { AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_CLOCK_TOLERANCE_S: '0' })
  let calls = 0
  const { client, welcomes } = makeClient(t, {
    url: server.wsUrl,
    backoff: { baseMs: 10, maxMs: 50 },
    getToken: async () => {
      calls++
      // The first token runs out; the refresh cannot get one; the reconnect gets a good one.
      if (calls === 1) return hsToken({ sub: 'cleo', exp: nowS() + 1 })
      if (calls === 2) throw new Error('token endpoint down')
      return hsToken({ sub: 'cleo', exp: nowS() + 600 })
    }
  })
  client.connect()
  await waitFor(() => welcomes.length === 1, 'welcome')
  await client.join('room')
  await broadcast(server.url, 'room', 'before')
  await waitFor(() => client.lastMessageId('room') !== undefined, 'the first message')
  await waitFor(() => welcomes.length === 2, 'a reconnect after 4001', 5000)
  await client.join('room')
  t.equal(calls, 3)
  const seen: string[] = []
  client.on('message', (frame) => seen.push(frame.text))
  await broadcast(server.url, 'room', 'after')
  await waitFor(() => seen.includes('after'), 'messages flow again')

  const refused = makeClient(t, { url: server.wsUrl, backoff: { baseMs: 10, maxMs: 50 }, getToken: () => hsToken({ sub: 'dan' }, 'a-wrong-secret-0123456789abcdef-0123456789') })
  const join = refused.client.join('room')
  refused.client.connect()
  const error = await join.catch((err: unknown) => err)
  t.ok(error instanceof ChatError && error.code === 'unauthorized', 'the waiting join rejects with unauthorized')
  t.match(refused.client.state, { state: 'closed', code: 4003 })
  await sleep(300)
  t.equal(refused.opened.length, 1, 'no reconnect loop on a token that cannot work')
})
