// The verifier alone (lib/auth/token-verifier.ts): key rotation through a
// real JWKS endpoint on loopback, fetch throttling and timeouts, the TTL cap.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { TOKEN_MAX_BYTES, TokenVerifier } from '../../../lib/auth/token-verifier.js'
import { hsToken, JwksServer, keyToken, nowS, signingKey, TEST_JWT_SECRET } from '../../helpers/tokens.js'
import { sleep } from '../../helpers/wait.js'

const base = { clockToleranceS: 10, maxTokenTtlS: 3600 }

t.test('key rotation: a new kid is fetched after the cooldown; a removed key stops being trusted on refetch', async (t) => {
  const first = await signingKey('RS256', 'k1')
  const second = await signingKey('EdDSA', 'k2')
  const jwks = await JwksServer.start(t, [first])
  const verifier = new TokenVerifier({ ...base, jwksUrl: jwks.url, audience: 'chat', jwksCooldownMs: 200 })
  t.match(await verifier.verify(await keyToken(first, { sub: 'a', aud: 'chat' })), { ok: true, identity: { user: 'a' } })
  jwks.keys = [first.jwk, second.jwk]
  const early = await verifier.verify(await keyToken(second, { sub: 'b', aud: 'chat' }))
  t.match(early, { ok: false, reason: 'unavailable' }, 'within the cooldown: try again later')
  t.equal(jwks.fetches, 1, 'no fetch during the cooldown')
  await sleep(250)
  t.match(await verifier.verify(await keyToken(second, { sub: 'b', aud: 'chat' })), { ok: true, identity: { user: 'b' } }, 'after it: the new key is fetched')
  t.equal(jwks.fetches, 2)
  await sleep(250)
  const stranger = await signingKey('ES256', 'k3')
  t.match(await verifier.verify(await keyToken(stranger, { sub: 'c', aud: 'chat' })), { ok: false, reason: 'unknown_key' }, 'a kid still missing after a fresh fetch is invalid')
})

t.test('key set down, or slow: unavailable, and no fetch storm', async (t) => {
  const key = await signingKey('ES256', 'k1')
  const jwks = await JwksServer.start(t, [key])
  jwks.down = true
  const verifier = new TokenVerifier({ ...base, jwksUrl: jwks.url, audience: 'chat' })
  const token = await keyToken(key, { sub: 'a', aud: 'chat' })
  t.match(await verifier.verify(token), { ok: false, reason: 'unavailable' })
  t.match(await verifier.verify(token), { ok: false, reason: 'unavailable' })
  t.equal(jwks.fetches, 1, 'a second token right after a failure does not fetch again')
  jwks.down = false
  await sleep(1050)
  t.match(await verifier.verify(token), { ok: true }, 'back once the endpoint is')

  const sockets = new Set<import('node:net').Socket>()
  const silent = http.createServer(() => {})
  silent.on('connection', (socket) => sockets.add(socket))
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const socket of sockets) socket.destroy(); silent.close() })
  const slow = new TokenVerifier({ ...base, jwksUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`, audience: 'chat', jwksTimeoutMs: 200 })
  const started = Date.now()
  t.match(await slow.verify(token), { ok: false, reason: 'unavailable' }, 'a hung endpoint times out')
  t.ok(Date.now() - started < 2000, 'quickly')
})

t.test('HS256: TTL cap, tolerance, oversize, sub length, identity', async (t) => {
  let now = Date.now()
  const verifier = new TokenVerifier({ ...base, secret: TEST_JWT_SECRET, now: () => now })
  t.equal(verifier.enabled, true)
  t.equal(new TokenVerifier(base).enabled, false)
  const exp = nowS() + 100
  t.match(await verifier.verify(await hsToken({ sub: 'a', name: 'A', exp, iat: 5 })), { ok: true, identity: { user: 'a', name: 'A', exp, iat: 5 } })
  t.match(await verifier.verify(await hsToken({ sub: 'a', iat: undefined })), { ok: true, identity: { iat: undefined } })
  t.match(await verifier.verify(await hsToken({ sub: 'a', exp: nowS() + 3600 + 11 })), { ok: false, reason: 'ttl' })
  t.match(await verifier.verify(await hsToken({ sub: 'a', exp: nowS() + 3600 })), { ok: true })
  t.match(await verifier.verify(await hsToken({ sub: 'x'.repeat(129) })), { ok: false, reason: 'claims' })
  t.match(await verifier.verify(await hsToken({ sub: '' })), { ok: false, reason: 'claims' })
  t.match(await verifier.verify('a'.repeat(TOKEN_MAX_BYTES + 1)), { ok: false, reason: 'oversize' })
  t.match(await verifier.verify('é'.repeat(TOKEN_MAX_BYTES / 2 + 1)), { ok: false, reason: 'oversize' }, 'counted in bytes')
  const token = await hsToken({ sub: 'a', exp })
  now = (exp + 9) * 1000
  t.match(await verifier.verify(token), { ok: true }, 'inside the leeway')
  now = (exp + 11) * 1000
  t.match(await verifier.verify(token), { ok: false, reason: 'expired' }, 'past it')
  t.match(await verifier.verify('e30.e30'), { ok: false, reason: 'malformed' }, 'two segments')
  const rs = await signingKey('RS256', 'k')
  t.match(await verifier.verify(await keyToken(rs, { sub: 'a' })), { ok: false, reason: 'algorithm' }, 'RS256 without a key set')
})
