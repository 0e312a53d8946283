// "… is typing" without the DOM: when the composer may send the next
// `typing` signal, who is shown as typing in each room and until when, and
// the sentence. Tested in Node; typing-indicator.js binds it to the page.

/** The signal's event, as the server relays it. */
export const TYPING_EVENT = 'typing'

/**
 * At most one `typing` signal per room this often while the user types: far
 * below the server's signal bucket (SIGNAL_RATE_PER_SEC 5, SIGNAL_BURST 10),
 * and often enough that the others' TYPING_SHOWN_MS never runs out mid-sentence.
 */
export const TYPING_SIGNAL_INTERVAL_MS = 2000

/** How long "… is typing" stays after that member's last signal (PROTOCOL §8). */
export const TYPING_SHOWN_MS = 5000

/**
 * A one-shot timer (lib/timer.ts's shape, so tests can drive it).
 * @typedef {{ set (callback: () => void, ms: number): unknown, clear (handle: unknown): void }} Timer
 */

/** @type {Timer} */
const browserTimer = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (handle))
}

/** Decides when the composer may send the next `typing` signal, per room. */
export class TypingThrottle {
  /** @type {Map<string, number>} room → when its last signal went out */
  #sentAt = new Map()
  /** @type {() => number} */
  #now

  /** @param {() => number} [now] milliseconds; `Date.now` by default */
  constructor (now = Date.now) {
    this.#now = now
  }

  /**
   * True (and counted as sent) when a signal may go out for `room` now.
   * @param {string} room
   * @returns {boolean}
   */
  take (room) {
    const now = this.#now()
    const last = this.#sentAt.get(room)
    if (last !== undefined && now - last < TYPING_SIGNAL_INTERVAL_MS) return false
    this.#sentAt.set(room, now)
    return true
  }

  /**
   * The user's message went out: the next keystroke starts a new message and signals at once.
   * @param {string} room
   * @returns {void}
   */
  reset (room) {
    this.#sentAt.delete(room)
  }
}

/**
 * @typedef {object} Typist
 * @property {string} name as the last signal gave it
 * @property {unknown} timer hides it after TYPING_SHOWN_MS
 */

/** Who is typing in each room, each until their signal runs out or their message arrives. */
export class TypingTracker {
  /** @type {Map<string, Map<string, Typist>>} room → member key → typist, in order of their first signal */
  #rooms = new Map()
  /** @type {(room: string) => void} */
  #onChange
  /** @type {Timer} */
  #timer

  /**
   * @param {(room: string) => void} onChange told whenever a room's typists change
   * @param {Timer} [timer]
   */
  constructor (onChange, timer = browserTimer) {
    this.#onChange = onChange
    this.#timer = timer
  }

  /**
   * The member a frame comes from: its user id when signed in (a user is one
   * person whatever its name), else its display name.
   * @param {{ from: string, user?: string }} frame
   * @returns {string}
   */
  static keyOf ({ from, user }) {
    return user === undefined ? `name:${from}` : `user:${user}`
  }

  /**
   * A `typing` signal arrived: show the member (again) for TYPING_SHOWN_MS.
   * @param {string} room
   * @param {string} key from `keyOf`
   * @param {string} name
   * @returns {void}
   */
  typing (room, key, name) {
    let typists = this.#rooms.get(room)
    if (typists === undefined) {
      typists = new Map()
      this.#rooms.set(room, typists)
    }
    const known = typists.get(key)
    if (known !== undefined) this.#timer.clear(known.timer)
    const timer = this.#timer.set(() => this.stopped(room, key), TYPING_SHOWN_MS)
    typists.set(key, { name, timer })
    if (known?.name !== name) this.#onChange(room)
  }

  /**
   * The member is no longer typing (its signal ran out, or its message arrived).
   * @param {string} room
   * @param {string} key
   * @returns {void}
   */
  stopped (room, key) {
    const typists = this.#rooms.get(room)
    const known = typists?.get(key)
    if (typists === undefined || known === undefined) return
    this.#timer.clear(known.timer)
    typists.delete(key)
    if (typists.size === 0) this.#rooms.delete(room)
    this.#onChange(room)
  }

  /**
   * Forgets a room (left, or the connection was lost).
   * @param {string} room
   * @returns {void}
   */
  clear (room) {
    const typists = this.#rooms.get(room)
    if (typists === undefined) return
    for (const { timer } of typists.values()) this.#timer.clear(timer)
    this.#rooms.delete(room)
    this.#onChange(room)
  }

  /** @returns {void} */
  clearAll () {
    for (const room of [...this.#rooms.keys()]) this.clear(room)
  }

  /**
   * @param {string} room
   * @returns {string[]} names of who is typing there, in order of their first signal
   */
  names (room) {
    return [...(this.#rooms.get(room)?.values() ?? [])].map((typist) => typist.name)
  }
}

/**
 * The sentence for who is typing, in pieces: `{ name }` pieces are shown in
 * a <bdi>, so a name's direction characters cannot reorder the sentence.
 * @param {string[]} names
 * @returns {Array<string | { name: string }>} empty when nobody types
 */
export function typingPhrase (names) {
  const [first, second] = names
  if (first === undefined) return []
  if (second === undefined) return [{ name: first }, ' is typing']
  if (names.length === 2) return [{ name: first }, ' and ', { name: second }, ' are typing']
  return [`${names.length} people are typing`]
}
