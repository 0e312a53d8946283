// Unit tests of lib/auth/grants.ts: the token's `rooms` claim is read
// exactly as documented or refused whole, and patterns match by equality and
// prefix, never as regular expressions.
import t from 'tap'
import { granted, parseRoomsClaim, ROOMS_CLAIM_RULE, type Grants } from '../../../lib/auth/grants.js'

function parse (claim: unknown): Grants {
  const parsed = parseRoomsClaim(claim)
  if (!parsed.ok || parsed.grants === undefined) throw new Error(`refused: ${JSON.stringify(claim)}`)
  return parsed.grants
}

t.test('absent: no grants; exact ids and prefix* patterns', async (t) => {
  t.same(parseRoomsClaim(undefined), { ok: true, grants: undefined })
  t.notOk(granted(undefined, 'lobby', 'join'))
  const grants = parse({ 'support:*': ['join', 'send'], 'news:daily': ['join'], 'x.y': [] })
  t.ok(granted(grants, 'support:42', 'join'))
  t.ok(granted(grants, 'support:42', 'send'))
  t.ok(granted(grants, 'support:', 'join'), 'the prefix itself followed by nothing')
  t.notOk(granted(grants, 'support', 'join'), 'the prefix is "support:", not "support"')
  t.notOk(granted(grants, 'supportx:1', 'join'))
  t.ok(granted(grants, 'news:daily', 'join'))
  t.notOk(granted(grants, 'news:daily', 'send'), 'only the rights listed')
  t.notOk(granted(grants, 'news:dailyx', 'join'), 'an exact id is not a prefix')
  t.notOk(granted(grants, 'x.y', 'join'), 'an empty list grants nothing')
  t.ok(granted(parse({ '*': ['send'] }), 'anything', 'send'), 'a lone * is every room')
})

t.test('pattern characters mean themselves: no regular expression is built from a token', async (t) => {
  const grants = parse({ 'a.b*': ['join'] })
  t.ok(granted(grants, 'a.b:1', 'join'))
  t.notOk(granted(grants, 'axb:1', 'join'), 'the dot is a dot')
  t.notOk(granted(parse({ 'a.b': ['join'] }), 'axb', 'join'))
})

t.test('anything else is refused with the rule', async (t) => {
  const bad: unknown[] = [
    null, 'support:*', 42, ['support:*'],
    { 'support:*': 'join' },
    { 'support:*': ['join', 'admin'] },
    { 'support:*': [1] },
    { 'has space': ['join'] },
    { 'a*b': ['join'] },
    { '**': ['join'] },
    { '': ['join'] },
    { ['x'.repeat(65)]: ['join'] },
    { ['x'.repeat(64) + '*']: ['join'] }
  ]
  for (const claim of bad) {
    const parsed = parseRoomsClaim(claim)
    t.equal(parsed.ok, false, `refused: ${JSON.stringify(claim).slice(0, 40)}`)
    if (!parsed.ok) t.ok(parsed.message.startsWith(ROOMS_CLAIM_RULE))
  }
  t.ok(parseRoomsClaim({ ['x'.repeat(64)]: ['join'], ['x'.repeat(63) + '*']: ['send'] }).ok, 'the longest id and prefix are fine')
})
