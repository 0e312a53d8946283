// Unit tests of lib/connection.ts with a fake socket and a real hub on the
// memory broker: frame handling, errors that keep the connection open, the
// frame and send buckets, the slow-consumer check after the flush, and
// replays paced by the socket draining.
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

/** A WebSocket and its TCP stream: `writableLength` is what the "kernel" has not taken yet. */
class FakeSocket extends EventEmitter implements Socket, FrameStream {
  readyState = 1
  writableLength = 0
  /** When set, written bytes stay queued until `takeAll()`. */
  holding = false
  highWaterMark = 16384
  corked = 0
  readonly sent: Buffer[] = []
  readonly closes: Array<{ code: number, reason: string }> = []
  terminated = 0
  pings = 0

  write (frame: Buffer): boolean {
    this.sent.push(frame)
    if (this.holding) this.writableLength += frame.length
    return this.writableLength < this.highWaterMark
  }

  /** The peer read everything: the queue empties and 'drain' fires. */
  takeAll (): void {
    this.writableLength = 0
    this.emit('drain')
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

  paused = false
  pause (): void {
    this.paused = true
  }

  get frames (): Frame[] {
    return this.sent.map((buffer) => JSON.parse(payloadOf(buffer)) as Frame)
  }

  last (): Frame | undefined {
    return this.frames.at(-1)
  }
}

/** A clock the test moves by hand, for the buckets. */
function manualClock () {
  const clock = { ms: 0, now: () => clock.ms }
  return clock
}

const flushTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

async function setup (t: Test, options: { rateLimitPerSec?: number, rateLimitBurst?: number, signalRatePerSec?: number, signalBurst?: number, frameRatePerSec?: number, frameBurst?: number, sendQueueMaxBytes?: number, broker?: MemoryBroker, maxRooms?: number, extra?: Partial<ConnectionOptions> } = {}) {
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
      parse: createFrameParser(20, 1024),
      sendQueueMaxBytes: options.sendQueueMaxBytes ?? 1_000_000,
      frameRatePerSec: options.frameRatePerSec ?? 1000,
      frameBurst: options.frameBurst ?? 1000,
      rateLimitPerSec: options.rateLimitPerSec ?? 1000,
      rateLimitBurst: options.rateLimitBurst ?? 1000,
      signalRatePerSec: options.signalRatePerSec ?? 1000,
      signalBurst: options.signalBurst ?? 1000,
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

t.test('joins and leaves use the frame bucket, not the send bucket', async (t) => {
  const { connect } = await setup(t, { rateLimitPerSec: 1, rateLimitBurst: 1 })
  const { socket, receive } = connect('alice')
  for (let i = 0; i < 10; i++) {
    await receive({ type: 'join', room: 'r' })
    await receive({ type: 'leave', room: 'r' })
  }
  t.equal(socket.frames.filter((f) => f.type === 'error').length, 0)
  await receive({ type: 'join', room: 'r' })
  await receive({ type: 'send', room: 'r', text: 'one', ref: 'a' })
  t.match(socket.last(), { type: 'ack', ref: 'a' }, 'the send bucket is still full')
})

t.test('every frame counts against the frame bucket and is refused before it is parsed', async (t) => {
  const clock = manualClock()
  const parsed: string[] = []
  const { connect, stats } = await setup(t, {
    frameRatePerSec: 2,
    frameBurst: 3,
    extra: { now: clock.now, parse: (raw) => { parsed.push(raw); return createFrameParser(20, 1024)(raw) } }
  })
  const { socket, connection, receive } = connect('alice')
  await receive('not json')
  await receive({ type: 'nope' })
  await receive({ type: 'join', room: 'r' })
  t.equal(parsed.length, 3, 'the burst is parsed: two invalid frames and a join')
  t.match(socket.last(), { type: 'joined' })
  await receive({ type: 'leave', room: 'r', ref: 'over' })
  t.equal(parsed.length, 3, 'the frame over the bucket was not parsed')
  t.same(socket.last(), { type: 'error', code: 'rate_limited', message: 'too many frames: at most 2 per second (bursts of 3); slow down' }, 'refused without its ref')
  t.equal(stats.errors.rate_limited, 1)
  t.equal(stats.rateLimitedFrames, 1)
  clock.ms += 500
  await receive({ type: 'leave', room: 'r', ref: 'later' })
  t.match(socket.last(), { type: 'left', room: 'r' }, 'one token back after half a second at 2 per second')
  t.equal(parsed.length, 4)
  t.notOk(connection.isClosing)
})

t.test('check order: frame bucket, validation, membership, then the send bucket; only a frame that reaches a bucket takes a token', async (t) => {
  const clock = manualClock()
  const { connect } = await setup(t, { frameRatePerSec: 1, frameBurst: 100, rateLimitPerSec: 1, rateLimitBurst: 2, extra: { now: clock.now } })
  const { socket, receive } = connect('alice')
  for (let i = 0; i < 5; i++) await receive({ type: 'send', room: 'r', text: 'x', ref: `n${i}` })
  t.equal(socket.frames.filter((f) => f.code === 'not_joined').length, 5, 'not joined: refused before the send bucket')
  await receive({ type: 'send', room: 'r', text: '', ref: 'bad' })
  t.match(socket.last(), { code: 'invalid_frame', ref: 'bad' })
  await receive({ type: 'join', room: 'r' })
  await receive({ type: 'send', room: 'r', text: 'one', ref: 's1' })
  await receive({ type: 'send', room: 'r', text: 'two', ref: 's2' })
  t.match(socket.last(), { type: 'ack', ref: 's2' }, 'the send bucket was untouched by the refused sends: both tokens left')
  await receive({ type: 'send', room: 'r', text: 'three', ref: 's3' })
  t.match(socket.last(), { type: 'error', code: 'rate_limited', ref: 's3', message: /at most 1 per second \(bursts of 2\)/ }, 'the send bucket refuses after validation, with the ref')
})

t.test('signal: relayed to the other members with an ack of its ref, never echoed, counted apart from messages', async (t) => {
  const { connect, stats } = await setup(t)
  const alice = connect('alice')
  const bob = connect('bob')
  await alice.receive({ type: 'join', room: 'r' })
  await bob.receive({ type: 'join', room: 'r' })
  const aliceBefore = alice.socket.sent.length
  await alice.receive({ type: 'signal', room: 'r', event: 'typing', ref: 'g1' })
  t.same(alice.socket.frames.slice(aliceBefore), [{ type: 'ack', ref: 'g1' }], 'the sender gets only the ack, without an id')
  t.same(bob.socket.last(), { type: 'signal', room: 'r', event: 'typing', from: 'alice' })
  await alice.receive({ type: 'signal', room: 'r', event: 'stopped' })
  t.same(alice.socket.frames.slice(aliceBefore), [{ type: 'ack', ref: 'g1' }], 'no ref: no ack, and still no echo')
  t.same(bob.socket.last(), { type: 'signal', room: 'r', event: 'stopped', from: 'alice' })
  t.equal(stats.signalsIn, 2)
  t.equal(stats.signalsOut, 2)
  t.equal(stats.messagesIn, 0, 'not counted as messages')
  t.equal(stats.messagesOut, 0)
})

t.test('signal check order: frame bucket, validation, membership, then the signal bucket; strikes count toward 1008', async (t) => {
  const clock = manualClock()
  const { connect, stats } = await setup(t, { frameRatePerSec: 1, frameBurst: 1000, rateLimitPerSec: 1, rateLimitBurst: 1, signalRatePerSec: 1, signalBurst: 2, extra: { now: clock.now } })
  const { socket, connection, receive } = connect('alice')
  await receive({ type: 'signal', room: 'r', event: 'Typing', ref: 'bad' })
  t.same(socket.last(), { type: 'error', code: 'invalid_frame', ref: 'bad', message: '"event": expected 1-32 characters of a-z 0-9 _ -' })
  for (let i = 0; i < 5; i++) await receive({ type: 'signal', room: 'r', event: 'typing', ref: `n${i}` })
  t.equal(socket.frames.filter((f) => f.code === 'not_joined').length, 5, 'not joined: refused before the signal bucket')
  t.match(socket.last(), { message: 'join room "r" before sending signals to it', ref: 'n4' })
  await receive({ type: 'join', room: 'r' })
  await receive({ type: 'signal', room: 'r', event: 'typing', ref: 'g1' })
  await receive({ type: 'signal', room: 'r', event: 'typing', ref: 'g2' })
  t.same(socket.last(), { type: 'ack', ref: 'g2' }, 'the refused signals took no token: the whole burst is left')
  await receive({ type: 'signal', room: 'r', event: 'typing', ref: 'g3' })
  t.same(socket.last(), { type: 'error', code: 'rate_limited', ref: 'g3', message: 'too many signals: at most 1 per second (bursts of 2); slow down' })
  await receive({ type: 'send', room: 'r', text: 'a message', ref: 's1' })
  t.match(socket.last(), { type: 'ack', ref: 's1', id: String }, 'the send bucket is separate')
  clock.ms += 1000
  await receive({ type: 'signal', room: 'r', event: 'typing', ref: 'g4' })
  t.same(socket.last(), { type: 'ack', ref: 'g4' }, 'one token back after a second')
  for (let i = 0; i < RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1; i++) await receive({ type: 'signal', room: 'r', event: 'typing' })
  t.same(socket.closes, [], `open after ${RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1} rate-limited signals`)
  await receive({ type: 'signal', room: 'r', event: 'typing' })
  t.match(socket.closes, [{ code: 1008, reason: /rate limit/ }], 'the next one closes with 1008')
  t.ok(connection.isClosing)
  t.equal(stats.rateLimitedFrames, RATE_LIMIT_STRIKES_BEFORE_CLOSE + 1)
})

t.test('100 rate-limited frames in a row close with 1008; an accepted frame resets the count, a refused one does not', async (t) => {
  const clock = manualClock()
  const { connect } = await setup(t, { frameRatePerSec: 1, frameBurst: 1, extra: { now: clock.now } })
  const { socket, connection, receive } = connect('alice')
  await receive({ type: 'join', room: 'r' })
  for (let i = 0; i < RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1; i++) await receive('x'.repeat(100))
  t.same(socket.closes, [], `open after ${RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1} strikes`)
  clock.ms += 1000
  await receive({ type: 'leave', room: 'r' })
  t.match(socket.last(), { type: 'left' }, 'an accepted frame')
  for (let i = 0; i < RATE_LIMIT_STRIKES_BEFORE_CLOSE - 1; i++) await receive('x')
  t.same(socket.closes, [], 'the count started again')
  clock.ms += 1000
  await receive('not json')
  t.match(socket.last(), { code: 'invalid_frame' }, 'a frame through the bucket but refused')
  await receive('x')
  t.match(socket.closes, [{ code: 1008, reason: /rate limit/ }], 'an invalid frame does not reset the count')
  t.ok(connection.isClosing)
  t.ok(socket.paused, 'and what the client still sends is not read')
})

t.test('the backlog is checked after the flush: a burst the kernel takes is fine, one it leaves is a slow consumer', async (t) => {
  const { connect, stats } = await setup(t, { sendQueueMaxBytes: 1024 })
  const { socket, connection } = connect('alice')
  // A burst of 4 KiB in one turn, all taken by the "kernel" at the flush.
  for (let i = 0; i < 4; i++) connection.write(Buffer.alloc(1024))
  t.equal(socket.corked, 1, 'corked for the turn')
  await flushTurn()
  t.equal(socket.corked, 0)
  t.same(socket.closes, [], 'a burst larger than the limit, read at once, is not a slow consumer')
  // Now the peer reads nothing: after the flush 1025 bytes are left.
  socket.holding = true
  connection.write(Buffer.alloc(1025))
  t.same(socket.closes, [], 'not judged while the turn is still running')
  await flushTurn()
  t.match(socket.closes, [{ code: 1013, reason: /slow consumer/ }])
  t.equal(stats.slowConsumerCloses, 1)
  connection.write(Buffer.from('{"type":"z"}'))
  t.equal(socket.sent.length, 5, 'nothing written after the close')
  connection.close(1001, 'again')
  t.equal(socket.closes.length, 1, 'closed once')
})

t.test('replayed frames are paced by drain and not counted against the limit; live bytes are', async (t) => {
  const { connect } = await setup(t, { sendQueueMaxBytes: 1024 })
  const { socket, connection } = connect('alice')
  socket.holding = true
  socket.highWaterMark = 3000
  t.equal(connection.replay(Buffer.alloc(2000)), true, 'under the high-water mark: go on')
  t.equal(connection.replay(Buffer.alloc(2000)), false, 'at the high-water mark: wait for drain')
  const drained = connection.drained()
  t.equal(connection.drained(), drained, 'replays share one wait')
  await flushTurn()
  t.same(socket.closes, [], '4000 replayed bytes queued: not a slow consumer')
  socket.takeAll()
  t.equal(await drained, true)
  connection.replay(Buffer.alloc(500))
  connection.write(Buffer.alloc(1000))
  await flushTurn()
  t.same(socket.closes, [], '1000 live bytes queued beside a replay')
  connection.write(Buffer.alloc(100))
  await flushTurn()
  t.match(socket.closes, [{ code: 1013 }], '1100 live bytes queued: over the limit')
  t.equal(connection.replay(Buffer.alloc(1)), false, 'a closing connection takes no replay')
  t.equal(await connection.drained(), false)
})

t.test('a replay the peer does not read is cut off with 1013; a socket that closes ends the wait', async (t) => {
  const { connect, stats } = await setup(t, { extra: { replayDrainTimeoutMs: 20 } })
  // The connection's timer is unref'd: keep the test process alive meanwhile.
  const keepAlive = setTimeout(() => {}, 5000)
  t.teardown(() => clearTimeout(keepAlive))
  const slow = connect('slow')
  slow.socket.holding = true
  slow.connection.replay(Buffer.alloc(20000))
  t.equal(await slow.connection.drained(), false, 'no drain within the timeout')
  t.match(slow.socket.closes, [{ code: 1013, reason: /history replay/ }])
  t.equal(stats.slowConsumerCloses, 1)
  t.equal(slow.socket.listenerCount('drain'), 0, 'the drain listener is removed')

  const gone = connect('gone')
  gone.socket.holding = true
  gone.connection.replay(Buffer.alloc(20000))
  const wait = gone.connection.drained()
  gone.connection.closed()
  t.equal(await wait, false)
  t.equal(gone.socket.listenerCount('drain'), 0)
  t.same(gone.socket.closes, [])
})

t.test('a join replays its history at the pace the socket drains, then goes live', async (t) => {
  const broker = new MemoryBroker({ historySize: 100, maxIdleRooms: 100 })
  for (let i = 0; i < 6; i++) await broker.publish('r', 'x', `old ${i}`)
  const { connect } = await setup(t, { broker })
  const poster = connect('poster')
  await poster.receive({ type: 'join', room: 'r' })
  const reader = connect('reader')
  reader.socket.holding = true
  reader.socket.highWaterMark = 1
  await reader.receive({ type: 'join', room: 'r' })
  t.equal(reader.socket.frames.length, 1, 'one frame, then it waits for drain')
  await poster.receive({ type: 'send', room: 'r', text: 'live' })
  for (let i = 0; i < 20 && reader.socket.frames.at(-1)?.text !== 'live'; i++) {
    reader.socket.takeAll()
    await flushTurn()
  }
  t.same(reader.socket.frames.map((f) => f.type === 'joined' ? 'joined' : f.text), ['joined', 'old 0', 'old 1', 'old 2', 'old 3', 'old 4', 'old 5', 'live'], 'joined, the history, then what arrived meanwhile')
  reader.socket.holding = false
  reader.socket.takeAll()
  await flushTurn()
  await poster.receive({ type: 'send', room: 'r', text: 'after' })
  t.equal(reader.socket.last()?.text, 'after', 'live now')
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
    frameRatePerSec: 10,
    frameBurst: 10,
    rateLimitPerSec: 10,
    rateLimitBurst: 10,
    signalRatePerSec: 10,
    signalBurst: 10,
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
