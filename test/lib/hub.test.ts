// Unit tests of lib/hub.ts on the memory broker with fake members: rooms,
// join replies and resumes, fan-out of one buffer, and the hub's use of its
// presence windows (driven by a manual timer; lib/presence-window.ts has its own tests).
import t, { type Test } from 'tap'
import type { EphemeralChannel, EphemeralPayload, ReadRequest, ReadResult } from '../../lib/broker.js'
import { BrokerUnavailableError } from '../../lib/broker.js'
import { CloseCode } from '../../lib/close-codes.js'
import { Hub, type HubOptions } from '../../lib/hub.js'
import { CATCH_UP_BUFFER_MAX } from '../../lib/limits.js'
import { MemoryBroker } from '../../lib/memory-broker.js'
import { MemoryPresence } from '../../lib/memory-presence.js'
import { defaultPolicy } from '../../lib/policy.js'
import { createStats } from '../../lib/stats.js'
import { FakeMember, payloadOf, settle } from '../helpers/fake-member.js'
import { ManualTimer } from '../helpers/manual-timer.js'

/** A memory broker whose reads wait until `open()`: the state read is taken when it opens, or before if `early`. */
class GatedBroker extends MemoryBroker {
  private readonly gates: Array<() => void> = []
  early = false

  override async read (room: string, request: ReadRequest): Promise<ReadResult> {
    const snapshot = this.early ? super.read(room, request) : undefined
    await new Promise<void>((resolve) => this.gates.push(resolve))
    return snapshot ?? super.read(room, request)
  }

  get waiting (): number {
    return this.gates.length
  }

  open (): void {
    for (const gate of this.gates.splice(0)) gate()
  }
}

/** A memory broker whose reads fail with `error`. */
class FailingBroker extends MemoryBroker {
  constructor (private readonly failure: Error) {
    super({ historySize: 10, maxIdleRooms: 10 })
  }

  override read (): Promise<ReadResult> {
    return Promise.reject(this.failure)
  }
}

/** Presence that records what this node tells the other nodes of its changes. */
class RecordingPresence extends MemoryPresence {
  readonly published: Array<{ room: string, joined: string[], left: string[] }> = []

  // Defaults only because MemoryPresence declares its no-op without parameters; the hub passes all three.
  override publishPresence (room = '', joined: string[] = [], left: string[] = []): void {
    this.published.push({ room, joined, left })
  }
}

interface Setup {
  hub: Hub
  broker: MemoryBroker
  stats: ReturnType<typeof createStats>
  timer: ManualTimer
}

async function setup (t: Test, options: Partial<HubOptions> = {}): Promise<Setup> {
  const broker = options.broker ?? new MemoryBroker({ historySize: options.historySize ?? 1000, maxIdleRooms: 10_000 })
  const stats = createStats()
  const timer = new ManualTimer()
  const hub = new Hub({
    broker,
    stats,
    historyOnJoin: 50,
    historySize: 1000,
    presenceBatchMs: 0,
    maxRoomsPerConnection: 100,
    timer,
    ...options,
    presence: options.presence ?? new MemoryPresence()
  })
  await hub.start()
  t.teardown(() => hub.close())
  return { hub, broker: broker as MemoryBroker, stats, timer }
}

/** Runs queued promise callbacks without letting any timer fire in between. */
async function microtasks (): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve()
}

/** Joins and waits for the reply (the memory broker answers within a few microtasks). */
async function joinNow (hub: Hub, member: FakeMember, room: string, since?: string): Promise<void> {
  const before = member.writes.length
  t.equal(hub.join(member, room, since), 'joined')
  await microtasks()
  if (!member.frames.slice(before).some((frame) => frame.type === 'joined')) throw new Error(`${member.name} got no joined for ${room}`)
}

async function publishTexts (hub: Hub, room: string, texts: string[]): Promise<string[]> {
  const ids: string[] = []
  for (const text of texts) ids.push((await hub.publish(room, 'system', text)).id)
  return ids
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`)

t.test('rooms exist while they have members', async (t) => {
  const { hub } = await setup(t)
  const alice = new FakeMember('a', 'alice')
  const bob = new FakeMember('b', 'bob')
  t.equal(hub.roomCount, 0)
  await joinNow(hub, alice, 'lobby')
  t.equal(hub.roomCount, 1, 'created on the first join')
  await joinNow(hub, bob, 'lobby')
  t.equal(hub.roomCount, 1)
  t.ok(hub.isJoined(alice, 'lobby'))
  t.equal(hub.leave(alice, 'lobby'), true)
  t.equal(hub.roomCount, 1, 'kept while bob is in it')
  hub.disconnect(bob)
  t.equal(hub.roomCount, 0, 'removed when empty')
  t.notOk(hub.isJoined(bob, 'lobby'))
})

t.test('roomCount is back to 0 after many one-off rooms', async (t) => {
  const { hub, broker } = await setup(t)
  for (let i = 0; i < 500; i++) {
    const member = new FakeMember(`m${i}`)
    hub.join(member, `room-${i}`)
    await hub.publish(`room-${i}`, 'system', 'hello')
    if (i % 2 === 0) hub.leave(member, `room-${i}`)
    else hub.disconnect(member)
  }
  // Some left while their join was still being read.
  await microtasks()
  t.equal(hub.roomCount, 0)
  await hub.publish('room-7', 'system', 'nobody listens')
  t.equal(broker.roomLogCount, 500, 'the logs stay in the broker for resumes (within MAX_IDLE_ROOMS)')
})

t.test('join replies joined, then the recent history oldest first, then live messages', async (t) => {
  const { hub } = await setup(t, { historyOnJoin: 3 })
  await publishTexts(hub, 'lobby', range(1, 5))
  const bob = new FakeMember('b', 'bob')
  await joinNow(hub, bob, 'lobby')
  const alice = new FakeMember('a', 'alice')
  t.equal(hub.join(alice, 'lobby'), 'joined')
  t.equal(alice.writes.length, 0, 'nothing is written before the history is read')
  await microtasks()
  t.same(alice.frames[0], { type: 'joined', room: 'lobby', members: ['bob', 'alice'], recovered: true }, 'members include the joiner')
  t.same(alice.frames.slice(1).map((f) => f.type), ['message', 'message', 'message'])
  t.same(alice.texts('lobby'), ['m3', 'm4', 'm5'], 'HISTORY_ON_JOIN most recent, oldest first')
  await publishTexts(hub, 'lobby', ['live'])
  t.same(alice.texts('lobby'), ['m3', 'm4', 'm5', 'live'])
  t.match(alice.frames.at(-1), { type: 'message', room: 'lobby', from: 'system', text: 'live' })
})

t.test('HISTORY_ON_JOIN of 0 sends no history', async (t) => {
  const { hub } = await setup(t, { historyOnJoin: 0 })
  await publishTexts(hub, 'r', range(1, 3))
  const alice = new FakeMember('a')
  await joinNow(hub, alice, 'r')
  t.same(alice.frames.map((f) => f.type), ['joined'])
})

t.test('join with since resumes after it', async (t) => {
  const { hub } = await setup(t, { historyOnJoin: 2 })
  const ids = await publishTexts(hub, 'r', range(1, 10))
  const alice = new FakeMember('a')
  await joinNow(hub, alice, 'r', ids[3])
  t.match(alice.frames[0], { type: 'joined', recovered: true })
  t.same(alice.texts('r'), range(5, 10), 'every message after since, beyond HISTORY_ON_JOIN')
  await publishTexts(hub, 'r', ['m11'])
  t.same(alice.texts('r'), range(5, 11), 'then live, once')

  const up = new FakeMember('u')
  const [last] = await publishTexts(hub, 'r', ['m12'])
  await joinNow(hub, up, 'r', last)
  t.same(up.frames.map((f) => f.type), ['joined'], 'nothing missed: nothing sent')
  t.match(up.frames[0], { recovered: true })
})

t.test('join with an unknown since: recovered false and the recent history', async (t) => {
  const { hub } = await setup(t, { historyOnJoin: 2, historySize: 5 })
  const ids = await publishTexts(hub, 'r', range(1, 8)) // m1..m3 trimmed
  for (const since of ['deadbeef-1', 'junk', ids[0] as string]) {
    const member = new FakeMember(`m-${since}`)
    await joinNow(hub, member, 'r', since)
    t.match(member.frames[0], { type: 'joined', recovered: false }, `since ${since}`)
    t.same(member.texts('r'), ['m7', 'm8'], 'HISTORY_ON_JOIN recent messages, as on a plain join')
    hub.disconnect(member)
  }
  const empty = new FakeMember('e')
  await joinNow(hub, empty, 'fresh-room', 'deadbeef-1')
  t.same(empty.frames, [{ type: 'joined', room: 'fresh-room', members: ['e'], recovered: false }])
})

t.test('messages published while the history is read arrive exactly once, in order', async (t) => {
  for (const early of [false, true]) {
    t.test(early ? 'read state taken at the join' : 'read state taken after the publishes', async (t) => {
      const broker = new GatedBroker({ historySize: 1000, maxIdleRooms: 100 })
      broker.early = early
      const { hub } = await setup(t, { broker, historyOnJoin: 50 })
      const watcher = new FakeMember('w')
      hub.join(watcher, 'r')
      broker.open()
      await microtasks()
      await publishTexts(hub, 'r', range(1, 3))

      const alice = new FakeMember('a')
      const ids = await publishTexts(hub, 'r', ['m4'])
      hub.join(alice, 'r', ids[0])
      const resumer = new FakeMember('r')
      hub.join(resumer, 'r')
      await publishTexts(hub, 'r', range(5, 8))
      t.equal(alice.writes.length, 0, 'held while the history is read')
      t.equal(broker.waiting, 2)
      broker.open()
      await microtasks()
      t.same(alice.texts('r'), range(5, 8), 'since m4: m5..m8, none twice')
      t.same(resumer.texts('r'), range(1, 8), 'plain join: m1..m8, none twice')
      await publishTexts(hub, 'r', ['m9'])
      t.same(alice.texts('r'), range(5, 9))
      t.same(watcher.texts('r'), range(1, 9))
    })
  }
})

t.test('a member who leaves while its history is read gets nothing', async (t) => {
  const broker = new GatedBroker({ historySize: 1000, maxIdleRooms: 100 })
  const { hub } = await setup(t, { broker })
  await publishTexts(hub, 'r', ['old'])
  const alice = new FakeMember('a')
  hub.join(alice, 'r')
  t.ok(hub.isJoined(alice, 'r'), 'joined at once, before the reply')
  hub.leave(alice, 'r')
  t.equal(hub.roomCount, 0)
  broker.open()
  await microtasks()
  t.same(alice.frames, [])
})

t.test('a failed history read refuses the join with unavailable', async (t) => {
  const reported: unknown[] = []
  const { hub, stats } = await setup(t, {
    broker: new FailingBroker(new BrokerUnavailableError('redis is away')),
    onError: (error) => reported.push(error)
  })
  const alice = new FakeMember('a')
  t.equal(hub.join(alice, 'r', undefined, 'my-ref'), 'joined')
  await microtasks()
  t.match(alice.errors, [{ code: 'unavailable', ref: 'my-ref', message: /could not join "r": redis is away/ }], 'through the member\'s error()')
  t.equal(alice.writes.length, 1, 'and nothing else')
  t.notOk(hub.isJoined(alice, 'r'))
  t.equal(hub.roomCount, 0)
  t.equal(stats.errors.unavailable, 0, 'counted by the member (Connection.error), not by the hub as well')
  t.same(reported, [], 'the broker being away is expected: not reported as an error')
})

t.test('an unexpected error of the join read is reported, and the member gets unavailable', async (t) => {
  const bug = new TypeError('cannot read properties of undefined')
  const reported: Array<{ error: unknown, context: string }> = []
  const { hub } = await setup(t, {
    broker: new FailingBroker(bug),
    onError: (error, context) => reported.push({ error, context })
  })
  const alice = new FakeMember('a')
  hub.join(alice, 'r', undefined, 'my-ref')
  await microtasks()
  t.equal(reported.length, 1)
  t.ok(reported[0]?.error === bug, 'the error itself, for the log')
  t.match(reported[0]?.context, /room "r"/)
  t.same(alice.errors, [{ code: 'unavailable', message: 'could not join "r": could not read the room history', ref: 'my-ref' }], 'its text is not shown to the client')
  t.notOk(hub.isJoined(alice, 'r'))

  const bob = new FakeMember('b')
  hub.join(bob, 'r')
  hub.leave(bob, 'r')
  await microtasks()
  t.equal(reported.length, 2, 'reported even when the member left before the read failed')
  t.same(bob.errors, [], 'but a member who left is not told')
})

t.test('a member whose catch-up buffer overflows is closed with 1013', async (t) => {
  const broker = new GatedBroker({ historySize: 10, maxIdleRooms: 10 })
  const { hub } = await setup(t, { broker })
  const alice = new FakeMember('a')
  hub.join(alice, 'r')
  for (let i = 0; i < CATCH_UP_BUFFER_MAX; i++) await broker.publish('r', 'x', 'flood')
  t.same(alice.closes, [], 'a full buffer is still fine')
  await broker.publish('r', 'x', 'one too many')
  t.match(alice.closes, [{ code: CloseCode.TRY_AGAIN_LATER }])
})

t.test('too_many_rooms', async (t) => {
  const { hub } = await setup(t, { maxRoomsPerConnection: 2 })
  const alice = new FakeMember('a')
  t.equal(hub.maxRoomsPerConnection, 2)
  await joinNow(hub, alice, 'one')
  await joinNow(hub, alice, 'two')
  const before = alice.writes.length
  t.equal(hub.join(alice, 'three'), 'too_many_rooms')
  await microtasks()
  t.equal(alice.writes.length, before, 'no joined for the refused room')
  t.notOk(hub.isJoined(alice, 'three'))
  t.equal(hub.roomCount, 2, 'no room was created')
  await joinNow(hub, alice, 'two') // joining a room again is not one more room
  t.ok(hub.leave(alice, 'one'))
  await joinNow(hub, alice, 'three')
  t.ok(hub.isJoined(alice, 'three'))
})

t.test('joining a room again restarts it', async (t) => {
  const { hub } = await setup(t, { historyOnJoin: 2 })
  await publishTexts(hub, 'r', range(1, 3))
  const alice = new FakeMember('a')
  await joinNow(hub, alice, 'r')
  await joinNow(hub, alice, 'r')
  t.same(alice.frames.map((f) => f.type), ['joined', 'message', 'message', 'joined', 'message', 'message'])
  t.same(alice.frames[3], { type: 'joined', room: 'r', members: ['a'], recovered: true }, 'listed once')
  await publishTexts(hub, 'r', ['live'])
  t.equal(alice.texts('r').filter((text) => text === 'live').length, 1, 'live messages once')
})

t.test('leave and disconnect', async (t) => {
  const { hub } = await setup(t)
  const alice = new FakeMember('a', 'alice')
  const bob = new FakeMember('b', 'bob')
  await joinNow(hub, alice, 'x')
  await joinNow(hub, alice, 'y')
  await joinNow(hub, bob, 'x')
  await joinNow(hub, bob, 'y')
  t.equal(hub.leave(alice, 'nope'), false, 'not in a room that does not exist')
  t.equal(hub.leave(bob, 'x'), true)
  t.equal(hub.leave(bob, 'x'), false, 'not in it any more')
  t.match(alice.frames.at(-1), { type: 'presence', room: 'x', joined: [], left: ['bob'] })
  await publishTexts(hub, 'x', ['after leave'])
  t.same(bob.texts('x'), [], 'no messages after a leave')
  t.same(alice.texts('x'), ['after leave'])

  hub.disconnect(alice)
  t.notOk(hub.isJoined(alice, 'x'))
  t.notOk(hub.isJoined(alice, 'y'))
  t.match(bob.frames.at(-1), { type: 'presence', room: 'y', joined: [], left: ['alice'] })
  t.equal(hub.roomCount, 1, 'x is empty and gone, y has bob')
  await publishTexts(hub, 'y', ['after disconnect'])
  t.same(alice.texts('y'), [])
  hub.disconnect(alice)
  hub.disconnect(new FakeMember('never-joined'))
  t.pass('disconnecting twice, or a stranger, is harmless')
})

t.test('fan-out writes the same Buffer instance to every member', async (t) => {
  const broker = new GatedBroker({ historySize: 100, maxIdleRooms: 100 })
  const { hub, stats } = await setup(t, { broker })
  const members = Array.from({ length: 5 }, (_, i) => new FakeMember(`m${i}`))
  for (const member of members) hub.join(member, 'r')
  broker.open()
  await microtasks()
  const late = new FakeMember('late')
  hub.join(late, 'r')
  const message = await hub.publish('r', 'system', 'hello')
  const outBefore = stats.messagesOut
  await hub.publish('r', 'system', 'second')
  t.equal(stats.messagesOut - outBefore, 5, 'one message out per live member')

  const firsts = members.map((member) => member.writes.find((buffer) => buffer.toString().includes('"hello"')))
  t.ok(firsts[0] instanceof Buffer)
  for (const buffer of firsts) t.ok(buffer === firsts[0], 'identical buffer, serialised once')
  t.same(JSON.parse(payloadOf(firsts[0] as Buffer)), { type: 'message', room: 'r', id: message.id, from: 'system', text: 'hello', ts: message.ts })

  broker.open()
  await microtasks()
  const replayed = late.writes.find((buffer) => buffer.toString().includes('"hello"'))
  t.ok(replayed !== undefined && replayed.equals(firsts[0] as Buffer), 'a member catching up gets the same bytes (its frame is built for the replay)')
  t.same(late.texts('r'), ['hello', 'second'])
})

t.test('messages and stats', async (t) => {
  const { hub, stats } = await setup(t)
  const alice = new FakeMember('a', 'alice')
  const bob = new FakeMember('b', 'bob')
  await joinNow(hub, alice, 'r')
  await joinNow(hub, bob, 'r')
  const receipt = await hub.publish('r', alice.name, 'from alice')
  t.match(bob.frames.at(-1), { type: 'message', id: receipt.id, from: 'alice' }, 'from is as given')
  t.equal(stats.messagesIn, 1)
  t.equal(stats.messagesOut, 2)
  t.same(alice.texts('r'), ['from alice'], 'the sender gets its own message too')
  await hub.publish('elsewhere', 'ops', 'nobody here')
  t.equal(stats.messagesIn, 2)
  t.equal(stats.messagesOut, 2)
  t.same(bob.texts('elsewhere'), [])
})

/** A member whose connection carries a verified user id. */
class UserMember extends FakeMember {
  constructor (id: string, name: string, readonly user: string) {
    super(id, name)
  }
}

/** The ephemeral path as the hub sees it: what it publishes, and a way to deliver another node's payload. */
class RecordingChannel implements EphemeralChannel {
  readonly published: Array<{ room: string, topic: string, payload: EphemeralPayload }> = []
  readonly handlers = new Map<string, (room: string, payload: unknown) => void>()

  publishEphemeral (room: string, topic: string, payload: EphemeralPayload): void {
    this.published.push({ room, topic, payload })
  }

  onEphemeral (topic: string, handler: (room: string, payload: unknown) => void): void {
    this.handlers.set(topic, handler)
  }

  arrive (room: string, payload: unknown): void {
    this.handlers.get('signal')?.(room, payload)
  }
}

t.test('a signal reaches the other live members once (a user\'s other connection too), never its sender, and is never stored', async (t) => {
  const ephemeral = new RecordingChannel()
  const { hub, broker, stats } = await setup(t, { ephemeral })
  const alice = new UserMember('a1', 'Alice', 'alice')
  const aliceElsewhere = new UserMember('a2', 'Alice', 'alice')
  const guest = new FakeMember('g', 'guest-1')
  for (const member of [alice, aliceElsewhere, guest]) await joinNow(hub, member, 'r')
  const joining = new FakeMember('j', 'joining')
  hub.join(joining, 'r')
  const before = new Map([alice, aliceElsewhere, guest].map((member) => [member, member.writes.length]))

  hub.signal(alice, 'r', 'typing')
  t.same(alice.writes.length, before.get(alice), 'not echoed to its sender')
  t.same(aliceElsewhere.frames.slice(before.get(aliceElsewhere)), [{ type: 'signal', room: 'r', event: 'typing', from: 'Alice', user: 'alice' }], 'the same user\'s other connection gets it')
  t.same(guest.frames.slice(before.get(guest)), [{ type: 'signal', room: 'r', event: 'typing', from: 'Alice', user: 'alice' }])
  t.equal(aliceElsewhere.writes.at(-1), guest.writes.at(-1), 'one buffer for every member')
  t.same(ephemeral.published, [{ room: 'r', topic: 'signal', payload: { e: 'typing', f: 'Alice', u: 'alice' } }], 'told to the other nodes once')
  hub.signal(guest, 'r', 'away')
  t.same(guest.ofType('signal').length, 1, 'a guest\'s own signal is not echoed either')
  t.same(alice.frames.at(-1), { type: 'signal', room: 'r', event: 'away', from: 'guest-1' }, 'a guest\'s signal has no user')
  t.same(ephemeral.published.at(-1)?.payload, { e: 'away', f: 'guest-1' })

  await microtasks()
  t.same(joining.ofType('signal'), [], 'a member still reading its history gets none (at most once, never before `joined`)')
  t.same((await broker.read('r', { limit: 100 })).messages, [], 'nothing stored')
  t.equal(stats.signalsIn, 2)
  t.equal(stats.signalsOut, 4)
  t.equal(stats.messagesIn, 0)
  hub.signal(guest, 'no-members-here', 'typing')
  t.equal(ephemeral.published.length, 2, 'a room nobody here is in: nothing relayed, nothing published')
  t.equal(stats.signalsIn, 2)
})

t.test('another node\'s signal is checked, then written to every live member; a malformed one is reported and dropped', async (t) => {
  const ephemeral = new RecordingChannel()
  const reported: Array<{ error: unknown, context: string }> = []
  const { hub, stats } = await setup(t, { ephemeral, onError: (error, context) => reported.push({ error, context }) })
  const alice = new FakeMember('a', 'alice')
  const bob = new FakeMember('b', 'bob')
  await joinNow(hub, alice, 'r')
  await joinNow(hub, bob, 'r')
  ephemeral.arrive('r', { e: 'typing', f: 'carol', u: 'carol-id' })
  ephemeral.arrive('r', { e: 'typing', f: 'guest-9' })
  ephemeral.arrive('r', { e: 'x'.repeat(32), f: '😀'.repeat(32), u: 'u'.repeat(128) })
  for (const member of [alice, bob]) {
    t.same(member.ofType('signal'), [
      { type: 'signal', room: 'r', event: 'typing', from: 'carol', user: 'carol-id' },
      { type: 'signal', room: 'r', event: 'typing', from: 'guest-9' },
      { type: 'signal', room: 'r', event: 'x'.repeat(32), from: '😀'.repeat(32), user: 'u'.repeat(128) }
    ])
  }
  t.equal(stats.signalsOut, 6)
  t.equal(stats.signalsIn, 0, 'counted in where it was sent')
  t.same(ephemeral.published, [], 'never sent on again')

  const malformed: unknown[] = [
    null, 'typing', [], { f: 'carol' }, { e: 'Typing', f: 'carol' }, { e: 'x'.repeat(33), f: 'carol' }, { e: 'typing' },
    { e: 'typing', f: '' }, { e: 'typing', f: 'x'.repeat(33) }, { e: 'typing', f: 'carol', u: 7 }, { e: 'typing', f: 'carol', u: '' },
    { e: 'typing', f: 'carol', u: 'x'.repeat(129) }, { e: 'typing', f: 'carol', text: 'injected' }
  ]
  for (const payload of malformed) ephemeral.arrive('r', payload)
  t.equal(alice.ofType('signal').length, 3, 'no malformed signal reached a member')
  t.equal(reported.length, malformed.length, 'each one reported')
  t.match(reported[0], { error: { message: /malformed signal/ }, context: 'room "r"' })
  ephemeral.arrive('not-served-here', { e: 'typing', f: 'carol' })
  t.equal(reported.length, malformed.length, 'a room this node does not serve is ignored')
})

t.test('presence with PRESENCE_BATCH_MS=0: each change goes at once', async (t) => {
  const { hub } = await setup(t, { presenceBatchMs: 0 })
  const watcher = new FakeMember('w', 'watcher')
  await joinNow(hub, watcher, 'r')
  t.same(watcher.ofType('presence'), [], 'not told of its own join')
  const alice = new FakeMember('a', 'alice')
  const bob = new FakeMember('b', 'bob')
  hub.join(alice, 'r')
  t.same(watcher.ofType('presence'), [{ type: 'presence', room: 'r', joined: ['alice'], left: [] }], 'synchronously, no timer')
  hub.join(bob, 'r')
  hub.leave(alice, 'r')
  t.same(watcher.ofType('presence'), [
    { type: 'presence', room: 'r', joined: ['alice'], left: [] },
    { type: 'presence', room: 'r', joined: ['bob'], left: [] },
    { type: 'presence', room: 'r', joined: [], left: ['alice'] }
  ])
  await microtasks()
  t.same(alice.ofType('presence'), [])
  t.same(bob.ofType('presence'), [], 'bob was catching up when alice left; his members list says so')
  t.same(bob.frames[0], { type: 'joined', room: 'r', members: ['watcher', 'bob'], recovered: true })
})

const WINDOW_MS = 40

t.test('presence batching: many joins in one window make one frame', async (t) => {
  const { hub, timer } = await setup(t, { presenceBatchMs: WINDOW_MS })
  const watchers = [new FakeMember('w1'), new FakeMember('w2')]
  for (const watcher of watchers) hub.join(watcher, 'r')
  await microtasks()
  timer.advance(WINDOW_MS)
  t.same(watchers.map((w) => w.ofType('presence').length), [0, 0], 'the watchers\' own window told them nothing')

  const joiners = Array.from({ length: 20 }, (_, i) => new FakeMember(`j${i}`))
  for (const joiner of joiners) hub.join(joiner, 'r')
  await microtasks()
  timer.advance(WINDOW_MS - 1)
  t.same(watchers[0]?.ofType('presence'), [], 'nothing before the window ends')
  timer.advance(1)
  for (const watcher of watchers) {
    t.same(watcher.ofType('presence'), [{ type: 'presence', room: 'r', joined: joiners.map((j) => j.name), left: [] }], 'one frame for twenty joins')
  }
  const frames = watchers.map((w) => w.writes.find((buffer) => buffer.toString().includes('"presence"')))
  t.ok(frames[0] !== undefined && frames[0] === frames[1], 'the shared presence frame is serialised once')
  for (const joiner of joiners) {
    t.same(joiner.ofType('presence'), [], `${joiner.name} is not told of its own join (nor of joins its members list had)`)
    t.same(joiner.frames[0]?.members, ['w1', 'w2', ...joiners.map((j) => j.name)])
  }
  t.equal(timer.pending, 0)
})

t.test('presence batching: a join and a leave inside one window cancel out', async (t) => {
  const { hub, timer } = await setup(t, { presenceBatchMs: WINDOW_MS })
  const watcher = new FakeMember('w')
  hub.join(watcher, 'r')
  await microtasks()
  timer.advance(WINDOW_MS)

  const quick = new FakeMember('quick')
  hub.join(quick, 'r')
  hub.leave(quick, 'r')
  const live = new FakeMember('live-briefly')
  hub.join(live, 'r')
  await microtasks() // goes live inside the window
  hub.disconnect(live)
  timer.advance(WINDOW_MS)
  t.same(watcher.ofType('presence'), [], 'no frame with nothing left in it')

  // The next window is not disturbed by the cancelled one.
  const stay = new FakeMember('stay')
  hub.join(stay, 'r')
  timer.advance(WINDOW_MS)
  t.same(watcher.ofType('presence'), [{ type: 'presence', room: 'r', joined: ['stay'], left: [] }])
})

t.test('presence batching: joins and leaves of different members are netted', async (t) => {
  const { hub, timer } = await setup(t, { presenceBatchMs: WINDOW_MS })
  const watcher = new FakeMember('w')
  const leaver = new FakeMember('leaver')
  hub.join(watcher, 'r')
  hub.join(leaver, 'r')
  await microtasks()
  timer.advance(WINDOW_MS)
  const before = watcher.ofType('presence').length
  const newcomer = new FakeMember('newcomer')
  hub.join(newcomer, 'r')
  hub.leave(leaver, 'r')
  timer.advance(WINDOW_MS)
  t.same(watcher.ofType('presence').slice(before), [{ type: 'presence', room: 'r', joined: ['newcomer'], left: ['leaver'] }])
})

t.test('presence batching: a member live mid-window is told only of later changes', async (t) => {
  const { hub, timer } = await setup(t, { presenceBatchMs: WINDOW_MS })
  const watcher = new FakeMember('w')
  hub.join(watcher, 'r')
  await microtasks()
  timer.advance(WINDOW_MS)

  const first = new FakeMember('first')
  hub.join(first, 'r')
  await microtasks()
  t.same(first.frames[0]?.members, ['w', 'first'], 'first is live, inside the window')
  const second = new FakeMember('second')
  hub.join(second, 'r')
  await microtasks()
  timer.advance(WINDOW_MS)
  t.same(watcher.ofType('presence'), [{ type: 'presence', room: 'r', joined: ['first', 'second'], left: [] }])
  t.same(first.ofType('presence'), [{ type: 'presence', room: 'r', joined: ['second'], left: [] }], 'only what its members list missed')
  t.same(second.ofType('presence'), [], 'second\'s members list had everything')
  t.same(second.frames[0]?.members, ['w', 'first', 'second'])
})

t.test('a client is never told of its own join, with or without batching', async (t) => {
  for (const presenceBatchMs of [0, WINDOW_MS]) {
    const { hub, timer } = await setup(t, { presenceBatchMs })
    const watcher = new FakeMember('w')
    hub.join(watcher, 'r')
    await microtasks()
    timer.advance(WINDOW_MS)
    const alice = new FakeMember('alice')
    hub.join(alice, 'r')
    await microtasks()
    timer.advance(WINDOW_MS)
    t.same(alice.ofType('presence'), [], `PRESENCE_BATCH_MS=${presenceBatchMs}`)
    t.same(watcher.ofType('presence'), [{ type: 'presence', room: 'r', joined: ['alice'], left: [] }])
    hub.close()
  }
})

t.test('presence changes go to the other nodes once per window', async (t) => {
  const presence = new RecordingPresence()
  const { hub, timer } = await setup(t, { presence, presenceBatchMs: WINDOW_MS })
  const alice = new FakeMember('alice')
  const bob = new FakeMember('bob')
  hub.join(alice, 'r')
  hub.join(bob, 'r')
  hub.join(alice, 'elsewhere')
  await microtasks()
  t.same(presence.published, [], 'not before the window ends')
  timer.advance(WINDOW_MS)
  t.same(presence.published, [
    { room: 'r', joined: ['alice', 'bob'], left: [] },
    { room: 'elsewhere', joined: ['alice'], left: [] }
  ], 'one window per room')
})

t.test('the last member leaving sends the room\'s window to the other nodes at once', async (t) => {
  const presence = new RecordingPresence()
  const { hub, timer } = await setup(t, { presence, presenceBatchMs: WINDOW_MS })
  const alice = new FakeMember('alice')
  hub.join(alice, 'r')
  await microtasks()
  timer.advance(WINDOW_MS)
  const bob = new FakeMember('bob')
  hub.join(bob, 'r')
  await microtasks()
  hub.leave(alice, 'r')
  t.equal(presence.published.length, 1, 'bob is still there: the window runs on')
  hub.disconnect(bob)
  t.equal(hub.roomCount, 0)
  t.same(presence.published.at(-1), { room: 'r', joined: [], left: ['alice'] }, 'no waiting for a timer (bob came and went inside the window)')
  t.equal(timer.pending, 0, 'the room\'s timer is cancelled with it')
})

t.test('close stops the presence timers, of rooms made after it too', async (t) => {
  const presence = new RecordingPresence()
  const { hub, timer } = await setup(t, { presence, presenceBatchMs: WINDOW_MS })
  const watcher = new FakeMember('w')
  hub.join(watcher, 'r')
  await microtasks()
  timer.advance(WINDOW_MS)
  const alice = new FakeMember('alice')
  hub.join(alice, 'r')
  t.equal(timer.pending, 1)
  hub.close()
  t.equal(timer.pending, 0)
  timer.advance(WINDOW_MS)
  t.same(watcher.ofType('presence'), [], 'the window does not end by itself')

  const late = new FakeMember('late')
  hub.join(late, 'new-room')
  t.equal(timer.pending, 0, 'no timer for a room made after close')
  hub.disconnect(late)
  hub.disconnect(watcher)
  hub.disconnect(alice)
  t.same(presence.published.slice(1), [{ room: 'r', joined: [], left: ['w'] }], 'a room that empties still tells the other nodes; late came and went')
})

t.test('a replay waits for the member to drain; live messages wait behind it, each once, in order', async (t) => {
  const { hub, broker } = await setup(t)
  for (let i = 0; i < 3; i++) await broker.publish('r', 'x', `old ${i}`)
  const alice = new FakeMember('a')
  alice.replayAccepts = false
  hub.join(alice, 'r')
  await microtasks()
  t.same(alice.ofType('joined').length, 1, 'joined is written, then the hub waits')
  t.same(alice.texts('r'), [])
  await broker.publish('r', 'x', 'live 1')
  t.equal(alice.drain(), 1, 'one wait for drain')
  await microtasks()
  t.same(alice.texts('r'), ['old 0'], 'one frame per drain while the socket is full')
  alice.replayAccepts = true
  t.equal(alice.drain(), 1)
  await microtasks()
  t.same(alice.texts('r'), ['old 0', 'old 1', 'old 2', 'live 1'], 'the rest at once when the socket takes it')
  await broker.publish('r', 'x', 'live 2')
  t.same(alice.texts('r'), ['old 0', 'old 1', 'old 2', 'live 1', 'live 2'], 'live')
})

t.test('a replay stops when the member leaves, re-joins or closes while it waits', async (t) => {
  const { hub, broker } = await setup(t)
  for (let i = 0; i < 3; i++) await broker.publish('r', 'x', `old ${i}`)
  const alice = new FakeMember('a')
  alice.replayAccepts = false
  hub.join(alice, 'r')
  await microtasks()
  hub.leave(alice, 'r')
  alice.drain()
  await microtasks()
  t.same(alice.texts('r'), [], 'nothing more after the leave')

  const bob = new FakeMember('b')
  bob.replayAccepts = false
  hub.join(bob, 'r')
  await microtasks()
  bob.drain(false)
  await microtasks()
  t.same(bob.texts('r'), [], 'a member whose socket closed gets nothing more')
  await broker.publish('r', 'x', 'live')
  t.same(bob.texts('r'), [], 'and does not go live')
  hub.disconnect(bob)
})

t.test('presence: false — 1000 joins and their leaves send no presence frame to anyone, and tell no other node', async (t) => {
  const presence = new RecordingPresence()
  const base = defaultPolicy({ historySize: 1000, historyOnJoin: 50 })
  const policies = { default: base, namespaces: new Map([['big', { ...base, presence: false }]]) }
  const { hub, timer } = await setup(t, { presence, policies, presenceBatchMs: 100 })
  const members = Array.from({ length: 1000 }, (_, i) => new FakeMember(`m${i}`, `member-${i}`))
  for (const member of members) hub.join(member, 'big:stage')
  await settle()
  timer.advance(1000)
  await settle()
  t.equal(members.filter((member) => member.ofType('joined').length === 1).length, 1000, 'every join answered')
  t.ok(members.every((member) => (member.ofType('joined')[0]?.members as string[]).length === 0), 'joined.members is [] for every one')
  for (const member of members.slice(0, 500)) hub.leave(member, 'big:stage')
  timer.advance(1000)
  await settle()
  t.equal(members.reduce((sum, member) => sum + member.ofType('presence').length, 0), 0, 'not one presence frame')
  t.same(presence.published, [], 'nothing published for other nodes')

  const other = new FakeMember('o', 'other')
  hub.join(other, 'lobby')
  hub.join(members[999] as FakeMember, 'lobby')
  await settle()
  timer.advance(1000)
  t.ok(presence.published.length > 0, 'a default room still announces joins')
})

t.test('per-room history: historyOnJoin and historySize from the room\'s policy; historySize 0 replays nothing and recovers nothing', async (t) => {
  const base = defaultPolicy({ historySize: 1000, historyOnJoin: 50 })
  const policies = { default: base, namespaces: new Map([['short', { ...base, historySize: 5, historyOnJoin: 2 }], ['none', { ...base, historySize: 0, historyOnJoin: 0 }]]) }
  const { hub, broker } = await setup(t, { policies })
  const ids = []
  for (let i = 0; i < 5; i++) ids.push((await broker.publish('short:1', 'x', `m${i}`)).id)
  const plain = new FakeMember('p')
  hub.join(plain, 'short:1')
  await settle()
  t.same(plain.texts('short:1'), ['m3', 'm4'], 'historyOnJoin 2')
  const resume = new FakeMember('r')
  hub.join(resume, 'short:1', ids[0])
  await settle()
  t.same(resume.texts('short:1'), ['m1', 'm2', 'm3', 'm4'])
  const id = (await broker.publish('none:1', 'x', 'gone')).id
  const none = new FakeMember('n')
  hub.join(none, 'none:1', id)
  await settle()
  t.equal(none.ofType('joined')[0]?.recovered, false)
  t.same(none.texts('none:1'), [])
})
