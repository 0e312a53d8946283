// Unit tests of lib/policy.ts: the decision table of PROTOCOL §8 (every
// operation × rule × kind of connection, as docs/protocol.md prints it), the
// policy of a room, and the NAMESPACES_FILE loader's one line per problem.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseRoomsClaim, type Grants } from '../../lib/auth/grants.js'
import { loadPolicies } from '../../lib/policy-file.js'
import {
  decide, defaultPolicies, defaultPolicy, namespaceOf, pagePolicies, policyFor,
  type JoinRule, type Operation, type Policies, type Policy, type SendRule, type Subject
} from '../../lib/policy.js'

const LIMITS = { historySize: 1000, historyOnJoin: 50 }

function grants (claim: Record<string, string[]>): Grants {
  const parsed = parseRoomsClaim(claim)
  if (!parsed.ok || parsed.grants === undefined) throw new Error('bad test grants')
  return parsed.grants
}

/** The room every row is decided for: namespace `ns`, owned by `alice`. */
const ROOM = 'ns:alice'

/** The kinds of connection of the table (docs/protocol.md, "Rooms and policies"). */
const SUBJECTS: Record<string, Subject> = {
  guest: {},
  authenticated: { user: 'bob' },
  'granted (exact)': { user: 'carol', grants: grants({ [ROOM]: ['join', 'send'] }) },
  'granted (prefix*)': { user: 'carol', grants: grants({ 'ns:*': ['join', 'send'] }) },
  'not granted': { user: 'dave', grants: grants({ 'other:*': ['join', 'send'], 'ns:alicex': ['join', 'send'], [ROOM]: [] }) },
  owner: { user: 'alice' }
}

type Row = [operation: Operation, rule: string, allowed: string[]]

const ALL = Object.keys(SUBJECTS)
const GRANTED = ['granted (exact)', 'granted (prefix*)']

/** The table: who is allowed, for each operation and rule (membership already checked for send and signal). */
const TABLE: Row[] = [
  ['join', 'anyone', ALL],
  ['join', 'authenticated', ALL.filter((kind) => kind !== 'guest')],
  ['join', 'granted', GRANTED],
  ['join', 'owner', ['owner']],
  ['send', 'members', ALL],
  ['send', 'granted', GRANTED],
  ['send', 'none', []],
  ['signal', 'members', ALL],
  ['signal', 'granted', GRANTED],
  ['signal', 'none', []],
  ['signal', 'members, signals: false', []],
  ['signal', 'granted, signals: false', []]
]

function policiesWith (operation: Operation, rule: string): Policies {
  const base = defaultPolicy(LIMITS)
  const [name, flag] = rule.split(', ')
  const policy: Policy = operation === 'join'
    ? { ...base, join: name as JoinRule }
    : { ...base, send: name as SendRule, signals: flag !== 'signals: false' }
  return { default: base, namespaces: new Map([['ns', policy]]) }
}

for (const [operation, rule, allowed] of TABLE) {
  t.test(`${operation} where ${operation === 'join' ? 'join' : 'send'}: ${rule}`, async (t) => {
    const policies = policiesWith(operation, rule)
    for (const [kind, subject] of Object.entries(SUBJECTS)) {
      const decision = decide(operation, ROOM, subject, policies)
      t.equal(decision.allowed, allowed.includes(kind), `${kind} ${allowed.includes(kind) ? 'allowed' : 'refused'}`)
      if (!decision.allowed) t.match(decision.reason, ROOM, 'the reason names the room')
    }
  })
}

t.test('the reasons say why, in words a person can act on', async (t) => {
  const reason = (operation: Operation, rule: string, subject: Subject, room = ROOM) => {
    const decision = decide(operation, room, subject, policiesWith(operation, rule))
    return decision.allowed ? 'allowed' : decision.reason
  }
  t.match(reason('join', 'authenticated', {}), /signed-in users only/)
  t.match(reason('join', 'granted', {}), /needs a token that grants joining/)
  t.match(reason('join', 'granted', { user: 'bob' }), /your token does not grant joining/)
  t.match(reason('join', 'owner', { user: 'bob' }), /belongs to user "alice"/)
  t.match(reason('join', 'owner', { user: 'bob' }, 'ns:'), /has no owner/)
  t.match(reason('send', 'none', { user: 'bob' }), /read-only/)
  t.match(reason('send', 'granted', {}), /needs a token that grants sending/)
  t.match(reason('send', 'granted', { user: 'bob' }), /does not grant sending .* may not send messages/)
  t.match(reason('signal', 'granted', { user: 'bob' }), /may not send signals/)
  t.match(reason('signal', 'members, signals: false', { user: 'bob' }), /signals are turned off/)
})

t.test('owner: the part after the namespace, exactly; a room in no namespace has no owner', async (t) => {
  const policies: Policies = { default: { ...defaultPolicy(LIMITS), join: 'owner' }, namespaces: new Map() }
  t.ok(decide('join', 'inbox:alice', { user: 'alice' }, policies).allowed)
  t.notOk(decide('join', 'inbox:alice', { user: 'Alice' }, policies).allowed, 'case matters')
  t.notOk(decide('join', 'inbox:alice', { user: 'alic' }, policies).allowed, 'not a prefix match')
  t.ok(decide('join', 'inbox:team:7', { user: 'team:7' }, policies).allowed, 'everything after the first colon')
  t.notOk(decide('join', 'alice', { user: 'alice' }, policies).allowed, 'no namespace, no owner')
  t.notOk(decide('join', 'inbox:alice', { user: 'alice smith' }, policies).allowed, 'a sub outside the room alphabet owns nothing')
})

t.test('a grant never overrides send: none, and a join grant is not a send grant', async (t) => {
  const readOnly: Policies = { default: { ...defaultPolicy(LIMITS), send: 'none' }, namespaces: new Map() }
  const all = { user: 'root', grants: grants({ '*': ['join', 'send'] }) }
  t.notOk(decide('send', 'news', all, readOnly).allowed)
  const sendGranted: Policies = { default: { ...defaultPolicy(LIMITS), send: 'granted', join: 'granted' }, namespaces: new Map() }
  const joinOnly = { user: 'u', grants: grants({ news: ['join'] }) }
  t.ok(decide('join', 'news', joinOnly, sendGranted).allowed)
  t.notOk(decide('send', 'news', joinOnly, sendGranted).allowed)
  t.ok(decide('send', 'lobby', all, sendGranted).allowed, 'an empty prefix (`*`) grants every room')
})

t.test('namespaceOf and policyFor: the part before the first colon picks the policy; else the default', async (t) => {
  t.equal(namespaceOf('support:42'), 'support')
  t.equal(namespaceOf('a:b:c'), 'a')
  t.equal(namespaceOf('lobby'), undefined)
  t.equal(namespaceOf(':x'), '')
  const support: Policy = { ...defaultPolicy(LIMITS), join: 'granted' }
  const policies: Policies = { default: defaultPolicy(LIMITS), namespaces: new Map([['support', support]]) }
  t.equal(policyFor(policies, 'support:42'), support)
  t.equal(policyFor(policies, 'support'), policies.default, 'a room named like a namespace is not in it')
  t.equal(policyFor(policies, 'supporting:1'), policies.default)
  t.equal(policyFor(policies, 'lobby'), policies.default)
  t.equal(policyFor(policies, ':x'), policies.default)
})

t.test('defaults: everything as before policies; historyOnJoin at most historySize', async (t) => {
  t.same(defaultPolicy(LIMITS), { join: 'anyone', send: 'members', historySize: 1000, historyOnJoin: 50, presence: true, signals: true })
  t.equal(defaultPolicy({ historySize: 10, historyOnJoin: 50 }).historyOnJoin, 10)
  t.same(pagePolicies(defaultPolicies(LIMITS)), { default: { join: 'anyone', send: 'members', presence: true, signals: true }, namespaces: {} })
})

// ---------------------------------------------------------------------------
// The loader

const dir = mkdtempSync(join(tmpdir(), 'policies-'))
let files = 0

function file (contents: string): string {
  const path = join(dir, `namespaces-${++files}.json`)
  writeFileSync(path, contents)
  return path
}

function problems (contents: unknown, limits = LIMITS): string[] {
  const loaded = loadPolicies(file(typeof contents === 'string' ? contents : JSON.stringify(contents)), limits)
  if (loaded.ok) throw new Error('expected the file to be refused')
  return loaded.problems
}

t.test('no file: the default policy for every room', async (t) => {
  const loaded = loadPolicies(undefined, LIMITS)
  t.ok(loaded.ok)
  if (loaded.ok) t.same(loaded.policies, defaultPolicies(LIMITS))
})

t.test('a good file: omitted fields take §8\'s defaults, history bounds from the service', async (t) => {
  const loaded = loadPolicies(file(JSON.stringify({
    default: { join: 'authenticated' },
    namespaces: {
      support: { join: 'granted', send: 'granted', historySize: 200 },
      announce: { send: 'none', presence: false, signals: false, historySize: 10, historyOnJoin: 3 },
      ephemeral: { historySize: 0 }
    }
  })), LIMITS)
  t.ok(loaded.ok)
  if (!loaded.ok) return
  const { policies } = loaded
  t.same(policies.default, { ...defaultPolicy(LIMITS), join: 'authenticated' })
  t.same(policies.namespaces.get('support'), { ...defaultPolicy(LIMITS), join: 'granted', send: 'granted', historySize: 200, historyOnJoin: 50 })
  t.same(policies.namespaces.get('announce'), { join: 'anyone', send: 'none', historySize: 10, historyOnJoin: 3, presence: false, signals: false })
  t.same(policies.namespaces.get('ephemeral'), { ...defaultPolicy(LIMITS), historySize: 0, historyOnJoin: 0 }, 'historyOnJoin defaults to min(HISTORY_ON_JOIN, historySize)')
  const empty = loadPolicies(file('{}'), LIMITS)
  t.ok(empty.ok && empty.policies.namespaces.size === 0 && empty.policies.default.join === 'anyone', 'an empty object is the defaults')
})

t.test('each problem is one line naming the path inside the file', async (t) => {
  t.same(problems({ namespaces: { support: { send: 'everyone' } } }),
    ['NAMESPACES_FILE: namespaces.support.send: expected one of members, granted, none'])
  t.same(problems({ default: { join: 'admins' } }),
    ['NAMESPACES_FILE: default.join: expected one of anyone, authenticated, granted, owner'])
  t.same(problems({ namespaces: { support: { sendd: 'members' } } }), ['NAMESPACES_FILE: namespaces.support.sendd: unknown field'])
  t.same(problems({ default: {}, extra: 1 }), ['NAMESPACES_FILE: extra: unknown field'])
  t.same(problems({ namespaces: { a: { historySize: 10, historyOnJoin: 11 } } }),
    ['NAMESPACES_FILE: namespaces.a.historyOnJoin: expected at most historySize (10)'])
  t.same(problems({ namespaces: { a: { historyOnJoin: 20 } } }, { historySize: 10, historyOnJoin: 5 }),
    ['NAMESPACES_FILE: namespaces.a.historyOnJoin: expected a whole number from 0 to historySize (at most 10)'])
  t.same(problems({ namespaces: { a: { historySize: 1001 } } }),
    ['NAMESPACES_FILE: namespaces.a.historySize: expected a whole number from 0 to 1000 (HISTORY_SIZE)'])
  t.same(problems({ namespaces: { a: { historySize: 1.5 } } }),
    ['NAMESPACES_FILE: namespaces.a.historySize: expected a whole number from 0 to 1000 (HISTORY_SIZE)'])
  t.same(problems({ namespaces: { a: { presence: 'no' } } }), ['NAMESPACES_FILE: namespaces.a.presence: expected true or false'])
  t.same(problems({ namespaces: { 'bad:name': {} } }),
    ['NAMESPACES_FILE: namespaces.bad:name: expected a namespace name of 1-63 characters of A-Z a-z 0-9 _ - . (no ":")'])
  t.same(problems({ namespaces: { a: 'granted' } }), ['NAMESPACES_FILE: namespaces.a: expected an object of policy fields'])
  t.same(problems({ namespaces: [] }), ['NAMESPACES_FILE: namespaces: expected an object of namespace names to policies'])
  t.same(problems([]), ['NAMESPACES_FILE: (top level): expected an object with "default" and "namespaces"'])
})

t.test('several problems: one line each', async (t) => {
  const lines = problems({ default: { join: 'x', bogus: true }, namespaces: { s: { send: 'y', historySize: -1 } } })
  t.equal(lines.length, 4)
  t.ok(lines.every((line) => line.startsWith('NAMESPACES_FILE: ')))
  for (const path of ['default.join', 'default.bogus', 'namespaces.s.send', 'namespaces.s.historySize']) {
    t.ok(lines.some((line) => line.startsWith(`NAMESPACES_FILE: ${path}: `)), `${path} named`)
  }
})

t.test('a file that cannot be read or parsed: one clear line', async (t) => {
  const missing = loadPolicies(join(dir, 'nope.json'), LIMITS)
  t.same(missing, { ok: false, problems: [`NAMESPACES_FILE: cannot read "${join(dir, 'nope.json')}": no such file`] })
  const sub = join(dir, 'a-directory')
  mkdirSync(sub)
  t.same(loadPolicies(sub, LIMITS), { ok: false, problems: [`NAMESPACES_FILE: cannot read "${sub}": it is a directory`] })
  const bad = problems('{"default": {')
  t.equal(bad.length, 1)
  t.match(bad[0], /^NAMESPACES_FILE: ".*namespaces-\d+\.json" is not valid JSON: /)
})
