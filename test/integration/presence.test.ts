// Presence over real sockets (PROTOCOL §3, §5): who is told of joins and
// leaves, never of their own join, and how a window's changes are gathered.
import t from 'tap'
import { sleep } from '../helpers/wait.js'
import { startServer } from '../helpers/server.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

function presence (client: TestClient, room: string): Frame[] {
  return client.frames.filter((f) => f.type === 'presence' && f.room === room)
}

function mentions (frame: Frame, name: string): boolean {
  return (frame.joined as string[]).includes(name) || (frame.left as string[]).includes(name)
}

t.test('join, leave and disconnect are told to the others, never to oneself', async (t) => {
  const server = await startServer(t, { PRESENCE_BATCH_MS: '50' })
  const alice = await TestClient.open(t, server.wsUrl, 'alice')
  const bob = await TestClient.open(t, server.wsUrl, 'bob')
  const carol = await TestClient.open(t, server.wsUrl, 'carol')

  const aliceJoined = await alice.join('room')
  t.same(aliceJoined.members, ['alice'], 'members include the joining client')

  const bobJoined = await bob.join('room')
  t.same([...(bobJoined.members as string[])].sort(), ['alice', 'bob'], 'bob sees alice and himself in members')
  const joinedBob = await alice.next((f) => f.type === 'presence', 'presence: bob joined')
  t.same(joinedBob, { type: 'presence', room: 'room', joined: ['bob'], left: [] })

  // Bob's own join must not come back to him, even after the window.
  await sleep(100)
  await bob.barrier()
  t.same(presence(bob, 'room'), [], 'bob is not told of his own join')

  const aliceFrom = alice.frames.length
  bob.send({ type: 'leave', room: 'room' })
  await bob.next((f) => f.type === 'left' && f.room === 'room', 'left')
  const leftBob = await alice.next((f) => f.type === 'presence', 'presence: bob left', aliceFrom)
  t.same(leftBob, { type: 'presence', room: 'room', joined: [], left: ['bob'] })
  await bob.barrier()
  t.notOk(bob.frames.some((f) => f.type === 'presence' && mentions(f, 'bob')), 'bob never sees his own name in presence')

  // A dropped connection leaves too.
  await carol.join('room')
  await alice.next((f) => f.type === 'presence' && mentions(f, 'carol'), 'presence: carol joined')
  const beforeDrop = alice.frames.length
  carol.socket.terminate()
  const dropped = await alice.next((f) => f.type === 'presence', 'presence: carol gone', beforeDrop)
  t.same(dropped, { type: 'presence', room: 'room', joined: [], left: ['carol'] })
  const again = await alice.join('room')
  t.same(again.members, ['alice'], 'members are up to date')
})

t.test('many joins within PRESENCE_BATCH_MS arrive as one frame', async (t) => {
  const BATCH_MS = 400
  const server = await startServer(t, { PRESENCE_BATCH_MS: String(BATCH_MS) })
  const watcher = await TestClient.open(t, server.wsUrl, 'watcher')
  await watcher.join('room')
  await sleep(BATCH_MS + 100) // the watcher's own window is over

  const names = ['j1', 'j2', 'j3', 'j4', 'j5', 'j6', 'j7', 'j8']
  const joiners = await Promise.all(names.map((name) => TestClient.open(t, server.wsUrl, name)))
  const from = watcher.frames.length
  for (const joiner of joiners) joiner.send({ type: 'join', room: 'room' })
  const batch = await watcher.next((f) => f.type === 'presence', 'one presence frame', from, BATCH_MS * 10)
  t.same([...(batch.joined as string[])].sort(), names, 'every join in the one frame')
  t.same(batch.left, [])

  // Nothing more comes for the watcher after the window.
  await sleep(BATCH_MS + 100)
  await watcher.barrier()
  t.equal(presence(watcher, 'room').length, 1, 'exactly one presence frame for eight joins')

  // Each joiner knows the whole room (members plus what came after) but never itself.
  for (const [index, joiner] of joiners.entries()) {
    const name = names[index] as string
    await joiner.barrier()
    const joined = joiner.ofType('joined')[0] as Frame
    const frames = presence(joiner, 'room')
    t.notOk(frames.some((f) => mentions(f, name)), `${name} is not told of its own join`)
    t.ok(frames.length <= 1, `${name} got at most one presence frame`)
    const known = new Set([...(joined.members as string[]), ...frames.flatMap((f) => f.joined as string[])])
    t.same([...known].sort(), ['watcher', ...names].sort(), `${name} knows everyone in the room`)
  }
})

t.test('a join and a leave inside one window cancel out', async (t) => {
  const BATCH_MS = 300
  const server = await startServer(t, { PRESENCE_BATCH_MS: String(BATCH_MS) })
  const watcher = await TestClient.open(t, server.wsUrl, 'watcher')
  const flicker = await TestClient.open(t, server.wsUrl, 'flicker')
  const steady = await TestClient.open(t, server.wsUrl, 'steady')
  await watcher.join('room')
  await sleep(BATCH_MS + 100)

  const from = watcher.frames.length
  flicker.send({ type: 'join', room: 'room' })
  flicker.send({ type: 'leave', room: 'room' })
  await flicker.next((f) => f.type === 'left', 'flicker left')
  await sleep(BATCH_MS + 100)
  await watcher.barrier()
  t.same(watcher.frames.slice(from).filter((f) => f.type === 'presence'), [], 'no frame with nothing left in it')

  // The next change is reported alone.
  steady.send({ type: 'join', room: 'room' })
  const next = await watcher.next((f) => f.type === 'presence', 'presence: steady', from, BATCH_MS * 10)
  t.same(next, { type: 'presence', room: 'room', joined: ['steady'], left: [] })
})

t.test('PRESENCE_BATCH_MS=0 sends each change at once', async (t) => {
  const server = await startServer(t, { PRESENCE_BATCH_MS: '0' })
  const watcher = await TestClient.open(t, server.wsUrl, 'watcher')
  const bob = await TestClient.open(t, server.wsUrl, 'bob')
  const carol = await TestClient.open(t, server.wsUrl, 'carol')
  await watcher.join('room')
  const from = watcher.frames.length
  bob.send({ type: 'join', room: 'room' })
  carol.send({ type: 'join', room: 'room' })
  await watcher.until((frames) => frames.slice(from).filter((f) => f.type === 'presence').length >= 2, 'two presence frames')
  const frames = watcher.frames.slice(from).filter((f) => f.type === 'presence')
  t.same(frames.map((f) => f.joined).sort(), [['bob'], ['carol']], 'one frame per join')
  await bob.barrier()
  await carol.barrier()
  t.notOk(bob.frames.some((f) => f.type === 'presence' && mentions(f, 'bob')), 'bob not told of his own join')
  t.notOk(carol.frames.some((f) => f.type === 'presence' && mentions(f, 'carol')), 'carol not told of her own join')

  const beforeLeave = watcher.frames.length
  bob.send({ type: 'leave', room: 'room' })
  const left = await watcher.next((f) => f.type === 'presence', 'presence: bob left', beforeLeave)
  t.same(left, { type: 'presence', room: 'room', joined: [], left: ['bob'] })
})

t.test('presence is per room', async (t) => {
  const server = await startServer(t, { PRESENCE_BATCH_MS: '0' })
  const alice = await TestClient.open(t, server.wsUrl, 'alice')
  const bob = await TestClient.open(t, server.wsUrl, 'bob')
  await alice.join('one')
  await bob.join('two')
  await sleep(50)
  await alice.barrier()
  t.same(presence(alice, 'two'), [], 'not told of joins in rooms it is not in')
  t.same(presence(alice, 'one'), [])
})
