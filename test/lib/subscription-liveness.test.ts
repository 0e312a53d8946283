// Unit tests of lib/subscription-liveness.ts: time is a number the test moves
// on, so every judgement is exact. Window: 300 ms (3 probes of 100 ms).
import t from 'tap'
import { SubscriptionLiveness } from '../../lib/subscription-liveness.js'

const WINDOW_MS = 300

t.test('not ready until a probe has come back, however much else arrives', async (t) => {
  const liveness = new SubscriptionLiveness(WINDOW_MS, 0)
  t.equal(liveness.staleReason(0), 'no readiness probe has come back through Redis yet')
  t.equal(liveness.staleReason(0, 'through the Redis master 127.0.0.1:7001'), 'no readiness probe has come back through the Redis master 127.0.0.1:7001 yet')
  liveness.messageArrived(50)
  t.equal(liveness.staleReason(60), 'no readiness probe has come back through Redis yet')
  liveness.probeReturned(100)
  t.equal(liveness.staleReason(100), undefined)
})

t.test('a probe queued behind a backlog: messages still arriving keep the subscription alive', async (t) => {
  const liveness = new SubscriptionLiveness(WINDOW_MS, 0)
  liveness.probeReturned(100)
  // From 100 on, probes are stuck behind a backlog: only room messages arrive, every 200 ms.
  for (let now = 300; now <= 5000; now += 200) {
    liveness.messageArrived(now)
    t.equal(liveness.staleReason(now + 199), undefined, `alive at ${now + 199}`)
    t.notOk(liveness.isDead(now + 199), `not dropped at ${now + 199}`)
  }
})

t.test('silence past the window: unready, and dead once not resubscribed within the window', async (t) => {
  const liveness = new SubscriptionLiveness(WINDOW_MS, 0)
  liveness.probeReturned(100)
  liveness.messageArrived(200)
  t.equal(liveness.staleReason(500), undefined, 'exactly the window: still alive')
  t.notOk(liveness.isDead(500))
  t.equal(liveness.staleReason(501), 'nothing has come back through Redis for 301 ms (the last readiness probe 401 ms ago)')
  t.ok(liveness.isDead(501))
})

t.test('a resubscribed subscription gets a full window before it is dropped again, but readiness does not wait', async (t) => {
  const liveness = new SubscriptionLiveness(WINDOW_MS, 0)
  liveness.probeReturned(100)
  t.ok(liveness.isDead(1000))
  liveness.resubscribed(1000)
  t.notOk(liveness.isDead(1300), 'within the window after resubscribing')
  t.ok(liveness.isDead(1301), 'a window after resubscribing, with nothing back')
  t.match(liveness.staleReason(1100), /nothing has come back .* for 1000 ms/, 'readiness judges by what came back')
})

t.test('a subscription that never returned a probe is judged from when it was made', async (t) => {
  const liveness = new SubscriptionLiveness(WINDOW_MS, 1000)
  t.notOk(liveness.isDead(1300))
  t.ok(liveness.isDead(1301))
  liveness.messageArrived(1350)
  t.notOk(liveness.isDead(1600), 'a message is progress too')
})
