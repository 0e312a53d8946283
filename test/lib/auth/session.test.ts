// TokenSession (lib/auth/session.ts): expiresIn arithmetic and the one expiry timer, on a manual timer.
import t from 'tap'
import { TokenSession } from '../../../lib/auth/session.js'
import { ManualTimer } from '../../helpers/manual-timer.js'

t.test('expires at exp + leeway; a renewal moves the one timer; stop clears it', async (t) => {
  const timer = new ManualTimer()
  let now = 1_000_000
  let expired = 0
  const session = new TokenSession({ user: 'a', name: 'a', exp: 1010, iat: undefined }, { clockToleranceS: 5, now: () => now, timer, onExpired: () => { expired++ } })
  t.equal(session.expiresIn, 10)
  now = 1_009_400
  t.equal(session.expiresIn, 0, 'whole seconds, rounded down')
  now = 1_012_000
  t.equal(session.expiresIn, 0, 'never negative')
  timer.advance(14_999)
  t.equal(expired, 0)
  session.renew({ user: 'a', name: 'a', exp: 1100, iat: undefined })
  t.equal(timer.pending, 1, 'one timer per connection')
  timer.advance(1)
  t.equal(expired, 0, 'the old deadline is gone')
  timer.advance(105_000)
  t.equal(expired, 1)
  t.throws(() => session.renew({ user: 'b', name: 'b', exp: 2000, iat: undefined }))
  session.renew({ user: 'a', name: 'a', exp: 2000, iat: undefined })
  session.stop()
  t.equal(timer.pending, 0)
})
