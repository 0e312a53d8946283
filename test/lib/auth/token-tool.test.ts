// The token tool: its options, and a token the server's verifier accepts; the CLI once, as a process.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { mintToken, parseRooms, parseTtl } from '../../../lib/auth/token-tool.js'
import { TokenVerifier } from '../../../lib/auth/token-verifier.js'
import { TEST_JWT_SECRET } from '../../helpers/tokens.js'

t.test('options', async (t) => {
  t.equal(parseTtl('90'), 90)
  t.equal(parseTtl('15m'), 900)
  t.equal(parseTtl('1h'), 3600)
  t.equal(parseTtl('2d'), 172800)
  t.throws(() => parseTtl('1w'), /--ttl/)
  t.throws(() => parseTtl('0'), /at least/)
  t.same(parseRooms('support:*=join,send; news:daily=join'), { 'support:*': ['join', 'send'], 'news:daily': ['join'] })
  t.throws(() => parseRooms('support:*=read'), /--rooms/)
  t.throws(() => parseRooms('=join'), /--rooms/)
})

t.test('a minted token passes the verifier with its claims', async (t) => {
  const token = await mintToken({ sub: 'alice', name: 'Alice', rooms: 'support:*=join,send', ttl: '1h', aud: 'chat' }, TEST_JWT_SECRET)
  const verifier = new TokenVerifier({ secret: TEST_JWT_SECRET, audience: 'chat', clockToleranceS: 0, maxTokenTtlS: 3600 })
  const result = await verifier.verify(token)
  t.match(result, { ok: true, identity: { user: 'alice', name: 'Alice' } })
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>
  t.same(payload.rooms, { 'support:*': ['join', 'send'] })
  t.equal((payload.exp as number) - (payload.iat as number), 3600)
  await t.rejects(mintToken({ sub: 'a' }, 'short'), /AUTH_JWT_SECRET/)
  await t.rejects(mintToken({ sub: 'a' }, undefined), /AUTH_JWT_SECRET/)
})

t.test('npm run token prints a token; without a secret it says so and exits 2', async (t) => {
  const run = promisify(execFile)
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'tools/token.ts', '--sub', 'bob', '--ttl', '10m'], { env: { ...process.env, AUTH_JWT_SECRET: TEST_JWT_SECRET } })
  const verifier = new TokenVerifier({ secret: TEST_JWT_SECRET, clockToleranceS: 0, maxTokenTtlS: 3600 })
  t.match(await verifier.verify(stdout.trim()), { ok: true, identity: { user: 'bob' } })
  const failed = await run(process.execPath, ['--import', 'tsx', 'tools/token.ts', '--sub', 'bob'], { env: { ...process.env, AUTH_JWT_SECRET: '' } }).catch((error: { code: number, stderr: string }) => error)
  t.match(failed, { code: 2, stderr: /AUTH_JWT_SECRET must be set/ })
})
