// The process refuses to start on bad configuration or an unreachable Redis,
// saying exactly what is wrong (one line per bad variable).
import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { freePort } from '../helpers/free-port.js'
import { runUntilExit } from '../helpers/node-process.js'

t.test('invalid configuration: exit 1, one line per bad variable', async (t) => {
  const { code, stderr } = await runUntilExit({ PORT: 'abc', HISTORY_SIZE: '-1', REDIS_URL: 'http://x', BROADCAST_TOKEN: 'short', LOG_LEVEL: 'loud' })
  t.equal(code, 1)
  const lines = stderr.trim().split('\n')
  t.equal(lines.length, 5, 'one line for each of the five bad variables')
  for (const name of ['PORT', 'HISTORY_SIZE', 'REDIS_URL', 'BROADCAST_TOKEN', 'LOG_LEVEL']) {
    t.ok(lines.some((line) => line.includes(`${name}:`)), `${name} is named`)
  }
  t.notOk(stderr.includes('short'), 'the token itself is not echoed')
})

t.test('REDIS_URL unreachable at start: exit 1 with a clear message', async (t) => {
  const port = await freePort()
  const { code, stderr } = await runUntilExit({ REDIS_URL: `redis://:secret@127.0.0.1:${port}`, PORT: String(await freePort()) })
  t.equal(code, 1)
  t.match(stderr, /cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/, 'names the URL with the password hidden')
  t.match(stderr, /ECONNREFUSED/, 'says why')
  t.notOk(stderr.includes('secret'), 'the password is not echoed')
})

t.test('PORT already taken: exit 1 instead of running without a listener', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const port = (taken.address() as AddressInfo).port
  const { code } = await runUntilExit({ PORT: String(port) })
  t.equal(code, 1)
})
