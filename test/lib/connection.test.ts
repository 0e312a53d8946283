// Unit tests of lib/connection.ts with a fake socket and a real hub on the
// memory broker: frame handling, errors that keep the connection open, rate
// limiting, and the slow-consumer close.
import t, { type Test } from 'tap'
import { BrokerUnavailableError } from '../../lib/broker.js'
import { EventEmitter } from 'node:events'
import { Connection, type ConnectionOptions, type FrameStream, type Socket } from '../../lib/connection.js'
import { createFrameParser } from '../../lib/frames.js'
import { Hub } from '../../lib/hub.js'
import { RATE_LIMIT_STRIKES_BEFORE_CLOSE } from '../../lib/limits.js'
import { MemoryBroker } from '../../lib/memory-broker.js'
import { MemoryPresence } from '../../lib/memory-presence.js'
import { createStats } from '../../lib/stats.js'
import { WriteBatch } from '../../lib/write-batch.js'
import type { Frame } from '../helpers/ws-client.js'
import { payloadOf } from '../helpers/fake-member.js'

class FakeSocket implements Socket, FrameStream {
  readyState = 1
  bufferedAmount = 0
  corked = 0
  readonly sent: Buffer[] = []
  readonly closes: Array<{ code: number, reason: string }> = []
  terminated = 0
  pings = 0

  write (frame: Buffer): boolean {
    this.sent.push(frame)
    return true
  }

  cork (): void {
    this.corked++
  }

  uncork (): void {
    this.corked--
  }

  close (code: number, reason: string): void {
    this.closes.push({ code, reason })
  }

  terminate (): void {
    this.terminated++
  }

  ping (): void {
    this.pings++
  }

  get frames (): Frame[] {
    return this.sent.map((buffer) => JSON.parse(payloadOf(buffer)) as Frame)
  }

  last (): Frame | undefined {
    return this.frames.at(-1)
  }
}

async function setup (t: Test, options: { rateLimitPerSec?: number, rateLimitBurst?: number, sendQueueMaxBytes?: number, broker?: MemoryBroker, maxRooms?: number, extra?: Partial<ConnectionOptions> } = {}) {
  const broker = options.broker ?? new MemoryBroker({ historySize: 100, maxIdleRooms: 100 })
  const stats = createStats()
  const hub = new Hub({ broker, presence: new MemoryPresence(), stats, historyOnJoin: 10, historySize: 100, presenceBatchMs: 0, maxRoomsPerConnection: options.maxRooms ?? 5 })
  await hub.start()
  t.teardown(() => hub.close())
  const connect = (name: string) => {
    const socket = new FakeSocket()
    const connection = new Connection(`id-${name}`, name, socket, socket, {
      hub,
      stats,
      batch: new WriteBatch(),
      parse: createFrameParser(20),
      sendQueueMaxBytes: options.sendQueueMaxBytes ?? 1_000_000,
      rateLimitPerSec: options.rateLimitPerSec ?? 1000,
      rateLimitBurst: options.rateLimitBurst ?? 1000,
      ...options.extra
    })
    const receive = async (frame: unknown) => {
      connection.receive(Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame)), false)
      for (let i = 0; i < 20; i++) await Promise.resolve()
    }
    return { socket, connection, receive }
  }
  return { hub, stats, connect }
}

t.test('welcome, join, send with ack, leave', async (t) => {
  const { connect, hub } = await setup(t)
  const { socket, connection, receive } = connect('alice')
  connection.welcome('node-1')
  t.same(socket.last(), { type: 'welcome', id: 'id-alice', name: 'alice', node: 'node-1' })
  await receive({ type: 'join', room: 'r' })
  t.same(socket.last(), { type: 'joined', room: 'r', members: ['alice'], recovered: true })
  await receive({ type: 'send', room: 'r', text: 'hi', ref: 'k1' })
  const [message, ack] = socket.frames.slice(-2)
  t.match(message, { type: 'message', room: 'r', from: 'alice', text: 'hi' })
  t.same(ack, { type: 'ack', ref: 'k1', id: message?.id })
  const count = socket.sent.length
  await receive({ type: 'send', room: 'r', text: 'no ref' })
  t.equal(socket.sent.length, count + 1, 'without a ref there is no ack, only the message')
  await receive({ type: 'leave', room: 'r' })
  t.same(socket.last(), { type: 'left', room: 'r' })
  t.notOk(hub.isJoined(connection, 'r'))
})

t.test('refused frames get an error and the connection stays open', async (t) => {
  const { connect, stats } = await setup(t)
  const { socket, receive } = connect('alice')
  await receive('not json')
  t.match(socket.last(), { type: 'error', code: 'invalid_frame', message: 'frame is not valid JSON' })
  await receive({ type: 'send', room: 'r', text: '', ref: 'x' })
  t.match(socket.last(), { type: 'error', code: 'invalid_frame', ref: 'x', message: /text/ })
  await receive({ type: 'send', room: 'r', text: 'hi', ref: 'y' })
  t.match(socket.last(), { type: 'error', code: 'not_joined', ref: 'y', message: /join room "r"/ })
  await receive({ type: 'leave', room: 'r', ref: 'z' })
  t.match(socket.last(), { type: 'error', code: 'not_joined', ref: 'z' })
  t.same(socket.closes, [], 'never closed')
  t.equal(stats.errors.invalid_frame, 2)
  t.equal(stats.errors.not_joined, 2)
  await receive({ type: 'join', room: 'r' })
  t.match(socket.last(), { type: 'joined' }, 'and it still works')
})

t.test('too_many_rooms', async (t) => {
  const { connect, stats } = await setup(t, { maxRooms: 1 })
  const { socket, receive } = connect('alice')
  await receive({ type: 'join', room: 'a' })
  await receive({ type: 'join', room: 'b', ref: 'j2' })
  t.match(socket.last(), { type: 'error', code: 'too_many_rooms', ref: 'j2', message: /at most 1 rooms/ })
  t.equal(stats.errors.too_many_rooms, 1)
})

t.test('a binary frame closes with 1003', async (t) => {
  const { connect } = await setup(t)
  const { socket, connection } = connect('alice')
  connection.receive(Buffer.from('{"type":"join","room":"r"}'), true)
  t.match(socket.closes, [{ code: 1003 }])
  t.ok(connection.isClosing)
  connection.receive(Buffer.from('{"type":"join","room":"r"}'), false)
  t.equal(socket.sent.length, 0, 'frames after the close are ignored')
})

t.test('rate limiting: a burst, then rate_limited, then 1008 after repeated abuse', async (t) => {
  const { connect, stats } = await setup(t, { rateLimitPerSec: 1, rateLimitBurst: 3 })
  const { socket, connection, receive } = connect('alice')
  await receive({ type: 'join', room: 'r' })
  for (let i = 0; i < 3; i++) await receive({ type: 'send', room: 'r', text: `m${i}`, ref: `s${i}` })
  t.equal(socket.frames.filter((f) => f.type === 'ack').length, 3, 'the burst is accepted')
  await receive({ type: 'send', room: 'r', text: 'too fast', ref: 'fast' })
  t.match(socket.last(), { type: 'error', code: 'rate_limited', ref: 'fast', message: /at most 1 per second \(bursts of 3\)/ })
  t.equal(stats.rateLimitedFrames, 1)
  t.same(socket.closes, [])
  for (let i = 1; i < RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1; i++) await receive({ type: 'send', room: 'r', text: 'x' })
  t.same(socket.closes, [], `still open after ${RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1} strikes`)
  await receive({ type: 'send', room: 'r', text: 'x' })
  t.match(socket.closes, [{ code: 1008, reason: /rate limit/ }])
  t.ok(connection.isClosing)
  t.equal(stats.errors.rate_limited, RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1, 'the closing strike gets a close, not an error')
})

t.test('joins and leaves are not rate limited', async (t) => {
  const { connect } = await setup(t, { rateLimitPerSec: 1, rateLimitBurst: 1 })
  const { socket, receive } = connect('alice')
  for (let i = 0; i < 10; i++) {
    await receive({ type: 'join', room: 'r' })
    await receive({ type: 'leave', room: 'r' })
  }
  t.equal(socket.frames.filter((f) => f.type === 'error').length, 0)
})

t.test('a slow consumer is closed with 1013 and written to no more', async (t) => {
  const { connect, stats } = await setup(t, { sendQueueMaxBytes: 1024 })
  const { socket, connection } = connect('alice')
  connection.write(Buffer.from('{"type":"x"}'))
  t.same(socket.closes, [])
  socket.bufferedAmount = 1025
  connection.write(Buffer.from('{"type":"y"}'))
  t.match(socket.closes, [{ code: 1013, reason: /slow consumer/ }])
  t.equal(stats.slowConsumerCloses, 1)
  connection.write(Buffer.from('{"type":"z"}'))
  t.equal(socket.sent.length, 2, 'nothing written after the close')
  connection.close(1001, 'again')
  t.equal(socket.closes.length, 1, 'closed once')
})

t.test('closed() leaves every room; ping and terminate reach the socket', async (t) => {
  const { connect, hub } = await setup(t)
  const alice = connect('alice')
  const bob = connect('bob')
  await alice.receive({ type: 'join', room: 'a' })
  await alice.receive({ type: 'join', room: 'b' })
  await bob.receive({ type: 'join', room: 'a' })
  alice.connection.closed()
  t.notOk(hub.isJoined(alice.connection, 'a'))
  t.notOk(hub.isJoined(alice.connection, 'b'))
  t.same(bob.socket.last(), { type: 'presence', room: 'a', joined: [], left: ['alice'] })
  t.equal(hub.roomCount, 1)
  bob.connection.ping()
  t.equal(bob.socket.pings, 1)
  bob.connection.terminate()
  t.equal(bob.socket.terminated, 1)
  t.ok(bob.connection.isClosing)
})

t.test('a send the broker refuses gets unavailable and the connection stays open', async (t) => {
  const broker = new MemoryBroker({ historySize: 10, maxIdleRooms: 10 })
  const { connect, stats } = await setup(t, { broker })
  const { socket, receive } = connect('alice')
  await receive({ type: 'join', room: 'r' })
  const publish = broker.publish.bind(broker)
  broker.publish = () => Promise.reject(new BrokerUnavailableError())
  await receive({ type: 'send', room: 'r', text: 'hi', ref: 'u' })
  t.match(socket.last(), { type: 'error', code: 'unavailable', ref: 'u', message: /nothing was published/ })
  t.equal(stats.errors.unavailable, 1)
  t.same(socket.closes, [])
  broker.publish = publish
  await receive({ type: 'send', room: 'r', text: 'retry', ref: 'v' })
  t.match(socket.last(), { type: 'ack', ref: 'v' })
})

t.test('an unexpected error while handling a frame closes that connection with 1011, not the process', async (t) => {
  const broker = new MemoryBroker({ historySize: 10, maxIdleRooms: 10 })
  const stats = createStats()
  const hub = new Hub({ broker, presence: new MemoryPresence(), stats, historyOnJoin: 10, historySize: 10, presenceBatchMs: 0, maxRoomsPerConnection: 5 })
  await hub.start()
  t.teardown(() => hub.close())
  const socket = new FakeSocket()
  const reported: unknown[] = []
  const connection = new Connection('id-x', 'x', socket, socket, {
    hub,
    stats,
    batch: new WriteBatch(),
    parse: () => { throw new Error('a bug') },
    sendQueueMaxBytes: 1_000_000,
    rateLimitPerSec: 10,
    rateLimitBurst: 10,
    onInternalError: (error) => reported.push(error)
  })
  connection.receive(Buffer.from('{"type":"join","room":"r"}'), false)
  t.same(socket.closes, [{ code: 1011, reason: 'internal error' }])
  t.equal(reported.length, 1)
  t.match(reported[0], { message: 'a bug' })
  connection.closed()
})

t.test('a send that fails with anything but BrokerUnavailableError is reported, and the client still gets unavailable', async (t) => {
  const broker = new MemoryBroker({ historySize: 10, maxIdleRooms: 10 })
  const reported: Array<{ error: unknown, consequence: string }> = []
  const { connect, stats } = await setup(t, { broker, extra: { onInternalError: (error, consequence) => reported.push({ error, consequence }) } })
  const { socket, receive } = connect('alice')
  await receive({ type: 'join', room: 'r' })
  broker.publish = () => Promise.reject(new TypeError('a bug in the broker'))
  await receive({ type: 'send', room: 'r', text: 'hi', ref: 'u' })
  t.match(socket.last(), { type: 'error', code: 'unavailable', ref: 'u', message: 'the message could not be stored; nothing was published' })
  t.equal(stats.errors.unavailable, 1)
  t.equal(reported.length, 1, 'reported once')
  t.match(reported[0], { error: { message: 'a bug in the broker' }, consequence: /unavailable/ })
  t.same(socket.closes, [], 'the connection stays open')
  broker.publish = () => Promise.reject(new BrokerUnavailableError())
  await receive({ type: 'send', room: 'r', text: 'hi', ref: 'v' })
  t.match(socket.last(), { type: 'error', code: 'unavailable', ref: 'v' })
  t.equal(reported.length, 1, 'the broker being away is expected: not reported')
})

t.test('error() sends an error frame with or without a ref and counts it', async (t) => {
  const { connect, stats } = await setup(t)
  const { socket, connection } = connect('alice')
  connection.error('not_joined', 'no such room', 'j1')
  t.same(socket.last(), { type: 'error', code: 'not_joined', message: 'no such room', ref: 'j1' })
  connection.error('unavailable', 'later')
  t.same(socket.last(), { type: 'error', code: 'unavailable', message: 'later' })
  t.equal(stats.errors.not_joined, 1)
  t.equal(stats.errors.unavailable, 1)
})

t.test('listen: the socket\'s messages reach receive, a pong marks it alive, its close leaves the rooms and tells onClosed', async (t) => {
  const forgotten: Connection[] = []
  const { connect, hub } = await setup(t, { extra: { onClosed: (connection) => forgotten.push(connection) } })
  const { socket, connection } = connect('alice')
  const events = new EventEmitter()
  connection.listen(events)
  events.emit('message', Buffer.from('{"type":"join","room":"r"}'), false)
  for (let i = 0; i < 20; i++) await Promise.resolve()
  t.match(socket.last(), { type: 'joined', room: 'r' })
  connection.alive = false
  events.emit('pong')
  t.equal(connection.alive, true, 'the pong set alive again')
  events.emit('message', Buffer.from('x'), true)
  t.match(socket.closes, [{ code: 1003 }], 'binary flag passed through')
  t.same(forgotten, [], 'not forgotten before the socket is gone')
  events.emit('close')
  t.same(forgotten, [connection], 'onClosed told once the socket closed')
  t.notOk(hub.isJoined(connection, 'r'), 'and it left its rooms')
})
