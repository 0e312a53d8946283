// The server's rules for names, room ids and message text, and its room
// policies, read from GET /config.json at start, so the page checks what the
// server will check. Without it the page checks no limits, treats every room
// as open, and shows the server's refusals.

/** How long the page waits for /config.json before going on without limits. */
const CONFIG_TIMEOUT_MS = 5000
// The server's name rule (lib/rules.ts: NAME_CONTROL, NAME_FORMAT, NAME_BLANK).
// Rules, not limits, so not in /config.json; test/client/limits.test.ts checks
// that the page refuses exactly what the server refuses.
/** Control characters, line breaks and lone surrogates. */
const NAME_CONTROL = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}]/u
/** Format characters: bidi overrides and isolates, zero-width characters. */
const NAME_FORMAT = /\p{Cf}/u
/** A name made only of these renders as nothing. */
const NAME_BLANK = /^[\p{White_Space}\p{Default_Ignorable_Code_Point}\u2800]*$/u

/**
 * @typedef {object} PageConfig the body of GET /config.json
 * @property {number} maxTextLength in code points
 * @property {number} maxNameLength in code points, after trimming
 * @property {string} roomPattern a RegExp source a room id matches in full
 * @property {string} roomRule the room rule in words
 * @property {string} [tokenUrl] where to fetch the connection token (PAGE_TOKEN_URL)
 * @property {true} [authRequired] guests are refused (AUTH_REQUIRED)
 * @property {Policies} [policies] the room policies (NAMESPACES_FILE), when the server publishes them
 */

/**
 * A room's policy as the page needs it (PROTOCOL §8).
 * @typedef {object} PagePolicy
 * @property {'anyone' | 'authenticated' | 'granted' | 'owner'} join
 * @property {'members' | 'granted' | 'none'} send `none`: a read-only room, only the HTTP API posts
 * @property {boolean} presence
 * @property {boolean} signals whether members may send signals such as `typing`
 */

/**
 * @typedef {object} Policies
 * @property {PagePolicy} default for rooms whose namespace is not listed
 * @property {Map<string, PagePolicy>} namespaces by namespace name
 */

/**
 * The policy of a room when the server says nothing: anyone joins and posts,
 * presence and signals on (the server's own default).
 * @type {Readonly<PagePolicy>}
 */
export const OPEN_POLICY = Object.freeze({ join: 'anyone', send: 'members', presence: true, signals: true })

/** @type {ReadonlyArray<PagePolicy['join']>} */
const JOIN_RULES = ['anyone', 'authenticated', 'granted', 'owner']
/** @type {ReadonlyArray<PagePolicy['send']>} */
const SEND_RULES = ['members', 'granted', 'none']

/** @typedef {{ ok: true, name: string | undefined } | { ok: false, message: string }} NameCheck */

/**
 * Length in Unicode code points, as the server counts (not UTF-16 units).
 * @param {string} text
 * @returns {number}
 */
export function codePointLength (text) {
  let length = 0
  // A string's iterator walks code points (a surrogate pair is one step).
  // eslint-disable-next-line no-unused-vars
  for (const _ of text) length++
  return length
}

/**
 * The namespace of a room: its id up to the first `:` (`support:42` →
 * `support`); undefined for a room with none.
 * @param {string} room
 * @returns {string | undefined}
 */
export function namespaceOf (room) {
  const colon = room.indexOf(':')
  return colon === -1 ? undefined : room.slice(0, colon)
}

/**
 * A policy from the config; a field the page does not understand keeps the open default.
 * @param {unknown} value
 * @returns {PagePolicy}
 */
function parsePolicy (value) {
  const { join, send, presence, signals } = typeof value === 'object' && value !== null ? /** @type {Record<string, unknown>} */ (value) : {}
  return {
    join: JOIN_RULES.find((rule) => rule === join) ?? OPEN_POLICY.join,
    send: SEND_RULES.find((rule) => rule === send) ?? OPEN_POLICY.send,
    presence: typeof presence === 'boolean' ? presence : OPEN_POLICY.presence,
    signals: typeof signals === 'boolean' ? signals : OPEN_POLICY.signals
  }
}

/**
 * @param {unknown} value the `policies` of /config.json
 * @returns {Policies | undefined}
 */
function parsePolicies (value) {
  if (typeof value !== 'object' || value === null) return undefined
  const { default: fallback, namespaces } = /** @type {Record<string, unknown>} */ (value)
  /** @type {Map<string, PagePolicy>} */
  const byName = new Map()
  if (typeof namespaces === 'object' && namespaces !== null) {
    // Own keys only, into a Map: a namespace called "constructor" is just a name.
    for (const [name, policy] of Object.entries(namespaces)) byName.set(name, parsePolicy(policy))
  }
  return { default: parsePolicy(fallback), namespaces: byName }
}

/**
 * @param {unknown} body
 * @returns {PageConfig}
 */
function parseConfig (body) {
  if (typeof body !== 'object' || body === null) throw new TypeError('not an object')
  const { maxTextLength, maxNameLength, roomPattern, roomRule, tokenUrl, authRequired, policies } = /** @type {Record<string, unknown>} */ (body)
  if (!Number.isSafeInteger(maxTextLength) || !Number.isSafeInteger(maxNameLength) ||
      typeof roomPattern !== 'string' || typeof roomRule !== 'string') {
    throw new TypeError('unexpected fields')
  }
  /** @type {PageConfig} */
  const config = { maxTextLength: Number(maxTextLength), maxNameLength: Number(maxNameLength), roomPattern, roomRule }
  if (typeof tokenUrl === 'string') config.tokenUrl = tokenUrl
  if (authRequired === true) config.authRequired = true
  const parsed = parsePolicies(policies)
  if (parsed !== undefined) config.policies = parsed
  return config
}

export class Limits {
  /** @type {PageConfig | undefined} */
  #config
  /** @type {RegExp | undefined} */
  #roomPattern

  /** @param {PageConfig} [config] left out: no limits known */
  constructor (config) {
    this.#config = config
    this.#roomPattern = config === undefined ? undefined : new RegExp(config.roomPattern)
  }

  /**
   * The server's limits, or none (with a warning on the console) when they
   * cannot be read.
   * @param {URL} url the server's /config.json
   * @returns {Promise<Limits>}
   */
  static async load (url) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(CONFIG_TIMEOUT_MS) })
      if (!response.ok) throw new Error(`GET ${url.pathname} answered ${response.status}`)
      return new Limits(parseConfig(await response.json()))
    } catch (error) {
      console.warn('Limits unknown, the server will check them:', error)
      return new Limits()
    }
  }

  /** @returns {string | undefined} where the page gets its connection token, when the server says */
  get tokenUrl () { return this.#config?.tokenUrl }

  /** @returns {boolean} whether the server refuses guests */
  get authRequired () { return this.#config?.authRequired === true }

  /**
   * The policy of `room`: its namespace's, else the default; open when the server published none.
   * @param {string} room
   * @returns {Readonly<PagePolicy>}
   */
  policyFor (room) {
    const policies = this.#config?.policies
    if (policies === undefined) return OPEN_POLICY
    const namespace = namespaceOf(room)
    return (namespace === undefined ? undefined : policies.namespaces.get(namespace)) ?? policies.default
  }

  /** @returns {string | undefined} the room rule in words, when known */
  get roomRule () { return this.#config?.roomRule }

  /**
   * The name as the server would take it, trimmed and NFC-normalised (`undefined`: a guest name).
   * @param {string} raw as typed
   * @returns {NameCheck}
   */
  checkName (raw) {
    const name = raw.normalize('NFC').trim()
    if (name === '') return { ok: true, name: undefined }
    const max = this.#config?.maxNameLength
    if (max !== undefined && codePointLength(name) > max) return { ok: false, message: `A name has at most ${max} characters.` }
    if (NAME_CONTROL.test(name)) return { ok: false, message: 'A name cannot contain control characters.' }
    if (NAME_FORMAT.test(name)) return { ok: false, message: 'A name cannot contain invisible formatting characters (direction marks, zero-width characters).' }
    if (NAME_BLANK.test(name)) return { ok: false, message: 'A name cannot be blank.' }
    return { ok: true, name }
  }

  /**
   * @param {string} room trimmed
   * @returns {string | undefined} why the server would refuse `room`, if it would
   */
  checkRoom (room) {
    if (room === '') return 'Type a room name.'
    if (this.#roomPattern !== undefined && !this.#roomPattern.test(room)) return `Not a room name (${this.roomRule}).`
    return undefined
  }

  /**
   * @param {string} text as it will be sent
   * @returns {number | undefined} characters left before the limit (negative: over it), when known
   */
  textLeft (text) {
    const max = this.#config?.maxTextLength
    return max === undefined ? undefined : max - codePointLength(text)
  }
}
