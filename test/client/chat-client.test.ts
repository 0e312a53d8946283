// The browser protocol client (public/chat-client.js), run in Node with the
// `ws` package: against the real server over real sockets, and against a
// scripted socket for what a real server cannot be made to do on cue.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { ChatClient, ChatError } from '../../public/chat-client.js'
import type { ChatClientEventName, ChatClientEvents, ChatClientOptions, MessageFrame, SocketLike } from '../../public/chat-client.js'
import { startServer } from '../helpers/server.js'
import { sleep, waitFor } from '../helpers/wait.js'

const TIMEOUT_MS = 5000

/** The next `type` event of `client` that matches; fails after `timeoutMs`. */
function nextEvent<K extends ChatClientEventName> (
  client: ChatClient,
  type: K,
  match: (payload: ChatClientEvents[K]) => boolean = () => true,
  timeoutMs = TIMEOUT_MS
): Promise<ChatClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a ${type} event`))
    }, timeoutMs)
    const off = client.on(type, (payload) => {
      if (!match(payload)) return
      clearTimeout(timer)
      off()
      resolve(payload)
    })
  })
}

/** Rejects a promise that has not settled after `timeoutMs`. */
async function within<T> (promise: Promise<T>, what: string, timeoutMs = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** A ChatClient over `ws` that records every frame it sends; closed in teardown. */
function makeClient (tt: Test, options: Omit<ChatClientOptions, 'WebSocket'>) {
  const sent: Array<Record<string, unknown>> = []
  class RecordingSocket extends WebSocket {
    override send (data: string): void {
      sent.push(JSON.parse(data) as Record<string, unknown>)
      super.send(data)
    }
  }
  const client = new ChatClient({ ...options, WebSocket: RecordingSocket })
  const messages: MessageFrame[] = []
  client.on('message', (frame) => messages.push(frame))
  tt.teardown(() => client.close())
  return { client, sent, messages }
}

async function online (client: ChatClient): Promise<void> {
  const welcomed = nextEvent(client, 'welcome')
  client.connect()
  await welcomed
}

t.test('real server', async (t) => {
  const server = await startServer(t, { PRESENCE_BATCH_MS: '10' })

  t.test('connects and is welcomed', async (t) => {
    const { client } = makeClient(t, { url: server.wsUrl, name: 'alice' })
    const states: string[] = []
    client.on('state', (state) => states.push(state.state))
    const welcome = nextEvent(client, 'welcome')
    client.connect()
    t.match(await welcome, { type: 'welcome', name: 'alice', node: 'test-node', id: String })
    t.same(states, ['connecting', 'online'])
    t.equal(client.welcome?.name, 'alice')
  })

  t.test('a client without a name is given a guest name', async (t) => {
    const { client } = makeClient(t, { url: server.wsUrl })
    await online(client)
    t.match(client.welcome?.name, /^guest-[0-9a-f]{4}$/)
  })

  t.test('joins, sends, and is acknowledged', async (t) => {
    const { client, sent, messages } = makeClient(t, { url: server.wsUrl, name: 'alice' })
    await online(client)
    const joined = await within(client.join('client.basic'), 'joined')
    t.same(joined, { type: 'joined', room: 'client.basic', members: ['alice'], recovered: true })
    t.ok(client.isJoined('client.basic'))
    const { id } = await within(client.send('client.basic', 'hello'), 'ack')
    await waitFor(() => messages.length === 1, 'the message')
    t.match(messages[0], { room: 'client.basic', id, from: 'alice', text: 'hello', ts: Number })
    t.equal(client.lastMessageId('client.basic'), id)
    // A first join has nothing to resume from: `since` is left out, not null.
    const join = sent.find((frame) => frame.type === 'join')
    t.notOk(join !== undefined && 'since' in join, 'no since on a first join')
    const refs = sent.map((frame) => frame.ref)
    t.equal(new Set(refs).size, refs.length, 'every frame has its own ref')
    t.notOk(sent.some((frame) => Object.values(frame).includes(null)), 'no null field is ever sent')
  })

  t.test('surfaces error codes and stays connected', async (t) => {
    const { client } = makeClient(t, { url: server.wsUrl, name: 'alice' })
    await online(client)
    await within(client.join('client.errors'), 'joined')

    const tooLong = await within(client.send('client.errors', 'x'.repeat(4097)).then(
      () => undefined, (error: unknown) => error), 'refusal')
    t.ok(tooLong instanceof ChatError, 'a ChatError')
    t.match(tooLong, { code: 'invalid_frame', message: /text/, room: 'client.errors' })

    const notJoined = await within(client.send('client.elsewhere', 'hi').then(() => undefined, (error: unknown) => error), 'refusal')
    t.match(notJoined, { code: 'not_joined' })

    await t.rejects(within(client.join('bad room!'), 'refusal'), { code: 'invalid_frame' })
    t.notOk(client.rooms().includes('bad room!'), 'a refused room is dropped')

    t.equal(client.state.state, 'online')
    t.ok(await within(client.send('client.errors', 'still here'), 'ack'))
  })

  t.test('resumes with since after the server drops the socket: no loss, no duplicate', async (t) => {
    const room = 'client.resume'
    // A long backoff holds the client offline while messages are posted;
    // retryNow() then ends the wait.
    const alice = makeClient(t, { url: server.wsUrl, name: 'alice', backoff: { baseMs: 60_000, maxMs: 60_000 }, random: () => 1 })
    const bob = makeClient(t, { url: server.wsUrl, name: 'bob' })
    await online(alice.client)
    await online(bob.client)
    await within(alice.client.join(room), 'alice joined')
    await within(bob.client.join(room), 'bob joined')

    const before: string[] = []
    for (const text of ['one', 'two', 'three']) before.push((await within(bob.client.send(room, text), 'ack')).id)
    await waitFor(() => alice.messages.length === 3, 'alice has three messages')

    const reconnecting = nextEvent(alice.client, 'state', (state) => state.state === 'reconnecting')
    const connection = [...server.app.connections].find((c) => c.id === alice.client.welcome?.id)
    t.ok(connection, 'the server-side connection of alice')
    connection?.terminate()
    const state = await reconnecting
    t.match(state, { state: 'reconnecting', delayMs: 60_000, attempt: 1, code: 1006 })

    // A send while offline fails at once rather than waiting for the socket.
    await t.rejects(alice.client.send(room, 'lost?'), { code: 'disconnected' })

    const during: string[] = []
    for (const text of ['four', 'five', 'six']) during.push((await within(bob.client.send(room, text), 'ack')).id)

    const failed: string[] = []
    alice.client.on('recovery-failed', ({ room }) => failed.push(room))
    const rejoined = nextEvent(alice.client, 'joined', (frame) => frame.room === room)
    const joinsBefore = alice.sent.filter((frame) => frame.type === 'join').length
    alice.client.retryNow()
    const again = await rejoined
    t.match(again, { room, recovered: true })
    t.same([...again.members].sort(), ['alice', 'bob'])
    const rejoin = alice.sent.filter((frame) => frame.type === 'join')[joinsBefore]
    t.match(rejoin, { type: 'join', room, since: before[2] }, 're-joined after the last message seen')

    const after = (await within(bob.client.send(room, 'seven'), 'ack')).id
    await waitFor(() => alice.messages.at(-1)?.id === after, 'alice has the live message')
    t.same(alice.messages.map((m) => m.id), [...before, ...during, after], 'every message once, in order')
    t.same(alice.messages.map((m) => m.text), ['one', 'two', 'three', 'four', 'five', 'six', 'seven'])
    t.same(failed, [])
  })

  t.test('counts members per name from joined and presence', async (t) => {
    const room = 'client.presence'
    const alice = makeClient(t, { url: server.wsUrl, name: 'alice' })
    const bob1 = makeClient(t, { url: server.wsUrl, name: 'bob' })
    const bob2 = makeClient(t, { url: server.wsUrl, name: 'bob' })
    await online(alice.client)
    await within(alice.client.join(room), 'alice joined')
    t.same([...alice.client.members(room)], [['alice', 1]])

    for (const bob of [bob1, bob2]) {
      await online(bob.client)
      await within(bob.client.join(room), 'bob joined')
    }
    await waitFor(() => alice.client.members(room).get('bob') === 2, 'bob twice')
    t.same(Object.fromEntries(alice.client.members(room)), { alice: 1, bob: 2 })
    // The second bob learned of everyone from `joined`, itself included.
    t.same(Object.fromEntries(bob2.client.members(room)), { alice: 1, bob: 2 })

    const presence = nextEvent(alice.client, 'presence', (frame) => frame.left.includes('bob'))
    bob1.client.close()
    await presence
    t.same(Object.fromEntries(alice.client.members(room)), { alice: 1, bob: 1 })

    await within(bob2.client.leave(room), 'left')
    await waitFor(() => !alice.client.members(room).has('bob'), 'bob gone')
    t.same(Object.fromEntries(alice.client.members(room)), { alice: 1 })
  })

  t.test('close() stops for good and fails what is pending', async (t) => {
    const { client } = makeClient(t, { url: server.wsUrl, name: 'alice' })
    await online(client)
    await within(client.join('client.close'), 'joined')
    const states: string[] = []
    client.on('state', (state) => states.push(state.state))
    const pending = client.send('client.close', 'maybe')
    client.close()
    await t.rejects(pending, { code: 'disconnected' })
    await sleep(100)
    t.same(states, ['closed'], 'no reconnect after close()')
  })
})

// -- scripted socket ----------------------------------------------------------

/** A socket the test drives: it plays the server's side frame by frame. */
class ScriptedSocket implements SocketLike {
  static all: ScriptedSocket[] = []
  readyState = 0
  readonly sent: Array<Record<string, unknown>> = []
  private readonly listeners = new Map<string, Array<(event: object) => void>>()

  constructor (readonly url: string) {
    ScriptedSocket.all.push(this)
  }

  static get last (): ScriptedSocket {
    const socket = ScriptedSocket.all.at(-1)
    if (socket === undefined) throw new Error('no socket opened')
    return socket
  }

  addEventListener (type: string, listener: (event: object) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener])
  }

  send (data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>)
  }

  close (code = 1000, reason = ''): void {
    if (this.readyState === 3) return
    this.readyState = 3
    queueMicrotask(() => this.dispatch('close', { code, reason }))
  }

  /** Opens and sends the welcome, as the server does. */
  accept (name = 'alice'): void {
    this.readyState = 1
    this.dispatch('open', {})
    this.deliver({ type: 'welcome', id: `c${ScriptedSocket.all.length}`, name, node: 'n1' })
  }

  deliver (frame: Record<string, unknown>): void {
    this.dispatch('message', { data: JSON.stringify(frame) })
  }

  drop (code = 1006, reason = ''): void {
    this.readyState = 3
    this.dispatch('close', { code, reason })
  }

  private dispatch (type: string, event: object): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event)
  }
}

function scripted (tt: Test, options: Partial<ChatClientOptions> = {}) {
  ScriptedSocket.all = []
  const client = new ChatClient({ url: 'ws://chat.test/ws', name: 'alice', WebSocket: ScriptedSocket, ...options })
  const messages: MessageFrame[] = []
  client.on('message', (frame) => messages.push(frame))
  tt.teardown(() => client.close())
  return { client, messages }
}

t.test('scripted socket', async (t) => {
  t.test('puts the name in the query and omits it when absent', async (t) => {
    scripted(t, { name: 'a b&c' }).client.connect()
    t.equal(new URL(ScriptedSocket.last.url).searchParams.get('name'), 'a b&c')
    const { client } = scripted(t, { name: undefined })
    client.connect()
    t.notOk(new URL(ScriptedSocket.last.url).searchParams.has('name'))
  })

  t.test('backs off exponentially with full jitter; a welcome resets it', async (t) => {
    const { client } = scripted(t, { backoff: { baseMs: 4, maxMs: 16 }, random: () => 0.5 })
    const delays: number[] = []
    client.on('state', (state) => { if (state.state === 'reconnecting') delays.push(state.delayMs) })
    client.connect()
    for (let i = 0; i < 5; i++) {
      const before = ScriptedSocket.all.length
      ScriptedSocket.last.drop()
      await waitFor(() => ScriptedSocket.all.length > before, `retry ${i + 1}`)
    }
    // 0.5 × min(16, 4 × 2^attempt)
    t.same(delays, [2, 4, 8, 8, 8])
    ScriptedSocket.last.accept()
    ScriptedSocket.last.drop()
    t.equal(delays.at(-1), 2, 'back to the base after a welcome')
  })

  t.test('uses the whole jitter range', async (t) => {
    let next = 0
    const draws = [0, 0.999]
    const { client } = scripted(t, { backoff: { baseMs: 1000, maxMs: 1000 }, random: () => draws[next++] ?? 0 })
    const delays: number[] = []
    client.on('state', (state) => { if (state.state === 'reconnecting') delays.push(state.delayMs) })
    client.connect()
    ScriptedSocket.last.drop()
    await waitFor(() => ScriptedSocket.all.length === 2, 'the immediate retry')
    ScriptedSocket.last.drop()
    t.same(delays, [0, 999])
  })

  t.test('a policy close (1008) stops and reports', async (t) => {
    const { client } = scripted(t)
    client.connect()
    ScriptedSocket.last.accept()
    const joining = client.join('lobby')
    ScriptedSocket.last.drop(1008, 'rate limit abuse')
    t.same(client.state, { state: 'closed', code: 1008, reason: 'rate limit abuse' })
    await t.rejects(joining, { code: 'disconnected' })
    await sleep(20)
    t.equal(ScriptedSocket.all.length, 1, 'no reconnect')
  })

  t.test('re-joins every room with since, drops duplicates, reports a failed recovery', async (t) => {
    const { client, messages } = scripted(t, { random: () => 0 })
    const failed: string[] = []
    client.on('recovery-failed', ({ room }) => failed.push(room))
    client.connect()
    const first = ScriptedSocket.last
    first.accept()
    client.join('a')
    client.join('b')
    t.same(first.sent.map((f) => [f.type, f.room, 'since' in f]), [['join', 'a', false], ['join', 'b', false]])
    first.deliver({ type: 'joined', room: 'a', members: ['alice'], recovered: true })
    first.deliver({ type: 'joined', room: 'b', members: ['alice'], recovered: true })
    first.deliver({ type: 'message', room: 'a', id: 'e-1', from: 'bob', text: '1', ts: 1 })
    first.deliver({ type: 'message', room: 'a', id: 'e-2', from: 'bob', text: '2', ts: 2 })
    first.drop(1001, 'server shutting down')

    await waitFor(() => ScriptedSocket.all.length === 2, 'reconnect')
    const second = ScriptedSocket.last
    t.same(second.sent, [], 'nothing is sent before the welcome')
    second.accept()
    t.match(second.sent, [{ type: 'join', room: 'a', since: 'e-2' }, { type: 'join', room: 'b' }])
    t.notOk('since' in (second.sent[1] ?? {}), 'no since for a room with no message seen')
    second.deliver({ type: 'joined', room: 'a', members: ['alice'], recovered: false })
    // Unrecovered: the recent history comes again, overlapping what was seen.
    for (const id of ['e-1', 'e-2', 'e-3']) second.deliver({ type: 'message', room: 'a', id, from: 'bob', text: id, ts: 3 })
    second.deliver({ type: 'joined', room: 'b', members: ['alice'], recovered: true })
    t.same(messages.map((m) => m.id), ['e-1', 'e-2', 'e-3'])
    t.same(failed, ['a'])
    t.equal(client.lastMessageId('a'), 'e-3')
  })

  t.test('keeps a bounded window of ids per room', async (t) => {
    const { client, messages } = scripted(t, { dedupeWindow: 2 })
    client.connect()
    ScriptedSocket.last.accept()
    client.join('a')
    const socket = ScriptedSocket.last
    socket.deliver({ type: 'joined', room: 'a', members: ['alice'], recovered: true })
    for (const id of ['1', '2', '3', '3', '1']) socket.deliver({ type: 'message', room: 'a', id, from: 'bob', text: id, ts: 1 })
    // '1' fell out of the two-id window, so it is no longer recognised.
    t.same(messages.map((m) => m.id), ['1', '2', '3', '1'])
  })

  t.test('matches ack and error to their send by ref', async (t) => {
    const { client } = scripted(t)
    const errors: unknown[] = []
    client.on('error', (error) => errors.push(error))
    client.connect()
    const socket = ScriptedSocket.last
    socket.accept()
    const first = client.send('a', 'one')
    const second = client.send('a', 'two')
    const [ref1, ref2] = socket.sent.map((f) => f.ref)
    t.not(ref1, ref2)
    socket.deliver({ type: 'error', code: 'rate_limited', message: 'slow down', ref: ref2 })
    socket.deliver({ type: 'ack', ref: ref1, id: 'x-1' })
    socket.deliver({ type: 'error', code: 'invalid_frame', message: 'frame is not valid JSON' })
    t.same(await first, { id: 'x-1' })
    await t.rejects(second, { code: 'rate_limited', message: 'slow down' })
    t.same(errors, [{ code: 'invalid_frame', message: 'frame is not valid JSON' }], 'an error with no ref is an event')
  })

  t.test('retries a join refused as unavailable', async (t) => {
    const { client } = scripted(t, { random: () => 0 })
    const errors: Array<ChatClientEvents['error']> = []
    client.on('error', (error) => errors.push(error))
    client.connect()
    const socket = ScriptedSocket.last
    socket.accept()
    const joined = client.join('a')
    socket.deliver({ type: 'error', code: 'unavailable', message: 'broker down', ref: socket.sent[0]?.ref })
    await waitFor(() => socket.sent.length === 2, 'the second join')
    t.match(errors, [{ code: 'unavailable', room: 'a', willRetry: true }])
    socket.deliver({ type: 'joined', room: 'a', members: ['alice'], recovered: true })
    t.match(await joined, { room: 'a' })
  })

  t.test('ignores frames outside the contract', async (t) => {
    const { client, messages } = scripted(t)
    client.connect()
    const socket = ScriptedSocket.last
    socket.accept()
    client.join('a')
    socket.deliver({ type: 'joined', room: 'a', members: ['alice'], recovered: true })
    socket.deliver({ type: 'message', room: 'a', id: 7, from: 'bob', text: 'bad id', ts: 1 })
    socket.deliver({ type: 'message', room: 'b', id: 'x', from: 'bob', text: 'not joined', ts: 1 })
    socket.deliver({ type: 'surprise' })
    t.same(messages, [])
    t.equal(client.state.state, 'online')
  })

  t.test('setName reconnects under the new name and keeps the rooms', async (t) => {
    const { client } = scripted(t)
    client.connect()
    ScriptedSocket.last.accept()
    client.join('a')
    ScriptedSocket.last.deliver({ type: 'joined', room: 'a', members: ['alice'], recovered: true })
    client.setName('alicia')
    t.equal(ScriptedSocket.all.length, 2)
    t.equal(new URL(ScriptedSocket.last.url).searchParams.get('name'), 'alicia')
    ScriptedSocket.last.accept('alicia')
    t.match(ScriptedSocket.last.sent, [{ type: 'join', room: 'a' }])
  })

  t.test('signals: sent with a ref, settled by ack or error; relayed signals of joined rooms are events', async (t) => {
    const { client } = scripted(t)
    const signals: Array<ChatClientEvents['signal']> = []
    client.on('signal', (frame) => signals.push(frame))
    client.connect()
    const socket = ScriptedSocket.last
    socket.accept()
    client.join('a')
    socket.deliver({ type: 'joined', room: 'a', members: ['alice', 'bob'], recovered: true })
    const relayed = client.signal('a', 'typing')
    const refused = client.signal('news', 'typing')
    const [first, second] = socket.sent.filter((f) => f.type === 'signal')
    t.match(first, { type: 'signal', room: 'a', event: 'typing', ref: String })
    socket.deliver({ type: 'ack', ref: first?.ref })
    socket.deliver({ type: 'error', code: 'forbidden', message: 'read-only room', ref: second?.ref })
    await relayed
    const error = await refused.then(() => undefined, (reason: unknown) => reason)
    t.ok(error instanceof ChatError)
    t.match(error, { code: 'forbidden', room: 'news', operation: 'signal' }, 'the refusal knows what it refused, by ref')

    socket.deliver({ type: 'signal', room: 'a', event: 'typing', from: 'Bob', user: 'bob' })
    socket.deliver({ type: 'signal', room: 'a', event: 'typing', from: 'guest-1' })
    socket.deliver({ type: 'signal', room: 'elsewhere', event: 'typing', from: 'x' })
    socket.deliver({ type: 'signal', room: 'a', from: 'no event' })
    t.same(signals, [
      { type: 'signal', room: 'a', event: 'typing', from: 'Bob', user: 'bob' },
      { type: 'signal', room: 'a', event: 'typing', from: 'guest-1' }
    ], 'only well-formed signals of joined rooms')

    const pending = client.signal('a', 'typing')
    socket.drop()
    await t.rejects(pending, { code: 'disconnected', operation: 'signal' })
    await t.rejects(client.signal('a', 'typing'), { code: 'disconnected' }, 'offline: refused at once')
  })

  t.test('a refused join and a refused send carry their operation', async (t) => {
    const { client } = scripted(t)
    client.connect()
    const socket = ScriptedSocket.last
    socket.accept()
    const join = client.join('support:42')
    socket.deliver({ type: 'error', code: 'forbidden', message: 'not granted', ref: socket.sent[0]?.ref })
    await t.rejects(join, { code: 'forbidden', room: 'support:42', operation: 'join' })
    t.same(client.rooms(), [], 'the room is dropped')
    const send = client.send('news', 'hi')
    socket.deliver({ type: 'error', code: 'forbidden', message: 'read-only', ref: socket.sent[1]?.ref })
    await t.rejects(send, { code: 'forbidden', operation: 'send' })
  })

  t.test('message data is passed through as it came; arrays and scalars are not data', async (t) => {
    const { client, messages } = scripted(t)
    client.connect()
    const socket = ScriptedSocket.last
    socket.accept()
    client.join('a')
    socket.deliver({ type: 'joined', room: 'a', members: ['alice'], recovered: true })
    const data = { order: { id: 17, lines: [1, 2.5, 'x', null, true] }, ünï: { nested: {} } }
    socket.deliver({ type: 'message', room: 'a', id: 'm1', from: 'bob', text: 'with data', ts: 1, data })
    socket.deliver({ type: 'message', room: 'a', id: 'm2', from: 'bob', text: 'array', ts: 2, data: [1] })
    socket.deliver({ type: 'message', room: 'a', id: 'm3', from: 'bob', text: 'none', ts: 3 })
    t.same(messages.map((m) => m.data), [data, undefined, undefined])
    t.notOk('data' in (messages[2] ?? {}), 'no data: no field')
  })

  t.test('a left the client did not ask for drops the room; one it asked for does not say so', async (t) => {
    const { client } = scripted(t)
    const lefts: Array<ChatClientEvents['left']> = []
    client.on('left', (event) => lefts.push(event))
    client.connect()
    const socket = ScriptedSocket.last
    socket.accept()
    client.join('a')
    client.join('b')
    socket.deliver({ type: 'joined', room: 'a', members: ['alice'], recovered: true })
    socket.deliver({ type: 'joined', room: 'b', members: ['alice'], recovered: true })
    const waiting = client.join('c')
    socket.deliver({ type: 'left', room: 'a' })
    socket.deliver({ type: 'left', room: 'c' })
    socket.deliver({ type: 'left', room: 'unknown' })
    await t.rejects(waiting, { code: 'forbidden', room: 'c', operation: 'join' }, 'a join still waiting learns it was refused')
    const leaving = client.leave('b')
    socket.deliver({ type: 'left', room: 'b' })
    await leaving
    t.same(lefts, [{ type: 'left', room: 'a', byServer: true }, { type: 'left', room: 'c', byServer: true }, { type: 'left', room: 'b' }])
    t.same(client.rooms(), [], 'none is kept, so none is joined again on the next connection')
  })
})
