// A bad NAMESPACES_FILE stops the real process at start like a bad variable:
// exit 1, one line per problem naming the path inside the file; a good one
// starts it.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runUntilExit } from '../helpers/node-process.js'
import { policyFile } from '../helpers/policies.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

t.test('a bad policy file: exit 1, one line per problem', async (t) => {
  const path = policyFile({ default: { join: 'admins' }, namespaces: { support: { send: 'everyone', historySize: 5, historyOnJoin: 6 }, x: { colour: 'red' } } })
  const { code, stderr } = await runUntilExit({ NAMESPACES_FILE: path })
  t.equal(code, 1)
  t.same(stderr.trim().split('\n').sort(), [
    'invalid configuration: NAMESPACES_FILE: default.join: expected one of anyone, authenticated, granted, owner',
    'invalid configuration: NAMESPACES_FILE: namespaces.support.historyOnJoin: expected at most historySize (5)',
    'invalid configuration: NAMESPACES_FILE: namespaces.support.send: expected one of members, granted, none',
    'invalid configuration: NAMESPACES_FILE: namespaces.x.colour: unknown field'
  ])
})

t.test('a missing file and a file that is not JSON: one clear line each', async (t) => {
  const missing = await runUntilExit({ NAMESPACES_FILE: '/nonexistent/namespaces.json' })
  t.equal(missing.code, 1)
  t.equal(missing.stderr.trim(), 'invalid configuration: NAMESPACES_FILE: cannot read "/nonexistent/namespaces.json": no such file')
  const notJson = await runUntilExit({ NAMESPACES_FILE: policyFile('{ "default": ') })
  t.equal(notJson.code, 1)
  t.equal(notJson.stderr.trim().split('\n').length, 1)
  t.match(notJson.stderr, /^invalid configuration: NAMESPACES_FILE: ".*namespaces\.json" is not valid JSON: /)
})

t.test('the example policy file from the docs starts the service', async (t) => {
  const { code, stderr } = await runUntilExit({ NAMESPACES_FILE: join(ROOT, 'deploy', 'namespaces.example.json') }, { stopWhenLive: true })
  t.equal(stderr, '')
  t.equal(code, 0, 'it ran until told to stop')
})
