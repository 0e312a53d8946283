// The rooms side of the page: the join form, and the tabs (one per room, with
// its unread count and a leave button) updated in place, with one click
// listener for the whole list.
import { ChatError } from './chat-client.js'
import { byId, part, templateOf } from './dom.js'
import { describeError } from './errors.js'

/** @typedef {import('./chat-client.js').ChatClient} ChatClient */
/** @typedef {import('./limits.js').Limits} Limits */
/** @typedef {import('./state.js').PageState} PageState */
/** @typedef {import('./state.js').RoomView} RoomView */

/** Unread counts above this show as "99+". */
const UNREAD_SHOWN_MAX = 99

/**
 * @param {object} parts
 * @param {ChatClient} parts.client
 * @param {PageState} parts.state
 * @param {Limits} parts.limits
 * @param {{ applyName: () => boolean, focus: () => void }} parts.identity the name form
 * @param {() => void} parts.onJoin a room was joined from the form
 * @returns {{ focus: () => void }}
 */
export function mountRooms ({ client, state, limits, identity, onJoin }) {
  const form = byId('join-form', HTMLFormElement)
  const input = byId('room-input', HTMLInputElement)
  const hint = byId('room-hint', HTMLParagraphElement)
  const error = byId('join-error', HTMLParagraphElement)
  const list = byId('room-list', HTMLUListElement)
  const noRooms = byId('no-rooms', HTMLParagraphElement)
  const newItem = templateOf('room-item-template', HTMLLIElement)
  /** @type {Map<string, HTMLLIElement>} */
  const items = new Map()
  const pageTitle = document.title

  /**
   * @param {string | undefined} room the room the message is about, if any
   * @param {string} message
   * @returns {void}
   */
  function showError (room, message) {
    error.textContent = message
    if (room === undefined) delete error.dataset.room
    else error.dataset.room = room
  }

  /**
   * @param {string} room
   * @returns {import('./errors.js').ErrorContext}
   */
  function contextOf (room) {
    return { policy: limits.policyFor(room), signedIn: client.welcome?.user !== undefined }
  }

  /**
   * Joins `name` (unless already in it) and shows it.
   * @param {string} name
   * @returns {void}
   */
  function join (name) {
    if (state.get(name) === undefined) {
      const room = state.add(name)
      // Accepted: the `joined` listener below confirms it (for re-joins too).
      client.join(name).catch((/** @type {unknown} */ reason) => {
        // `disconnected`: the client was stopped (a policy close) and keeps the
        // room for the next connect(), so the page keeps its tab too.
        if (reason instanceof ChatError && reason.code === 'disconnected') return
        if (state.get(name) !== room) return // left (and maybe joined again) meanwhile
        state.remove(name)
        // A policy refusal names the room itself; other reasons follow "Could not join".
        const forbidden = reason instanceof ChatError && reason.code === 'forbidden'
        showError(name, forbidden ? describeError(reason, contextOf(name)) : `Could not join ${name}. ${describeError(reason)}`)
      })
    }
    state.show(name)
  }

  /**
   * @param {string} name
   * @returns {void}
   */
  function leave (name) {
    state.remove(name)
    client.leave(name).catch(() => {}) // the room is gone locally either way
    // Keep keyboard users in the list rather than dropping focus on <body>.
    const shown = state.shown
    const tab = shown === undefined ? undefined : items.get(shown.name)?.querySelector('.room-tab')
    if (tab instanceof HTMLElement) tab.focus()
    else input.focus()
  }

  /**
   * Brings a room's tab up to date.
   * @param {HTMLLIElement} item
   * @param {RoomView} room
   * @returns {void}
   */
  function renderTab (item, room) {
    const tab = part(item, '.room-tab', HTMLButtonElement)
    const badge = part(item, '.unread', HTMLSpanElement)
    if (room === state.shown) tab.setAttribute('aria-current', 'true')
    else tab.removeAttribute('aria-current')
    tab.classList.toggle('pending', !room.confirmed)
    badge.hidden = room.unread === 0
    badge.textContent = room.unread > UNREAD_SHOWN_MAX ? `${UNREAD_SHOWN_MAX}+` : String(room.unread)
    const notes = []
    if (room.unread > 0) notes.push(`${room.unread} unread`)
    if (!room.confirmed) notes.push('joining')
    if (notes.length > 0) tab.setAttribute('aria-label', `${room.name} (${notes.join(', ')})`)
    else tab.removeAttribute('aria-label')
  }

  /** @returns {void} */
  function renderTotals () {
    noRooms.hidden = items.size > 0
    const unread = state.unreadTotal()
    document.title = unread > 0 ? `(${unread}) ${pageTitle}` : pageTitle
  }

  state.subscribe((change) => {
    switch (change.type) {
      case 'added': {
        const { room } = change
        const item = newItem()
        const tab = part(item, '.room-tab', HTMLButtonElement)
        const leaveButton = part(item, '.room-leave', HTMLButtonElement)
        tab.dataset.room = room.name
        leaveButton.dataset.room = room.name
        part(tab, '.room-name', HTMLSpanElement).textContent = room.name
        leaveButton.setAttribute('aria-label', `Leave ${room.name}`)
        leaveButton.title = `Leave ${room.name}`
        renderTab(item, room)
        items.set(room.name, item)
        list.append(item)
        renderTotals()
        break
      }
      case 'updated': {
        const item = items.get(change.room.name)
        if (item !== undefined) renderTab(item, change.room)
        renderTotals()
        break
      }
      case 'removed':
        items.get(change.name)?.remove()
        items.delete(change.name)
        renderTotals()
        break
    }
  })

  // One listener for every tab and leave button, present and future.
  list.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-room]') : null
    if (!(button instanceof HTMLButtonElement) || button.dataset.room === undefined) return
    if (button.classList.contains('room-leave')) leave(button.dataset.room)
    else state.show(button.dataset.room)
  })

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    // Someone who typed a name and went straight to "Join" means that name.
    if (!identity.applyName()) {
      identity.focus()
      return
    }
    const name = input.value.trim()
    const refusal = limits.checkRoom(name)
    if (refusal !== undefined) {
      showError(undefined, refusal)
      input.setAttribute('aria-invalid', 'true')
      input.focus()
      return
    }
    showError(undefined, '')
    input.removeAttribute('aria-invalid')
    input.value = ''
    join(name)
    onJoin()
  })

  client.on('joined', (frame) => {
    const room = state.get(frame.room)
    if (room === undefined) return
    state.confirm(room)
    if (error.dataset.room === frame.room) showError(undefined, '')
  })

  client.on('error', (event) => {
    if (event.room === undefined) return // not about a room: the composer shows it
    if (event.willRetry === true) {
      showError(event.room, `${event.room} is unavailable right now; retrying. (${event.message})`)
      return
    }
    // A room refused on re-join: the client has dropped it, so does the page.
    state.remove(event.room)
    if (event.code === 'forbidden') {
      const refusal = new ChatError('forbidden', event.message, { room: event.room, operation: 'join' })
      showError(event.room, `Lost ${event.room}. ${describeError(refusal, contextOf(event.room))}`)
    } else {
      showError(event.room, `Lost ${event.room}: ${event.message}`)
    }
  })

  client.on('left', (event) => {
    // The server took the room away (a refreshed sign-in no longer grants it).
    if (event.byServer !== true || state.get(event.room) === undefined) return
    state.remove(event.room)
    showError(event.room, `You are no longer in ${event.room} — your sign-in no longer grants it.`)
  })

  if (limits.roomRule === undefined) hint.hidden = true
  else hint.textContent = limits.roomRule
  renderTotals()
  return { focus: () => input.focus() }
}
