// The room on screen: its title and its log (messages, joins and leaves,
// recovery notes), kept pinned to the bottom while the reader is there.
// Also turns the client's room events into log lines in the page state.
import { byId, paintAvatar, part, showTime, templateOf } from './dom.js'

/** @typedef {import('./chat-client.js').ChatClient} ChatClient */
/** @typedef {import('./state.js').PageState} PageState */
/** @typedef {import('./state.js').Entry} Entry */
/** @typedef {import('./state.js').RoomView} RoomView */

/** Pixels from the bottom within which new lines keep the list pinned. */
const PIN_SLACK = 48

/**
 * @param {object} parts
 * @param {ChatClient} parts.client
 * @param {PageState} parts.state
 * @returns {void}
 */
export function mountMessages ({ client, state }) {
  const list = byId('messages', HTMLOListElement)
  const emptyState = byId('empty-state', HTMLDivElement)
  const title = byId('room-title', HTMLHeadingElement)
  const newMessage = templateOf('message-template', HTMLLIElement)
  const newSystemLine = templateOf('system-template', HTMLLIElement)

  /**
   * @param {Entry} entry
   * @returns {HTMLLIElement}
   */
  function renderEntry (entry) {
    if (entry.kind === 'system') {
      const line = newSystemLine()
      if (entry.note === 'recovery') {
        line.classList.add('recovery-note')
        line.dataset.testid = 'recovery-note'
      }
      part(line, '.system-text', HTMLSpanElement).textContent = entry.text
      showTime(part(line, 'time', HTMLTimeElement), entry.ts)
      return line
    }
    const item = newMessage()
    item.classList.toggle('mine', entry.from === state.me)
    item.dataset.id = entry.id
    paintAvatar(part(item, '.avatar', HTMLSpanElement), entry.from)
    part(item, '.from', HTMLElement).textContent = entry.from
    // What a reader may trust: a verified user, the back office. A guest's name alone gets no badge.
    const badge = part(item, '.badge', HTMLSpanElement)
    if (entry.api === true) {
      item.classList.add('from-api')
      badge.textContent = 'API'
      badge.title = 'posted by the service through its HTTP API'
      badge.hidden = false
    } else if (entry.user !== undefined) {
      item.classList.add('from-user')
      badge.textContent = '✓'
      badge.title = `signed-in user ${entry.user}`
      badge.hidden = false
    }
    showTime(part(item, 'time', HTMLTimeElement), entry.ts)
    part(item, '.text', HTMLParagraphElement).textContent = entry.text
    return item
  }

  /** @returns {void} */
  function scrollToBottom () {
    list.scrollTop = list.scrollHeight
  }

  /**
   * @param {RoomView | undefined} room
   * @returns {void}
   */
  function renderRoom (room) {
    // Re-filling the live region would read the whole history aloud.
    list.setAttribute('aria-busy', 'true')
    list.replaceChildren(...(room?.entries ?? []).map(renderEntry))
    list.setAttribute('aria-busy', 'false')
    list.hidden = room === undefined
    emptyState.hidden = room !== undefined
    title.textContent = room === undefined ? 'No room selected' : room.name
    list.setAttribute('aria-label', room === undefined ? 'Messages' : `Messages in ${room.name}`)
    scrollToBottom()
  }

  state.subscribe((change) => {
    if (change.type === 'shown') {
      renderRoom(change.room)
    } else if (change.type === 'entry' && change.room === state.shown) {
      const pinned = list.scrollHeight - list.scrollTop - list.clientHeight < PIN_SLACK
      if (change.dropped) list.firstElementChild?.remove()
      list.append(renderEntry(change.entry))
      if (pinned) scrollToBottom()
    }
  })

  client.on('message', (frame) => {
    const { id, from, text, ts, user, api } = frame
    /** @type {import('./state.js').Entry} */
    const entry = { kind: 'message', id, from, text, ts }
    if (user !== undefined) entry.user = user
    if (api === true) entry.api = true
    state.addEntry(frame.room, entry, frame.from !== state.me)
  })
  client.on('presence', (frame) => {
    const ts = Date.now()
    for (const name of frame.joined) state.addEntry(frame.room, { kind: 'system', text: `${name} joined`, ts }, false)
    for (const name of frame.left) state.addEntry(frame.room, { kind: 'system', text: `${name} left`, ts }, false)
  })
  client.on('recovery-failed', ({ room }) => {
    const text = 'Reconnected, but some messages could not be recovered.'
    state.addEntry(room, { kind: 'system', note: 'recovery', text, ts: Date.now() }, false)
  })

  renderRoom(state.shown)
}
