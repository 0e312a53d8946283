// Token transport and log redaction: offered-token.ts, log-redaction.ts, close-reason.ts, identity.ts.
import t from 'tap'
import { displayNameFor } from '../../../lib/auth/identity.js'
import { chooseProtocol, offeredToken } from '../../../lib/auth/offered-token.js'
import { CLOSE_REASON_MAX_BYTES, fitCloseReason } from '../../../lib/close-reason.js'
import { redactTokens, withTokenRedaction } from '../../../lib/log-redaction.js'

t.test('offeredToken: subprotocol, query, both, conflicts', async (t) => {
  t.same(offeredToken(undefined, undefined), { kind: 'none' })
  t.same(offeredToken('chat', undefined), { kind: 'none' })
  t.same(offeredToken('chat, bearer.abc', undefined), { kind: 'token', token: 'abc' })
  t.same(offeredToken(undefined, 'abc'), { kind: 'token', token: 'abc' })
  t.same(offeredToken('chat, bearer.abc', 'abc'), { kind: 'token', token: 'abc' })
  t.same(offeredToken('chat, bearer.abc', 'xyz'), { kind: 'conflict' })
  t.same(offeredToken('bearer.abc, bearer.xyz', undefined), { kind: 'conflict' })
  t.same(offeredToken(undefined, ['abc', 'xyz']), { kind: 'conflict' })
  t.same(offeredToken(undefined, ''), { kind: 'token', token: '' }, 'an empty token is offered, and will fail')
  t.equal(chooseProtocol(new Set(['chat', 'bearer.abc'])), 'chat')
  t.equal(chooseProtocol(new Set(['bearer.abc'])), false, 'the token is never the answer')
})

t.test('redaction of URLs, subprotocols and bare JWTs', async (t) => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl'
  t.equal(redactTokens(`/ws?name=a&token=${jwt}&x=1`), '/ws?name=a&token=[redacted]&x=1')
  t.equal(redactTokens('/ws?TOKEN=secret'), '/ws?TOKEN=[redacted]')
  t.equal(redactTokens('chat, bearer.opaque-token'), 'chat, bearer.[redacted]')
  t.equal(redactTokens(`said ${jwt} here`), 'said [redacted] here')
  t.equal(redactTokens('/ws?name=tokenizer'), '/ws?name=tokenizer', 'other parameters untouched')
  t.equal(withTokenRedaction(false), false)
  t.equal(withTokenRedaction(undefined), false)
  const options = withTokenRedaction<{ level: string }>({ level: 'info' })
  t.ok(options !== false && options.level === 'info' && 'req' in (options as unknown as { serializers: object }).serializers)
})

t.test('close reasons fit in 123 bytes without splitting a character', async (t) => {
  t.equal(fitCloseReason('short'), 'short')
  const cut = fitCloseReason('é'.repeat(100))
  t.ok(Buffer.byteLength(cut) <= CLOSE_REASON_MAX_BYTES)
  t.equal(cut, 'é'.repeat(61))
})

t.test('display names: name claim, else sub, else user-<hash>', async (t) => {
  t.equal(displayNameFor('alice', ' Alice '), 'Alice')
  t.equal(displayNameFor('alice', 'a\u0000b'), 'alice')
  t.equal(displayNameFor('alice', undefined), 'alice')
  t.match(displayNameFor('x'.repeat(33), 'y'.repeat(33)), /^user-[0-9a-f]{8}$/)
  t.equal(displayNameFor('x'.repeat(33), null), displayNameFor('x'.repeat(33), 5), 'the hash depends on sub only')
})

t.test('a Fastify logger built with the redaction: request logs, child loggers and 404 messages carry no token', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { Writable } = await import('node:stream')
  let out = ''
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { out += chunk.toString(); done() } })
  const app = Fastify({ logger: withTokenRedaction({ level: 'info', stream }) })
  app.get('/x', async (request) => {
    request.log.info('quoted /ws?token=abc.def.ghi in a message')
    request.log.child({}).warn('offered bearer.secret-one')
    return {}
  })
  t.teardown(() => app.close())
  await app.inject('/x?token=first-secret')
  await app.inject('/nowhere?token=second-secret')
  for (const secret of ['abc.def', 'secret-one', 'first-secret', 'second-secret']) t.notMatch(out, secret, `${secret} is not logged`)
  t.match(out, /"url":"\/x\?token=\[redacted\]"/, 'the request is still logged')
  t.match(out, /Route GET:\/nowhere\?token=\[redacted\] not found/, 'and the 404')
})
