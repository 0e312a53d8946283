// Unit tests of lib/rules.ts: the room, display-name and text rules that the
// frame parser, the routes and the page (GET /config.json) share.
import t from 'tap'
import { checkName, codePointLength, NAME_MAX_LENGTH, resolveName, ROOM_PATTERN, ROOM_RULE, textLengthAllowed, textRule } from '../../lib/rules.js'

const emoji = '😀'

t.test('the room pattern means the same under every flag a page may compile it with', async (t) => {
  const flavours = ['', 'u', 'v'].map((flags) => new RegExp(ROOM_PATTERN.source, flags))
  const rooms = ['a', 'Lobby_1', 'team.dev:ops-2', '-', 'x'.repeat(64), '', 'x'.repeat(65), 'has space', 'é', emoji, 'a\\b', 'semi;colon', 'a\nb']
  for (const room of rooms) {
    const answers = flavours.map((pattern) => pattern.test(room))
    t.same(answers, [ROOM_PATTERN.test(room), ROOM_PATTERN.test(room), ROOM_PATTERN.test(room)], JSON.stringify(room))
  }
  t.ok(ROOM_PATTERN.test('a-b') && ROOM_PATTERN.test('_.:'), 'the escaped - is a literal -')
  // The `pattern` attribute wraps the source as ^(?:source)$ with the v flag.
  t.ok(new RegExp(`^(?:${ROOM_PATTERN.source})$`, 'v').test('team.dev:ops-2'), 'usable as an input pattern')
  t.equal(ROOM_RULE, '1-64 characters of A-Z a-z 0-9 _ - . :')
})

t.test('names are trimmed, then 1-32 code points with no control character', async (t) => {
  t.equal(NAME_MAX_LENGTH, 32)
  t.same(checkName('  alice  '), { ok: true, name: 'alice' })
  t.same(checkName('x'.repeat(32)), { ok: true, name: 'x'.repeat(32) })
  t.same(checkName(emoji.repeat(32)), { ok: true, name: emoji.repeat(32) }, '32 emoji are 32 code points')
  t.same(checkName('\talice\n'), { ok: true, name: 'alice' }, 'whitespace controls at the ends are trimmed first')
  t.same(checkName('x'.repeat(33)), { ok: false, problem: 'length' })
  t.same(checkName(emoji.repeat(33)), { ok: false, problem: 'length' })
  t.same(checkName(''), { ok: false, problem: 'length' })
  t.same(checkName('   '), { ok: false, problem: 'length' }, 'blank is empty after trimming')
  t.same(checkName('a\u0007b'), { ok: false, problem: 'control' })
  t.same(checkName('a\u0085b'), { ok: false, problem: 'control' }, 'C1 controls too')
  t.same(checkName(`${'x'.repeat(33)}\u0007`), { ok: false, problem: 'length' }, 'length is reported before control characters')
})

t.test('names that impersonate are refused: format characters, blank names (issue 10, finding 7)', async (t) => {
  // U+202E RIGHT-TO-LEFT OVERRIDE makes "nimda" render as "admin".
  t.same(checkName('\u202Enimda'), { ok: false, problem: 'format' }, 'an RLO rendering as "admin"')
  t.same(checkName('report\u202Efdp.exe'), { ok: false, problem: 'format' }, 'report\\u202Efdp.exe rendering as reportexe.pdf')
  for (const mark of ['\u200B', '\u200C', '\u200D', '\u200E', '\u200F', '\u2066', '\u2067', '\u2068', '\u2069', '\u202A', '\u202B', '\u202C', '\u202D', '\u2060', '\uFEFF', '\u00AD', '\u061C', '\u{E0041}']) {
    t.same(checkName(`ali${mark}ce`), { ok: false, problem: 'format' }, `U+${mark.codePointAt(0)?.toString(16).toUpperCase()} inside a name`)
  }
  t.same(checkName('\u200B\u200B\u200B'), { ok: false, problem: 'format' }, 'a zero-width name')
  t.same(checkName('\u3164'), { ok: false, problem: 'blank' }, 'a Hangul filler renders blank')
  t.same(checkName('\u2800\u2800'), { ok: false, problem: 'blank' }, 'braille blanks render blank')
  t.same(checkName('\uFE0F'), { ok: false, problem: 'blank' }, 'a lone variation selector renders blank')
  t.same(checkName('a\u2028b'), { ok: false, problem: 'control' }, 'a line separator breaks the line like a newline')
  t.same(checkName('a\uD800b'), { ok: false, problem: 'control' }, 'a lone surrogate is not text')
  t.same(checkName('\u2764\uFE0F'), { ok: true, name: '\u2764\uFE0F' }, 'a variation selector after a visible character is fine')
  t.same(checkName('Zoë 李'), { ok: true, name: 'Zoë 李' })
  t.same(checkName('Zoe\u0308'), { ok: true, name: 'Zo\u00EB' }, 'NFC: e + combining diaeresis is stored as ë')
  t.same(checkName('e\u0301'.repeat(32)), { ok: true, name: '\u00E9'.repeat(32) }, 'lengths count after NFC: 64 code points become 32')
  t.same(checkName('\u00A0\u3000bob\u2003'), { ok: true, name: 'bob' }, 'Unicode spaces are trimmed')
})

t.test('resolveName: the upgrade\'s name parameter', async (t) => {
  t.same(resolveName(' bob '), { name: 'bob' })
  const guests = Array.from({ length: 50 }, () => resolveName(undefined))
  t.ok(guests.every((guest) => 'name' in guest && /^guest-[0-9a-f]{4}$/.test(guest.name)), 'absent: guest- and four lowercase hex digits')
  t.ok(new Set(guests.map((guest) => 'name' in guest && guest.name)).size > 1, 'random, not fixed')
  t.same(resolveName(['a', 'b']), { error: 'name must be given once' })
  t.same(resolveName(' '), { error: 'name must be 1-32 characters after trimming' })
  t.same(resolveName('a\u0001b'), { error: 'name must not contain control characters' })
  t.same(resolveName('\u202Enimda'), { error: 'name must not contain format characters (bidi controls, zero-width characters)' })
  t.same(resolveName('\u3164'), { error: 'name must not be blank' })
})

t.test('text: 1 to the limit, in code points', async (t) => {
  t.equal(textLengthAllowed('', 3), false)
  t.equal(textLengthAllowed('abc', 3), true)
  t.equal(textLengthAllowed('abcd', 3), false)
  t.equal(textLengthAllowed(emoji.repeat(3), 3), true, 'six UTF-16 units, three code points')
  t.equal(textLengthAllowed(emoji.repeat(4), 3), false)
  t.equal(textRule(4096), '1-4096 characters')
  t.equal(codePointLength(emoji + 'a'), 2)
})
