// What the page shows, without the DOM: the rooms in tab order, the one on
// screen, each room's recent lines and unread count. Views subscribe to its
// changes and redraw only what a change names.

/** Lines kept per room, in memory and in the DOM; older ones scroll away. */
const MAX_ENTRIES = 500

/**
 * A line of a room's log: a message, or a note from the page itself.
 * @typedef {{ kind: 'message', id: string, from: string, text: string, ts: number, user?: string, api?: true }
 *   | { kind: 'system', text: string, ts: number, note?: 'recovery' }} Entry
 */

/**
 * @typedef {object} RoomView
 * @property {string} name
 * @property {Entry[]} entries oldest first, at most MAX_ENTRIES
 * @property {number} unread messages that arrived while another room was shown
 * @property {boolean} confirmed the server has accepted the join at least once
 */

/**
 * A change, as views receive it:
 * - `added`, `updated` (joined, unread, shown or not), `removed`: one room's tab;
 * - `shown`: another room (or none) is on screen;
 * - `entry`: a line was added to `room` (and its oldest one `dropped` to keep the bound).
 * @typedef {{ type: 'added' | 'updated', room: RoomView }
 *   | { type: 'removed', name: string }
 *   | { type: 'shown', room: RoomView | undefined }
 *   | { type: 'entry', room: RoomView, entry: Entry, dropped: boolean }} Change
 */

export class PageState {
  /** @type {Map<string, RoomView>} in tab order */
  #rooms = new Map()
  /** @type {RoomView | undefined} */
  #shown
  /** @type {Set<(change: Change) => void>} */
  #listeners = new Set()
  /**
   * The name the server gave us last; kept while reconnecting, to mark our own messages.
   * @type {string | undefined}
   */
  me

  /**
   * @param {(change: Change) => void} listener
   * @returns {void}
   */
  subscribe (listener) {
    this.#listeners.add(listener)
  }

  /**
   * @param {Change} change
   * @returns {void}
   */
  #emit (change) {
    for (const listener of this.#listeners) listener(change)
  }

  /** @returns {RoomView | undefined} the room on screen */
  get shown () { return this.#shown }

  /** @returns {IterableIterator<RoomView>} in tab order */
  rooms () { return this.#rooms.values() }

  /**
   * @param {string} name
   * @returns {RoomView | undefined}
   */
  get (name) { return this.#rooms.get(name) }

  /** @returns {number} unread messages over all rooms */
  unreadTotal () {
    let total = 0
    for (const room of this.#rooms.values()) total += room.unread
    return total
  }

  /**
   * Adds a tab for a room being joined (not yet confirmed), at the end.
   * @param {string} name not already a room here
   * @returns {RoomView}
   */
  add (name) {
    const room = { name, entries: [], unread: 0, confirmed: false }
    this.#rooms.set(name, room)
    this.#emit({ type: 'added', room })
    return room
  }

  /**
   * Marks `room` as accepted by the server, if it is still the page's room of that name.
   * @param {RoomView} room
   * @returns {void}
   */
  confirm (room) {
    if (this.#rooms.get(room.name) !== room || room.confirmed) return
    room.confirmed = true
    this.#emit({ type: 'updated', room })
  }

  /**
   * Puts `name` on screen (`undefined`: none) and marks it read. A name that
   * is not a room here changes nothing.
   * @param {string | undefined} name
   * @returns {void}
   */
  show (name) {
    const room = name === undefined ? undefined : this.#rooms.get(name)
    if (room === this.#shown || (room === undefined && name !== undefined)) return
    const previous = this.#shown
    this.#shown = room
    if (previous !== undefined && this.#rooms.has(previous.name)) this.#emit({ type: 'updated', room: previous })
    if (room !== undefined) {
      room.unread = 0
      this.#emit({ type: 'updated', room })
    }
    this.#emit({ type: 'shown', room })
  }

  /**
   * Removes a room (left, refused or lost). When it was on screen, its
   * neighbour in the tabs takes its place: the next one, else the previous.
   * @param {string} name
   * @returns {void}
   */
  remove (name) {
    const room = this.#rooms.get(name)
    if (room === undefined) return
    const names = [...this.#rooms.keys()]
    const index = names.indexOf(name)
    this.#rooms.delete(name)
    this.#emit({ type: 'removed', name })
    if (room === this.#shown) this.show(names[index + 1] ?? names[index - 1])
  }

  /**
   * Adds a line to a room's log, dropping the oldest beyond MAX_ENTRIES.
   * @param {string} name
   * @param {Entry} entry
   * @param {boolean} countsAsUnread a message someone else sent
   * @returns {void}
   */
  addEntry (name, entry, countsAsUnread) {
    const room = this.#rooms.get(name)
    if (room === undefined) return
    room.entries.push(entry)
    const dropped = room.entries.length > MAX_ENTRIES
    if (dropped) room.entries.shift()
    this.#emit({ type: 'entry', room, entry, dropped })
    if (countsAsUnread && room !== this.#shown) {
      room.unread++
      this.#emit({ type: 'updated', room })
    }
  }
}
