// Limits (public/limits.js), run in Node: the server's rules as the page
// checks them, read from /config.json, and the fallback without it.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { codePointLength, Limits, namespaceOf, OPEN_POLICY } from '../../public/limits.js'
import { checkName, NAME_MAX_LENGTH } from '../../lib/rules.js'
import { startServer } from '../helpers/server.js'

t.test('Limits with the server\'s config count code points and use its pattern and rule', async (t) => {
  const limits = new Limits({ maxTextLength: 3, maxNameLength: 2, roomPattern: '^[a-z]{1,3}$', roomRule: 'a to z, up to 3' })
  t.equal(codePointLength('😀😀'), 2, 'a surrogate pair is one')
  t.equal(codePointLength(''), 0)
  t.same(limits.checkName('  😀😀  '), { ok: true, name: '😀😀' }, 'trimmed, counted in code points')
  t.same(limits.checkName('abc'), { ok: false, message: 'A name has at most 2 characters.' })
  t.same(limits.checkName('a\u0007'), { ok: false, message: 'A name cannot contain control characters.' })
  t.same(limits.checkName('   '), { ok: true, name: undefined }, 'blank: a guest name')
  t.equal(limits.checkRoom('abc'), undefined)
  t.equal(limits.checkRoom('abcd'), 'Not a room name (a to z, up to 3).')
  t.equal(limits.checkRoom(''), 'Type a room name.')
  t.equal(limits.roomRule, 'a to z, up to 3')
  t.equal(limits.textLeft('😀😀😀'), 0)
  t.equal(limits.textLeft('😀😀😀😀'), -1)
})

t.test('the page refuses the names the server refuses, and takes the others as the server does (issue 10, finding 7)', async (t) => {
  const limits = new Limits({ maxTextLength: 10, maxNameLength: NAME_MAX_LENGTH, roomPattern: '^a$', roomRule: 'a' })
  const names = [
    'alice', '  bob  ', 'Zoe\u0308', 'e\u0301'.repeat(32), '\u2764\uFE0F', 'x'.repeat(33),
    '\u202Enimda', 'report\u202Efdp.exe', '\u200B', 'ad\u200Dmin', '\u2067x\u2069', '\u00ADa', '\u{E0041}a',
    '\u3164', '\u2800', '\uFE0F', 'a\u0007b', 'a\u2028b', 'a\uD800b'
  ]
  // Labels in code-point form: a raw U+2028 or lone surrogate would break the TAP stream.
  const label = (name: string) => [...name].map((c) => /[ -~]/.test(c) ? c : `U+${c.codePointAt(0)?.toString(16).toUpperCase()}`).join('')
  for (const name of names) {
    const server = checkName(name)
    const page = limits.checkName(name)
    t.equal(page.ok, server.ok, `${label(name)}: the same verdict`)
    if (server.ok && page.ok) t.equal(page.name, server.name, `${label(name)}: the same name`)
  }
  t.same(limits.checkName('\u202Enimda'), { ok: false, message: 'A name cannot contain invisible formatting characters (direction marks, zero-width characters).' })
  t.same(limits.checkName('\u3164'), { ok: false, message: 'A name cannot be blank.' })
})

t.test('Limits without a config check nothing but blank rooms and control characters', async (t) => {
  const limits = new Limits()
  t.same(limits.checkName('x'.repeat(1000)), { ok: true, name: 'x'.repeat(1000) })
  t.same(limits.checkName('a\u0007').ok, false)
  t.equal(limits.checkRoom('any thing at all'), undefined)
  t.equal(limits.checkRoom(''), 'Type a room name.')
  t.equal(limits.roomRule, undefined)
  t.equal(limits.textLeft('x'.repeat(1_000_000)), undefined)
})

t.test('Limits.load reads the server\'s /config.json, and falls back to none (with a warning) on anything else', async (t) => {
  const server = await startServer(t, { MAX_TEXT_LENGTH: '7' })
  const warnings = t.capture(console, 'warn')
  const limits = await Limits.load(new URL('/config.json', server.url))
  t.equal(limits.textLeft('😀'), 6, 'the configured text limit, in code points')
  t.equal(limits.checkRoom('not a room!'), `Not a room name (${limits.roomRule}).`, 'the server\'s pattern')
  t.same(warnings(), [], 'no warning')

  const json = (body: unknown) => new URL(`data:application/json,${encodeURIComponent(JSON.stringify(body))}`)
  const good = { maxTextLength: 1, maxNameLength: 1, roomPattern: '^a$', roomRule: 'a' }
  const broken = [
    new URL('/no-such-config.json', server.url),
    new URL('data:application/json,not json'),
    json(null),
    json({ ...good, maxTextLength: '1' }),
    json({ ...good, maxNameLength: 1.5 }),
    json({ ...good, roomRule: undefined }),
    json({ ...good, roomPattern: '[' })
  ]
  for (const url of broken) {
    const fallback = await Limits.load(url)
    t.equal(fallback.roomRule, undefined, `no limits from ${url.href.slice(0, 60)}`)
    t.equal(fallback.textLeft('x'), undefined)
  }
  const said = warnings()
  t.equal(said.length, broken.length, 'a warning each time')
  t.match(String(said[0]?.args[1]), /GET \/no-such-config\.json answered 404/, 'saying why')
  t.equal((await Limits.load(json(good))).roomRule, 'a', 'a well-formed body from anywhere is read')
})

t.test('room policies: a room follows its namespace\'s policy, else the default; none published: every room is open', async (t) => {
  const base = { maxTextLength: 10, maxNameLength: 32, roomPattern: '^.+$', roomRule: 'any' }
  t.same(new Limits(base).policyFor('news:today'), OPEN_POLICY, 'no policies: open')
  t.same(OPEN_POLICY, { join: 'anyone', send: 'members', presence: true, signals: true })
  t.equal(namespaceOf('support:42:x'), 'support', 'up to the first colon')
  t.equal(namespaceOf('lobby'), undefined)
  t.equal(namespaceOf(':x'), '', 'an empty namespace is still one')
})

t.test('Limits.load reads policies from /config.json defensively', async (t) => {
  const body = {
    maxTextLength: 10,
    maxNameLength: 32,
    roomPattern: '^.+$',
    roomRule: 'any',
    policies: {
      default: { join: 'authenticated', send: 'members', presence: true, signals: false },
      namespaces: {
        news: { join: 'anyone', send: 'none', presence: false, signals: false },
        constructor: { join: 'owner', send: 'granted', presence: true, signals: true },
        odd: { join: 'everyone', send: 42, presence: 'yes' }
      }
    }
  }
  const server = http.createServer((_request, response) => {
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify(body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo
  const limits = await Limits.load(new URL(`http://127.0.0.1:${port}/config.json`))
  t.same(limits.policyFor('news:today'), { join: 'anyone', send: 'none', presence: false, signals: false }, 'a listed namespace')
  t.same(limits.policyFor('lobby'), body.policies.default, 'no namespace: the default')
  t.same(limits.policyFor('other:1'), body.policies.default, 'a namespace not listed: the default')
  t.same(limits.policyFor('constructor:1'), { join: 'owner', send: 'granted', presence: true, signals: true }, 'any name is just a name')
  t.same(limits.policyFor('toString:1'), body.policies.default, 'not an inherited property either')
  t.same(limits.policyFor('odd:1'), OPEN_POLICY, 'values the page does not know fall back to the open defaults')

  body.policies = 'nonsense' as never
  t.same((await Limits.load(new URL(`http://127.0.0.1:${port}/config.json`))).policyFor('news:x'), OPEN_POLICY, 'policies that are not an object: none')
  body.policies = { default: null, namespaces: null } as never
  t.same((await Limits.load(new URL(`http://127.0.0.1:${port}/config.json`))).policyFor('news:x'), OPEN_POLICY, 'empty parts: open')
})
