// NAMESPACES_FILE in the configuration: read with the environment, its
// problems reported one line each beside the variables', its defaults taken
// from HISTORY_SIZE and HISTORY_ON_JOIN.
import t from 'tap'
import { loadConfig } from '../../lib/config.js'
import { policyFile } from '../helpers/policies.js'
import { configProblems } from '../helpers/config-problems.js'

t.test('unset: every room follows the default policy, as before', async (t) => {
  const config = loadConfig({})
  t.equal(config.namespacesFile.namespaces.size, 0)
  t.same(config.namespacesFile.default, { join: 'anyone', send: 'members', historySize: 1000, historyOnJoin: 50, presence: true, signals: true })
  t.equal(loadConfig({ HISTORY_SIZE: '20', HISTORY_ON_JOIN: '5' }).namespacesFile.default.historySize, 20, 'HISTORY_SIZE is the default')
})

t.test('a good file: Config.namespacesFile holds its policies, bounded by HISTORY_SIZE', async (t) => {
  const path = policyFile({ namespaces: { s: { join: 'granted', historySize: 30 } } })
  const config = loadConfig({ NAMESPACES_FILE: path, HISTORY_SIZE: '40', HISTORY_ON_JOIN: '35' })
  t.match(config.namespacesFile.namespaces.get('s'), { join: 'granted', historySize: 30, historyOnJoin: 30 })
  t.same(configProblems({ NAMESPACES_FILE: path, HISTORY_SIZE: '20', HISTORY_ON_JOIN: '5' }),
    ['NAMESPACES_FILE: namespaces.s.historySize: expected a whole number from 0 to 20 (HISTORY_SIZE)'],
    'the same file against a smaller HISTORY_SIZE')
})

t.test('a bad file: one line per problem, as written, no "got" suffix', async (t) => {
  const path = policyFile({ default: { send: 'all' }, namespaces: { s: { joinn: 'anyone' } } })
  t.same(configProblems({ NAMESPACES_FILE: path }).sort(), [
    'NAMESPACES_FILE: default.send: expected one of members, granted, none',
    'NAMESPACES_FILE: namespaces.s.joinn: unknown field'
  ])
  t.throws(() => loadConfig({ NAMESPACES_FILE: path }), { name: 'ConfigError', message: /^invalid configuration:\nNAMESPACES_FILE: / })
})
