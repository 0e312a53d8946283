// The typing indicator's parts (public/typing.js), run in Node: the throttle
// of outgoing `typing` signals, who is shown as typing and for how long, and
// the sentence. The page binding (public/typing-indicator.js) runs in Chromium (test/e2e/typing-readonly.test.ts).
import t from 'tap'
import { TYPING_SHOWN_MS, TYPING_SIGNAL_INTERVAL_MS, TypingThrottle, TypingTracker, typingPhrase } from '../../public/typing.js'
import { ManualTimer } from '../helpers/manual-timer.js'

t.test('the throttle lets one signal per room through per interval; a sent message resets it', async (t) => {
  let now = 1000
  const throttle = new TypingThrottle(() => now)
  t.equal(throttle.take('a'), true, 'the first keystroke signals')
  t.equal(throttle.take('a'), false, 'the next ones within the interval do not')
  t.equal(throttle.take('b'), true, 'rooms are apart')
  now += TYPING_SIGNAL_INTERVAL_MS - 1
  t.equal(throttle.take('a'), false)
  now += 1
  t.equal(throttle.take('a'), true, 'one again after the interval')
  throttle.reset('a')
  t.equal(throttle.take('a'), true, 'a new message signals at once')
  // Well inside the server's signal bucket (5/s, burst 10): a minute of typing.
  let sent = 0
  for (let ms = 0; ms < 60_000; ms += 50) {
    now += 50
    if (throttle.take('c')) sent++
  }
  t.ok(sent <= 60_000 / TYPING_SIGNAL_INTERVAL_MS + 1, `${sent} signals in a minute of typing`)
})

t.test('the tracker shows a member for TYPING_SHOWN_MS after its last signal, or until its message', async (t) => {
  const timer = new ManualTimer()
  const changes: string[] = []
  const tracker = new TypingTracker((room) => changes.push(room), timer)
  const bob = TypingTracker.keyOf({ from: 'Bob', user: 'bob' })
  const guest = TypingTracker.keyOf({ from: 'guest-1' })
  t.equal(bob, 'user:bob')
  t.equal(guest, 'name:guest-1')
  t.not(TypingTracker.keyOf({ from: 'bob' }), bob, 'a guest named like a user is someone else')

  tracker.typing('r', bob, 'Bob')
  tracker.typing('r', guest, 'guest-1')
  t.same(tracker.names('r'), ['Bob', 'guest-1'])
  t.same(changes, ['r', 'r'])
  timer.advance(TYPING_SHOWN_MS - 1000)
  tracker.typing('r', bob, 'Bob')
  t.same(changes, ['r', 'r'], 'a repeated signal changes nothing on screen')
  timer.advance(1000)
  t.same(tracker.names('r'), ['Bob'], 'the guest ran out; Bob signalled again since')
  timer.advance(TYPING_SHOWN_MS - 1000)
  t.same(tracker.names('r'), [], 'and then Bob')
  t.equal(timer.pending, 0, 'no timer left behind')

  // A message ends it at once, matched by user id when signed in (whatever the name), else by name.
  tracker.typing('r', bob, 'Bob')
  tracker.typing('r', guest, 'guest-1')
  tracker.typing('s', guest, 'guest-1')
  tracker.stopped('r', TypingTracker.keyOf({ from: 'Robert', user: 'bob' }))
  t.same(tracker.names('r'), ['guest-1'])
  tracker.stopped('r', TypingTracker.keyOf({ from: 'guest-1' }))
  t.same(tracker.names('r'), [])
  t.same(tracker.names('s'), ['guest-1'], 'only in that room')
  const before = changes.length
  tracker.stopped('r', guest)
  tracker.stopped('nowhere', guest)
  t.equal(changes.length, before, 'stopping someone not shown changes nothing')

  tracker.typing('t', bob, 'Bob')
  tracker.clear('s')
  tracker.clear('s')
  t.same(tracker.names('s'), [])
  tracker.clearAll()
  t.same(tracker.names('t'), [])
  t.equal(timer.pending, 0)
})

t.test('the sentence: one, two, or how many', async (t) => {
  t.same(typingPhrase([]), [])
  t.same(typingPhrase(['a']), [{ name: 'a' }, ' is typing'])
  t.same(typingPhrase(['a', 'b']), [{ name: 'a' }, ' and ', { name: 'b' }, ' are typing'])
  t.same(typingPhrase(['a', 'b', 'c']), ['3 people are typing'])
  t.same(typingPhrase(['\u202Eevil', 'b']).filter((piece) => typeof piece !== 'string'), [{ name: '\u202Eevil' }, { name: 'b' }],
    'names stay separate pieces, for <bdi>')
})
