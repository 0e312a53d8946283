// A bad NAMESPACES_FILE stops the real process at start like a bad variable:
// exit 1, one line per problem naming the path inside the file; a good one
// starts it.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from '../helpers/free-port.js'
import { policyFile } from '../helpers/policies.js'
import { waitFor } from '../helpers/wait.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Runs server.ts until it exits (or, with `stopWhenReady`, until it answers /health/live, then SIGTERM). */
function run (env: Record<string, string>, stopWhenReady = false): Promise<{ code: number | null, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', LOG_LEVEL: 'silent', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'ignore', 'pipe']
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the server did not exit')) }, 20_000)
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }) })
    if (stopWhenReady) {
      waitFor(async () => (await fetch(`http://127.0.0.1:${env.PORT}/health/live`).catch(() => undefined))?.status === 200, 'the server live', 15_000)
        .then(() => child.kill('SIGTERM'), () => child.kill('SIGKILL'))
    }
  })
}

t.test('a bad policy file: exit 1, one line per problem', async (t) => {
  const path = policyFile({ default: { join: 'admins' }, namespaces: { support: { send: 'everyone', historySize: 5, historyOnJoin: 6 }, x: { colour: 'red' } } })
  const { code, stderr } = await run({ NAMESPACES_FILE: path, PORT: String(await freePort()) })
  t.equal(code, 1)
  t.same(stderr.trim().split('\n').sort(), [
    'invalid configuration: NAMESPACES_FILE: default.join: expected one of anyone, authenticated, granted, owner',
    'invalid configuration: NAMESPACES_FILE: namespaces.support.historyOnJoin: expected at most historySize (5)',
    'invalid configuration: NAMESPACES_FILE: namespaces.support.send: expected one of members, granted, none',
    'invalid configuration: NAMESPACES_FILE: namespaces.x.colour: unknown field'
  ])
})

t.test('a missing file and a file that is not JSON: one clear line each', async (t) => {
  const missing = await run({ NAMESPACES_FILE: '/nonexistent/namespaces.json', PORT: String(await freePort()) })
  t.equal(missing.code, 1)
  t.equal(missing.stderr.trim(), 'invalid configuration: NAMESPACES_FILE: cannot read "/nonexistent/namespaces.json": no such file')
  const notJson = await run({ NAMESPACES_FILE: policyFile('{ "default": '), PORT: String(await freePort()) })
  t.equal(notJson.code, 1)
  t.equal(notJson.stderr.trim().split('\n').length, 1)
  t.match(notJson.stderr, /^invalid configuration: NAMESPACES_FILE: ".*namespaces\.json" is not valid JSON: /)
})

t.test('the example policy file from the docs starts the service', async (t) => {
  const { code, stderr } = await run({ NAMESPACES_FILE: join(ROOT, 'deploy', 'namespaces.example.json'), PORT: String(await freePort()) }, true)
  t.equal(stderr, '')
  t.equal(code, 0, 'it ran until told to stop')
})
