// Unit tests of lib/presence-window.ts on a manual timer: net change over a
// window, cancelling out, members live mid-window, PRESENCE_BATCH_MS=0, close.
import t, { type Test } from 'tap'
import { PresenceWindow } from '../../lib/presence-window.js'
import { FakeMember } from '../helpers/fake-member.js'
import { ManualTimer } from '../helpers/manual-timer.js'

const WINDOW_MS = 100

interface Setup {
  window: PresenceWindow<FakeMember>
  timer: ManualTimer
  /** The live members; the window reads it at each flush. */
  audience: Set<FakeMember>
  /** What `onChange` was told, one entry per call. */
  changes: Array<{ joined: string[], left: string[] }>
}

function setup (t: Test, batchMs = WINDOW_MS, live: FakeMember[] = []): Setup {
  const timer = new ManualTimer()
  const audience = new Set(live)
  const changes: Setup['changes'] = []
  const window = new PresenceWindow<FakeMember>({
    room: 'r',
    batchMs,
    audience,
    onChange: (joined, left) => changes.push({ joined, left }),
    timer
  })
  t.teardown(() => window.close())
  return { window, timer, audience, changes }
}

/** Puts `member` in the audience as the hub does when its `joined` reply is written. */
function goLive ({ window, audience }: Setup, member: FakeMember): void {
  audience.add(member)
  window.wentLive(member)
}

const presence = (joined: string[], left: string[]) => ({ type: 'presence', room: 'r', joined, left })

t.test('the net change of a window goes out once, when the window ends', async (t) => {
  const watcher = new FakeMember('w')
  const other = new FakeMember('o')
  const s = setup(t, WINDOW_MS, [watcher, other])
  const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((name) => new FakeMember(name)) as [FakeMember, FakeMember, FakeMember]
  s.window.joined(alice)
  s.window.joined(bob)
  s.window.left(carol)
  t.equal(s.timer.sets, 1, 'one timer for the window, not one per change')
  s.timer.advance(WINDOW_MS - 1)
  t.same(watcher.writes, [], 'nothing before the window ends')
  t.same(s.changes, [])
  s.timer.advance(1)
  t.same(s.changes, [{ joined: ['alice', 'bob'], left: ['carol'] }], 'the other nodes are told once')
  t.same(watcher.frames, [presence(['alice', 'bob'], ['carol'])])
  t.ok(watcher.writes[0] === other.writes[0], 'one buffer, serialised once, for every member')
  t.equal(s.timer.pending, 0)

  s.timer.advance(WINDOW_MS * 5)
  t.equal(watcher.writes.length, 1, 'a quiet room sends nothing and sets no timer')
  t.equal(s.timer.sets, 1)
  s.window.left(alice)
  t.equal(s.timer.pending, 1, 'the next change opens the next window')
  s.timer.advance(WINDOW_MS)
  t.same(watcher.frames.at(-1), presence([], ['alice']))
})

t.test('a join and a leave of one member inside a window cancel out', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  const quick = new FakeMember('quick')
  s.window.joined(quick)
  s.window.left(quick)
  const back = new FakeMember('back')
  s.window.left(back) // re-joining a room: a leave, then a join
  s.window.joined(back)
  s.timer.advance(WINDOW_MS)
  t.same(watcher.writes, [], 'no frame with nothing left in it')
  t.same(s.changes, [], 'nor anything for the other nodes')

  const stay = new FakeMember('stay')
  s.window.joined(stay)
  s.window.left(stay)
  s.window.joined(stay)
  s.timer.advance(WINDOW_MS)
  t.same(watcher.frames, [presence(['stay'], [])], 'join, leave, join: joined; the next window is not disturbed by the cancelled one')
})

t.test('members of the same name are told apart', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  const tab1 = new FakeMember('1', 'sam')
  const tab2 = new FakeMember('2', 'sam')
  s.window.joined(tab1)
  s.window.left(tab2)
  s.timer.advance(WINDOW_MS)
  t.same(watcher.frames, [presence(['sam'], ['sam'])], 'two connections, two changes')
})

t.test('a flush with nothing pending sends nothing', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  s.window.flush()
  t.same(watcher.writes, [])
  t.same(s.changes, [])
  t.equal(s.timer.sets, 0)
})

t.test('a member live inside a window gets only what came after its joined list', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  const first = new FakeMember('first')
  const second = new FakeMember('second')
  const twin = new FakeMember('twin')
  const third = new FakeMember('third')
  const gone = new FakeMember('gone')
  s.window.joined(first)
  goLive(s, first) // its members list had first
  s.window.joined(second)
  s.window.joined(twin)
  goLive(s, second) // its members list had first, second and twin
  goLive(s, twin)
  s.window.joined(third) // still catching up: not in the audience
  s.window.left(gone)
  s.timer.advance(WINDOW_MS)

  t.same(watcher.frames, [presence(['first', 'second', 'twin', 'third'], ['gone'])], 'live before the window: the whole net change')
  t.same(first.frames, [presence(['second', 'twin', 'third'], ['gone'])], 'never its own join')
  t.same(second.frames, [presence(['third'], ['gone'])])
  t.same(twin.frames, second.frames)
  t.ok(second.writes[0] === twin.writes[0], 'live since the same change: one shared buffer')
  t.same(third.writes, [], 'not live, not told')
  t.same(s.changes, [{ joined: ['first', 'second', 'twin', 'third'], left: ['gone'] }], 'the other nodes get the whole net change')

  s.window.left(watcher)
  s.timer.advance(WINDOW_MS)
  t.same(first.frames.at(-1), presence([], ['w']), 'the mark lasts one window: the next is shared in full')
  t.ok(first.writes.at(-1) === second.writes.at(-1))
})

t.test('a member live after everything in its window gets nothing from it', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  const alice = new FakeMember('alice')
  const quick = new FakeMember('quick')
  s.window.joined(alice)
  goLive(s, alice)
  s.window.joined(quick)
  s.window.left(quick) // after alice's joined list, but cancelled
  s.timer.advance(WINDOW_MS)
  t.same(watcher.frames, [presence(['alice'], [])])
  t.same(alice.writes, [], 'its own join was in its members list; the rest cancelled out')
})

t.test('a member that goes live before any change of the window gets the shared frame', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  const early = new FakeMember('early')
  goLive(s, early) // joined in an earlier window, went live in a quiet one
  const bob = new FakeMember('bob')
  s.window.joined(bob)
  s.timer.advance(WINDOW_MS)
  t.same(early.frames, [presence(['bob'], [])])
  t.ok(early.writes[0] === watcher.writes[0])
})

t.test('a member that leaves and comes back inside the window is told what its second members list missed', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  const alice = new FakeMember('alice')
  s.window.joined(alice)
  goLive(s, alice)
  s.audience.delete(alice)
  s.window.left(alice)
  s.window.joined(alice) // back in the same window: catching up again
  const bob = new FakeMember('bob')
  s.window.joined(bob)
  goLive(s, alice)
  const carol = new FakeMember('carol')
  s.window.joined(carol)
  s.timer.advance(WINDOW_MS)
  t.same(watcher.frames, [presence(['alice', 'bob', 'carol'], [])])
  t.same(alice.frames, [presence(['carol'], [])], 'its second members list had bob, not carol')
})

t.test('PRESENCE_BATCH_MS=0 sends each change at once, with no timer', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, 0, [watcher])
  const alice = new FakeMember('alice')
  s.window.joined(alice)
  t.same(watcher.frames, [presence(['alice'], [])], 'synchronously')
  t.same(s.changes, [{ joined: ['alice'], left: [] }])
  goLive(s, alice)
  s.audience.delete(watcher) // as the hub does: out of the room, then the leave
  s.window.left(watcher)
  t.same(alice.frames, [presence([], ['w'])], 'never its own join')
  t.same(watcher.frames, [presence(['alice'], [])])
  t.equal(s.timer.sets, 0)
})

t.test('flush sends at once and cancels the window\'s timer (the last member leaving)', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  const alice = new FakeMember('alice')
  s.window.joined(alice)
  s.audience.delete(watcher)
  s.window.left(watcher)
  t.equal(s.timer.pending, 1)
  s.window.flush()
  t.same(s.changes, [{ joined: ['alice'], left: ['w'] }], 'the other nodes get the last changes without waiting')
  t.same(watcher.writes, [], 'no longer in the audience')
  t.equal(s.timer.pending, 0, 'the timer is cancelled')
  s.timer.advance(WINDOW_MS * 2)
  t.equal(s.changes.length, 1, 'and nothing is sent twice')
})

t.test('close clears the timer and sets no other; an explicit flush still sends', async (t) => {
  const watcher = new FakeMember('w')
  const s = setup(t, WINDOW_MS, [watcher])
  const alice = new FakeMember('alice')
  s.window.joined(alice)
  t.equal(s.timer.pending, 1)
  s.window.close()
  t.equal(s.timer.pending, 0)
  s.timer.advance(WINDOW_MS * 2)
  t.same(watcher.writes, [], 'the window never ends by itself')
  const bob = new FakeMember('bob')
  s.window.joined(bob)
  t.equal(s.timer.pending, 0, 'no new timer after close')
  t.equal(s.timer.sets, 1)
  s.window.flush()
  t.same(watcher.frames, [presence(['alice', 'bob'], [])])
  s.window.close()
  t.pass('closing twice is harmless')
})

t.test('the system timer is the default', async (t) => {
  const watcher = new FakeMember('w')
  const window = new PresenceWindow<FakeMember>({ room: 'r', batchMs: 60_000, audience: [watcher], onChange: () => {} })
  window.joined(new FakeMember('alice'))
  window.close() // an unref'd timer would not hold the test open anyway; close cancels it
  window.flush()
  t.same(watcher.frames, [presence(['alice'], [])])
})
