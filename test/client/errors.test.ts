// The page's words for refusals (public/errors.js), run in Node: a `forbidden`
// is explained by what was refused (found by the frame's ref), where, and the
// room's policy when the server published it.
import t from 'tap'
import { ChatError } from '../../public/chat-client.js'
import { describeError } from '../../public/errors.js'
import { OPEN_POLICY, type PagePolicy } from '../../public/limits.js'

const policy = (fields: Partial<PagePolicy>): PagePolicy => ({ ...OPEN_POLICY, ...fields })
const forbidden = (operation: 'join' | 'send' | 'signal', room = 'support:42') => new ChatError('forbidden', 'not granted', { room, operation, ref: 'c1' })

t.test('a refused join says the room and why, in plain words', async (t) => {
  t.equal(describeError(forbidden('join'), { policy: policy({ join: 'granted' }), signedIn: true }),
    'You are not allowed to join support:42 — your sign-in does not grant it.')
  t.equal(describeError(forbidden('join'), { policy: policy({ join: 'granted' }), signedIn: false }),
    'You are not allowed to join support:42 — it needs a sign-in that grants access to it.')
  t.equal(describeError(forbidden('join'), { policy: policy({ join: 'authenticated' }) }),
    'You are not allowed to join support:42 — it is for signed-in users only; sign in first.')
  t.equal(describeError(forbidden('join'), { policy: policy({ join: 'authenticated' }), signedIn: true }),
    'You are not allowed to join support:42 — the room\'s rules do not let you in.')
  t.equal(describeError(forbidden('join', 'inbox:alice'), { policy: policy({ join: 'owner' }), signedIn: true }),
    'You are not allowed to join inbox:alice — it is a personal room, open only to its owner.')
  t.equal(describeError(forbidden('join'), { signedIn: true }), 'You are not allowed to join support:42 — your sign-in does not grant it.', 'no policy known')
  t.equal(describeError(forbidden('join')), 'You are not allowed to join support:42 — the room\'s rules do not let guests in; sign in first.')
})

t.test('a refused message or signal says so', async (t) => {
  t.equal(describeError(forbidden('send', 'news'), { policy: policy({ send: 'none' }) }),
    'You cannot post in news — it is read-only: only announcements are posted here.')
  t.equal(describeError(forbidden('send'), { policy: policy({ send: 'granted' }), signedIn: true }),
    'You cannot post in support:42 — your sign-in does not grant posting here.')
  t.equal(describeError(forbidden('send'), { policy: policy({ send: 'granted' }) }),
    'You cannot post in support:42 — posting here needs a sign-in that grants it.')
  t.equal(describeError(forbidden('signal'), { policy: policy({ send: 'none' }) }), 'You cannot send signals in support:42 — it is read-only.')
  t.equal(describeError(forbidden('signal'), { policy: policy({ signals: false }) }), 'You cannot send signals in support:42 — the room does not allow them.')
  t.equal(describeError(forbidden('signal')), 'You cannot send signals in support:42 — you may not post here.')
  t.equal(describeError(new ChatError('forbidden', 'no')), 'You cannot post in this room — posting here needs a sign-in that grants it.', 'neither room nor operation known')
})

t.test('the other codes keep their words', async (t) => {
  t.match(describeError(new ChatError('rate_limited', 'slow')), /^Slow down/)
  t.equal(describeError(new Error('boom')), 'Something went wrong. Please try again.')
})
