// Revocations (lib/auth/revocations.ts) on an injected clock.
import t from 'tap'
import { Revocations } from '../../../lib/auth/revocations.js'

t.test('tokens issued up to the revocation second, or without iat, are revoked for maxTokenTtlS', async (t) => {
  let now = 1_000_500
  const revocations = new Revocations({ maxTokenTtlS: 60, now: () => now })
  t.equal(revocations.isRevoked('a', 1000), false, 'nothing revoked yet')
  revocations.revoke('a')
  t.equal(revocations.isRevoked('a', 999), true, 'issued before')
  t.equal(revocations.isRevoked('a', 1000), true, 'issued in the same second: may predate it')
  t.equal(revocations.isRevoked('a', 1001), false, 'issued after')
  t.equal(revocations.isRevoked('a', undefined), true, 'no iat')
  t.equal(revocations.isRevoked('b', undefined), false, 'another user')
  revocations.revoke('a', 900_000)
  t.equal(revocations.isRevoked('a', 1000), true, 'an older revocation does not replace a newer one')
  now += 60_001
  t.equal(revocations.isRevoked('a', undefined), false, 'forgotten once no such token can be valid')
  t.equal(revocations.size, 0)
})

t.test('bounded: expired entries are pruned, and the oldest beyond max go first', async (t) => {
  let now = 0
  const revocations = new Revocations({ maxTokenTtlS: 10, now: () => now, max: 3 })
  for (const user of ['a', 'b', 'c', 'd']) revocations.revoke(user)
  t.equal(revocations.size, 3)
  t.same([...revocations.entries()].map(([user]) => user), ['b', 'c', 'd'])
  now = 20_000
  revocations.revoke('e')
  t.same([...revocations.entries()].map(([user]) => user), ['e'], 'run-out revocations are dropped on the next one')
})
