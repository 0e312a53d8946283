// Unit tests of lib/rate-limiter.ts with an injected clock.
import t from 'tap'
import { TokenBucket } from '../../lib/rate-limiter.js'

function clock () {
  let now = 1000
  return { now: () => now, advance (ms: number) { now += ms } }
}

function takeAll (bucket: TokenBucket, tries: number): number {
  let taken = 0
  for (let i = 0; i < tries; i++) if (bucket.take()) taken++
  return taken
}

t.test('a full burst, then nothing until time passes', async (t) => {
  const time = clock()
  const bucket = new TokenBucket(2, 5, time.now)
  t.equal(takeAll(bucket, 100), 5, 'the burst')
  t.equal(bucket.take(), false)
  time.advance(499)
  t.equal(bucket.take(), false, 'not yet a whole token after 499 ms at 2/s')
  time.advance(1)
  t.equal(bucket.take(), true, 'one token after 500 ms')
  t.equal(bucket.take(), false)
})

t.test('refill at the rate, capped at the burst', async (t) => {
  const time = clock()
  const bucket = new TokenBucket(10, 4, time.now)
  takeAll(bucket, 4)
  time.advance(250)
  t.equal(takeAll(bucket, 100), 2, '10/s for 250 ms is 2 tokens (and a half)')
  time.advance(50)
  t.equal(takeAll(bucket, 100), 1, 'the half token carried over')
  time.advance(60_000)
  t.equal(takeAll(bucket, 100), 4, 'a long idle refills only up to the burst')
})

t.test('steady sending at the rate is never refused', async (t) => {
  const time = clock()
  const bucket = new TokenBucket(20, 1, time.now)
  for (let i = 0; i < 200; i++) {
    t.equal(bucket.take(), true, `send ${i}`)
    time.advance(50)
  }
})

t.test('a refused attempt does not cost a token', async (t) => {
  const time = clock()
  const bucket = new TokenBucket(1, 1, time.now)
  t.equal(bucket.take(), true)
  // Steps of 125 ms add up exactly in binary floating point.
  for (let i = 0; i < 8; i++) {
    t.equal(bucket.take(), false)
    time.advance(125)
  }
  t.equal(bucket.take(), true, '1000 ms after the first take, despite eight refusals in between')
})

t.test('the default clock is real time', async (t) => {
  const bucket = new TokenBucket(1, 2)
  t.equal(takeAll(bucket, 10), 2)
})
