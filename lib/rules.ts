// The rules on rooms, display names and message text, each written once:
// the frame parser, the HTTP routes and the page (via GET /config.json) use these.
// No Node imports: public/chat-client.js type-checks against this file with DOM types only.

/**
 * A room id. The `-` is escaped so that the source also compiles with the `v`
 * flag, which browsers apply to an input's `pattern` attribute (the page gets
 * this source from GET /config.json); eslint knows only the older flags.
 */
// eslint-disable-next-line no-useless-escape
export const ROOM_PATTERN = /^[A-Za-z0-9_.:\-]{1,64}$/
/** ROOM_PATTERN in words, for error messages and the page. */
export const ROOM_RULE = '1-64 characters of A-Z a-z 0-9 _ - . :'

/** Longest display name, in code points after trimming. */
export const NAME_MAX_LENGTH = 32

/**
 * Refused in names as control characters: Cc, and what breaks a line or is
 * not text at all (line/paragraph separators, lone surrogates).
 */
export const NAME_CONTROL = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}]/u

/**
 * Refused in names as format characters (Cf): bidi overrides and isolates
 * (U+202E makes "nimda" render as "admin"), zero-width characters, soft
 * hyphens, tags: they change how a name looks without being seen.
 */
export const NAME_FORMAT = /\p{Cf}/u

/**
 * A name made only of these renders as nothing: white space, the other
 * default-ignorable characters (Hangul fillers, variation selectors) and the
 * braille blank.
 */
export const NAME_BLANK = /^[\p{White_Space}\p{Default_Ignorable_Code_Point}\u2800]*$/u

/** Length in Unicode code points, as the contract counts. */
export function codePointLength (text: string): number {
  // Counts surrogate pairs instead of allocating an array of code points.
  let pairs = 0
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) { pairs++; i++ }
    }
  }
  return text.length - pairs
}

/** The text rule: 1 to `maxTextLength` (MAX_TEXT_LENGTH) code points, any Unicode. */
export function textLengthAllowed (text: string, maxTextLength: number): boolean {
  const length = codePointLength(text)
  return length >= 1 && length <= maxTextLength
}

/** The text rule in words, for error messages. */
export function textRule (maxTextLength: number): string {
  return `1-${maxTextLength} characters`
}

export type NameProblem = 'length' | 'control' | 'format' | 'blank'

export type NameCheck =
  | { ok: true, name: string }
  | { ok: false, problem: NameProblem }

/**
 * The display-name rule (PROTOCOL §1), for the `name` of an upgrade and the
 * `from` of a broadcast alike: trimmed and NFC-normalised, then
 * 1-NAME_MAX_LENGTH code points, no control or format character, not blank.
 * Callers word the problem for their own audience.
 */
export function checkName (raw: string): NameCheck {
  // NFC first, so "e" + U+0301 counts (and is stored) as one "é".
  const name = raw.normalize('NFC').trim()
  const length = codePointLength(name)
  if (length < 1 || length > NAME_MAX_LENGTH) return { ok: false, problem: 'length' }
  if (NAME_CONTROL.test(name)) return { ok: false, problem: 'control' }
  if (NAME_FORMAT.test(name)) return { ok: false, problem: 'format' }
  if (NAME_BLANK.test(name)) return { ok: false, problem: 'blank' }
  return { ok: true, name }
}

/** Each problem of checkName in words, after "name must" (upgrade) or "expected" (broadcast). */
export const NAME_PROBLEMS: Record<NameProblem, string> = {
  length: `be 1-${NAME_MAX_LENGTH} characters after trimming`,
  control: 'not contain control characters',
  format: 'not contain format characters (bidi controls, zero-width characters)',
  blank: 'not be blank'
}

/** A name for a client that gave none: `guest-` and four random lowercase hex digits. */
function guestName (): string {
  const [random = 0] = crypto.getRandomValues(new Uint16Array(1))
  return `guest-${random.toString(16).padStart(4, '0')}`
}

/**
 * The `name` query parameter of an upgrade (absent, given once, or given
 * several times) as the name to use, or the message of the 400 refusing it.
 */
export function resolveName (raw: unknown): { name: string } | { error: string } {
  if (raw === undefined) return { name: guestName() }
  if (typeof raw !== 'string') return { error: 'name must be given once' }
  const checked = checkName(raw)
  if (checked.ok) return { name: checked.name }
  return { error: `name must ${NAME_PROBLEMS[checked.problem]}` }
}
