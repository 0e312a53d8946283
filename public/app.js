// The chat page: binds the DOM in index.html to a ChatClient.
// User-supplied text (names, rooms, messages) only ever goes through
// textContent / createTextNode, never through HTML parsing.
import { ChatClient, ChatError } from './chat-client.js'

/** @typedef {import('./chat-client.js').ConnectionState} ConnectionState */
/** @typedef {import('./chat-client.js').MessageFrame} MessageFrame */

/**
 * @typedef {{ kind: 'message', id: string, from: string, text: string, ts: number }
 *   | { kind: 'system', text: string, ts: number, note?: 'recovery' }} Entry
 */

/**
 * @typedef {object} RoomView
 * @property {string} name
 * @property {Entry[]} entries oldest first, at most MAX_ENTRIES
 * @property {number} unread messages that arrived while another room was shown
 * @property {boolean} confirmed the server has accepted the join at least once
 */

const NAME_KEY = 'chat.name'
/** Messages kept per room, in memory and in the DOM; older ones scroll away. */
const MAX_ENTRIES = 500
const NAME_MAX = 32
const TEXT_MAX = 4096
/** Show the character counter once this few are left. */
const COUNTER_FROM = 200
/** Pixels from the bottom within which new messages keep the list pinned. */
const PIN_SLACK = 48
const ROOM_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/
const CONTROL_CHARS = /\p{Cc}/u
const AVATAR_HUES = 8

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
function byId (id, type) {
  const element = document.getElementById(id)
  if (!(element instanceof type)) throw new Error(`#${id} missing from index.html`)
  return element
}

const ui = {
  identity: byId('identity', HTMLParagraphElement),
  connection: byId('connection-state', HTMLParagraphElement),
  connectionLabel: byId('connection-label', HTMLSpanElement),
  connectionCountdown: byId('connection-countdown', HTMLSpanElement),
  retryButton: byId('retry-button', HTMLButtonElement),
  nameForm: byId('name-form', HTMLFormElement),
  nameInput: byId('name-input', HTMLInputElement),
  nameError: byId('name-error', HTMLParagraphElement),
  joinForm: byId('join-form', HTMLFormElement),
  roomInput: byId('room-input', HTMLInputElement),
  joinError: byId('join-error', HTMLParagraphElement),
  roomList: byId('room-list', HTMLUListElement),
  noRooms: byId('no-rooms', HTMLParagraphElement),
  roomTitle: byId('room-title', HTMLHeadingElement),
  membersToggle: byId('members-toggle', HTMLButtonElement),
  membersCount: byId('members-count', HTMLSpanElement),
  messages: byId('messages', HTMLOListElement),
  emptyState: byId('empty-state', HTMLDivElement),
  composerForm: byId('composer-form', HTMLFormElement),
  composer: byId('composer-input', HTMLTextAreaElement),
  sendButton: byId('send-button', HTMLButtonElement),
  charCount: byId('char-count', HTMLParagraphElement),
  composerError: byId('composer-error', HTMLParagraphElement),
  membersPanel: byId('members-panel', HTMLElement),
  membersClose: byId('members-close', HTMLButtonElement),
  memberList: byId('member-list', HTMLUListElement)
}

// -- storage ----------------------------------------------------------------

/** @returns {string | undefined} */
function loadName () {
  try {
    return localStorage.getItem(NAME_KEY) ?? undefined
  } catch {
    return undefined // storage disabled: the name lasts for this page only
  }
}

/**
 * @param {string | undefined} name
 * @returns {void}
 */
function saveName (name) {
  try {
    if (name === undefined) localStorage.removeItem(NAME_KEY)
    else localStorage.setItem(NAME_KEY, name)
  } catch {
    // Storage disabled or full: not worth bothering the user about.
  }
}

// -- state ------------------------------------------------------------------

/** @type {Map<string, RoomView>} */
const rooms = new Map()
/** @type {string | undefined} */
let activeRoom
/** @type {ReturnType<typeof setInterval> | undefined} */
let countdownTimer
/**
 * The name the server gave us last; kept while reconnecting, to mark our own messages.
 * @type {string | undefined}
 */
let myName

const savedName = loadName()
ui.nameInput.value = savedName ?? ''

const socketUrl = new URL('/ws', location.href)
socketUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
const client = new ChatClient({ url: socketUrl, ...(savedName === undefined ? {} : { name: savedName }) })

// -- helpers ----------------------------------------------------------------

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function el (tag, className, text) {
  const element = document.createElement(tag)
  if (className !== undefined) element.className = className
  if (text !== undefined) element.textContent = text
  return element
}

/**
 * A stable colour for a name, as a class (inline styles are barred by the CSP).
 * @param {string} name
 * @returns {string}
 */
function hueClass (name) {
  let hash = 0
  for (const char of name) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0
  return `hue-${hash % AVATAR_HUES}`
}

/**
 * A coloured disc with the name's initial. The initial is drawn by CSS from an
 * attribute, keeping it out of the text of the message or member it sits in.
 * @param {string} name
 * @param {string} className
 * @returns {HTMLElement}
 */
function avatarFor (name, className) {
  const avatar = el('span', `${className} ${hueClass(name)}`)
  avatar.dataset.initial = [...name][0]?.toUpperCase() ?? '?'
  avatar.setAttribute('aria-hidden', 'true')
  return avatar
}

/**
 * @param {number} ts
 * @returns {string} the time in the reader's locale; the date too when not today
 */
function formatTime (ts) {
  const date = new Date(ts)
  const sameDay = date.toDateString() === new Date().toDateString()
  return sameDay
    ? date.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' })
    : date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })
}

/**
 * @param {string} raw
 * @returns {{ ok: true, name: string | undefined } | { ok: false, message: string }}
 */
function validateName (raw) {
  const name = raw.trim()
  if (name === '') return { ok: true, name: undefined }
  if ([...name].length > NAME_MAX) return { ok: false, message: `A name has at most ${NAME_MAX} characters.` }
  if (CONTROL_CHARS.test(name)) return { ok: false, message: 'A name cannot contain control characters.' }
  return { ok: true, name }
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function describeError (error) {
  if (!(error instanceof ChatError)) return 'Something went wrong. Please try again.'
  switch (error.code) {
    case 'rate_limited': return `Slow down: you are sending too fast. (${error.message})`
    case 'invalid_frame': return `Not sent: ${error.message}`
    case 'unavailable': return `Not sent: the service is temporarily unavailable, please try again. (${error.message})`
    case 'not_joined': return `Not sent: you are not in this room. (${error.message})`
    case 'too_many_rooms': return `You are in too many rooms: leave one first. (${error.message})`
    case 'timeout': return `Not confirmed: the service did not answer in time, so the message may or may not have been posted; if it was, it will appear. (${error.message})`
    case 'disconnected': return 'Not sent: you are offline. Try again once reconnected.'
  }
}

// -- connection banner ------------------------------------------------------

/**
 * @param {ConnectionState} state
 * @returns {void}
 */
function renderConnection (state) {
  if (countdownTimer !== undefined) clearInterval(countdownTimer)
  countdownTimer = undefined
  ui.connection.dataset.state = state.state
  ui.connectionCountdown.textContent = ''
  ui.retryButton.hidden = true
  switch (state.state) {
    case 'idle':
    case 'connecting':
      ui.connectionLabel.textContent = state.state === 'connecting' && state.attempt > 0 ? `connecting… (try ${state.attempt + 1})` : 'connecting…'
      break
    case 'online':
      ui.connectionLabel.textContent = 'online'
      break
    case 'reconnecting': {
      ui.connectionLabel.textContent = 'reconnecting'
      ui.retryButton.textContent = 'Retry now'
      ui.retryButton.hidden = false
      // The seconds tick outside the live region's spoken text (aria-hidden).
      const until = Date.now() + state.delayMs
      const tick = () => {
        ui.connectionCountdown.textContent = ` in ${Math.max(1, Math.ceil((until - Date.now()) / 1000))}s`
      }
      tick()
      countdownTimer = setInterval(tick, 250)
      break
    }
    case 'closed':
      ui.connectionLabel.textContent = state.code === undefined
        ? 'disconnected'
        : `disconnected by the server${state.reason ? `: ${state.reason}` : ''}`
      ui.retryButton.textContent = 'Reconnect'
      ui.retryButton.hidden = false
      break
  }
}

ui.retryButton.addEventListener('click', () => {
  if (client.state.state === 'closed') client.connect()
  else client.retryNow()
})

// -- rooms ------------------------------------------------------------------

/** @returns {void} */
function renderRoomList () {
  const items = []
  let unreadTotal = 0
  for (const room of rooms.values()) {
    unreadTotal += room.unread
    const item = el('li', 'room-item')
    const tab = el('button', 'room-tab')
    if (!(tab instanceof HTMLButtonElement)) continue
    tab.type = 'button'
    tab.dataset.testid = 'room-tab'
    tab.dataset.room = room.name
    if (room.name === activeRoom) tab.setAttribute('aria-current', 'true')
    if (!room.confirmed) tab.classList.add('pending')
    tab.append(el('span', 'room-name', room.name))
    const notes = []
    if (room.unread > 0) {
      const badge = el('span', 'badge unread', room.unread > 99 ? '99+' : String(room.unread))
      badge.dataset.testid = 'unread-count'
      badge.setAttribute('aria-hidden', 'true')
      tab.append(badge)
      notes.push(`${room.unread} unread`)
    }
    if (!room.confirmed) notes.push('joining')
    if (notes.length > 0) tab.setAttribute('aria-label', `${room.name} (${notes.join(', ')})`)
    tab.addEventListener('click', () => selectRoom(room.name))
    const leave = el('button', 'room-leave', '×')
    leave.setAttribute('type', 'button')
    leave.setAttribute('aria-label', `Leave ${room.name}`)
    leave.title = `Leave ${room.name}`
    leave.dataset.testid = 'leave-room'
    leave.addEventListener('click', () => leaveRoom(room.name))
    item.append(tab, leave)
    items.push(item)
  }
  ui.roomList.replaceChildren(...items)
  ui.noRooms.hidden = rooms.size > 0
  document.title = unreadTotal > 0 ? `(${unreadTotal}) Chat` : 'Chat'
}

/**
 * @param {string} name
 * @returns {void}
 */
function selectRoom (name) {
  const room = rooms.get(name)
  if (room === undefined) return
  activeRoom = name
  room.unread = 0
  renderRoomList()
  renderRoom()
  renderMembers()
}

/**
 * @param {string | undefined} room the room the message is about, if any
 * @param {string} message
 * @returns {void}
 */
function showJoinError (room, message) {
  ui.joinError.textContent = message
  if (room === undefined) delete ui.joinError.dataset.room
  else ui.joinError.dataset.room = room
}

/**
 * @param {string} name
 * @returns {void}
 */
function joinRoom (name) {
  if (!rooms.has(name)) {
    rooms.set(name, { name, entries: [], unread: 0, confirmed: false })
    client.join(name).then(() => {
      const room = rooms.get(name)
      if (room === undefined) return
      room.confirmed = true
      renderRoomList()
    }, (/** @type {unknown} */ error) => {
      // `disconnected`: the client was stopped (a policy close) and keeps the
      // room for the next connect(), so the page keeps its tab too.
      if (error instanceof ChatError && error.code === 'disconnected') return
      if (!rooms.delete(name)) return
      if (activeRoom === name) activeRoom = rooms.keys().next().value
      showJoinError(name, `Could not join ${name}. ${describeError(error)}`)
      renderRoomList()
      renderRoom()
      renderMembers()
    })
  }
  selectRoom(name)
}

/**
 * @param {string} name
 * @returns {void}
 */
function leaveRoom (name) {
  const names = [...rooms.keys()]
  const index = names.indexOf(name)
  if (index === -1) return
  rooms.delete(name)
  client.leave(name).catch(() => {}) // the room is gone locally either way
  if (activeRoom === name) {
    activeRoom = names[index + 1] ?? names[index - 1]
    if (activeRoom === name) activeRoom = undefined
  }
  renderRoomList()
  renderRoom()
  renderMembers()
  // Keep keyboard users in the list rather than dropping focus on <body>.
  const next = ui.roomList.querySelector('[aria-current="true"]')
  if (next instanceof HTMLElement) next.focus()
  else ui.roomInput.focus()
}

// -- messages ---------------------------------------------------------------

/**
 * @param {Entry} entry
 * @returns {HTMLElement}
 */
function renderEntry (entry) {
  const time = el('time', 'time', formatTime(entry.ts))
  time.setAttribute('datetime', new Date(entry.ts).toISOString())
  time.title = new Date(entry.ts).toLocaleString()
  if (entry.kind === 'system') {
    const line = el('li', entry.note === 'recovery' ? 'system recovery-note' : 'system')
    if (entry.note === 'recovery') line.dataset.testid = 'recovery-note'
    line.append(el('span', 'system-text', entry.text), time)
    return line
  }
  const mine = entry.from === myName
  const item = el('li', mine ? 'message mine' : 'message')
  item.dataset.testid = 'message'
  item.dataset.id = entry.id
  const avatar = avatarFor(entry.from, 'avatar')
  const from = el('span', 'from', entry.from)
  from.dataset.testid = 'message-from'
  const meta = el('div', 'meta')
  meta.append(from, document.createTextNode(' '), time)
  const text = el('p', 'text', entry.text)
  text.dataset.testid = 'message-text'
  const body = el('div', 'body')
  body.append(meta, text)
  item.append(avatar, body)
  return item
}

/** @returns {boolean} */
function pinnedToBottom () {
  const list = ui.messages
  return list.scrollHeight - list.scrollTop - list.clientHeight < PIN_SLACK
}

/** @returns {void} */
function scrollToBottom () {
  ui.messages.scrollTop = ui.messages.scrollHeight
}

/**
 * Records an entry and, when its room is shown, appends it to the list.
 * @param {RoomView} room
 * @param {Entry} entry
 * @returns {void}
 */
function addEntry (room, entry) {
  room.entries.push(entry)
  const overflow = room.entries.length > MAX_ENTRIES
  if (overflow) room.entries.shift()
  if (room.name !== activeRoom) return
  const pinned = pinnedToBottom()
  if (overflow) ui.messages.firstElementChild?.remove()
  ui.messages.append(renderEntry(entry))
  if (pinned) scrollToBottom()
}

/** @returns {void} */
function renderRoom () {
  const room = activeRoom === undefined ? undefined : rooms.get(activeRoom)
  // Re-filling the live region would read the whole history aloud.
  ui.messages.setAttribute('aria-busy', 'true')
  ui.messages.replaceChildren(...(room?.entries ?? []).map(renderEntry))
  ui.messages.setAttribute('aria-busy', 'false')
  ui.messages.hidden = room === undefined
  ui.emptyState.hidden = room !== undefined
  ui.roomTitle.textContent = room === undefined ? 'No room selected' : room.name
  ui.messages.setAttribute('aria-label', room === undefined ? 'Messages' : `Messages in ${room.name}`)
  ui.composer.disabled = room === undefined
  ui.sendButton.disabled = room === undefined
  ui.composer.placeholder = room === undefined ? 'Join a room to chat' : `Message ${room.name}`
  ui.composerError.textContent = ''
  scrollToBottom()
}

// -- members ----------------------------------------------------------------

/** @returns {void} */
function renderMembers () {
  const members = activeRoom === undefined ? new Map() : client.members(activeRoom)
  const me = myName
  const names = [...members.keys()].sort((a, b) => {
    if (a === me) return -1
    if (b === me) return 1
    return a.localeCompare(b)
  })
  ui.memberList.replaceChildren(...names.map((name) => {
    const item = el('li', name === me ? 'member self' : 'member')
    item.dataset.testid = 'member'
    item.dataset.name = name
    const label = el('span', 'member-name', name)
    item.append(avatarFor(name, 'avatar avatar-small'), label)
    const count = members.get(name) ?? 1
    if (count > 1) {
      // Shown by CSS from the attribute, so the item's text stays the bare name.
      item.dataset.count = String(count)
      item.title = `${name}: ${count} connections`
    }
    return item
  }))
  ui.membersCount.textContent = String(names.length)
}

/**
 * Opens or closes the members drawer (only a drawer on narrow screens).
 * @param {boolean} open
 * @returns {void}
 */
function setMembersOpen (open) {
  ui.membersPanel.classList.toggle('open', open)
  ui.membersToggle.setAttribute('aria-expanded', String(open))
  if (open) ui.membersClose.focus()
}

ui.membersToggle.addEventListener('click', () => setMembersOpen(!ui.membersPanel.classList.contains('open')))
ui.membersClose.addEventListener('click', () => {
  setMembersOpen(false)
  ui.membersToggle.focus()
})
ui.membersPanel.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || !ui.membersPanel.classList.contains('open')) return
  setMembersOpen(false)
  ui.membersToggle.focus()
})

// -- forms ------------------------------------------------------------------

/**
 * Applies the name typed in the name field; a change reconnects under the new name.
 * @returns {boolean} false when the name is invalid (the reason is shown)
 */
function applyName () {
  const result = validateName(ui.nameInput.value)
  if (!result.ok) {
    ui.nameError.textContent = result.message
    ui.nameInput.setAttribute('aria-invalid', 'true')
    return false
  }
  ui.nameError.textContent = ''
  ui.nameInput.removeAttribute('aria-invalid')
  if (result.name !== client.name) {
    saveName(result.name)
    client.setName(result.name)
  }
  return true
}

ui.nameForm.addEventListener('submit', (event) => {
  event.preventDefault()
  if (applyName()) ui.roomInput.focus()
  else ui.nameInput.focus()
})
ui.nameInput.addEventListener('change', () => { applyName() })

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault()
  // Someone who typed a name and went straight to "Join" means that name.
  if (!applyName()) {
    ui.nameInput.focus()
    return
  }
  const name = ui.roomInput.value.trim()
  if (!ROOM_PATTERN.test(name)) {
    showJoinError(undefined, name === ''
      ? 'Type a room name.'
      : 'A room name has 1 to 64 letters, digits, or _ - . : characters.')
    ui.roomInput.setAttribute('aria-invalid', 'true')
    ui.roomInput.focus()
    return
  }
  showJoinError(undefined, '')
  ui.roomInput.removeAttribute('aria-invalid')
  ui.roomInput.value = ''
  joinRoom(name)
  ui.composer.focus()
})

/** @returns {void} */
function renderCharCount () {
  const left = TEXT_MAX - ui.composer.value.length
  ui.charCount.textContent = left < 0
    ? `${-left} characters over the limit`
    : left <= COUNTER_FROM ? `${left} characters left` : ''
}

/** @returns {void} */
function sendComposed () {
  const room = activeRoom
  const text = ui.composer.value.trim()
  if (room === undefined || text === '') return
  ui.composer.value = ''
  renderCharCount()
  ui.composerError.textContent = ''
  client.send(room, text).catch((/** @type {unknown} */ error) => {
    // Give the text back unless the user has started a new message.
    if (ui.composer.value === '' && activeRoom === room) {
      ui.composer.value = text
      renderCharCount()
    }
    ui.composerError.textContent = describeError(error)
  })
}

ui.composerForm.addEventListener('submit', (event) => {
  event.preventDefault()
  sendComposed()
  ui.composer.focus()
})

ui.composer.addEventListener('keydown', (event) => {
  // isComposing: Enter that confirms an IME candidate must not send.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    sendComposed()
  }
})

ui.composer.addEventListener('input', () => {
  renderCharCount()
  if (ui.composerError.textContent !== '') ui.composerError.textContent = ''
})

// -- client events ----------------------------------------------------------

client.on('state', (state) => {
  renderConnection(state)
  if (state.state !== 'online') ui.identity.hidden = true
})

client.on('welcome', (welcome) => {
  myName = welcome.name
  ui.identity.textContent = `as ${welcome.name}`
  ui.identity.hidden = false
})

client.on('joined', (frame) => {
  const room = rooms.get(frame.room)
  if (room === undefined) return
  if (ui.joinError.dataset.room === frame.room) showJoinError(undefined, '')
  if (frame.room === activeRoom) renderMembers()
})

client.on('message', (frame) => {
  const room = rooms.get(frame.room)
  if (room === undefined) return
  addEntry(room, { kind: 'message', id: frame.id, from: frame.from, text: frame.text, ts: frame.ts })
  if (frame.room !== activeRoom && frame.from !== myName) {
    room.unread++
    renderRoomList()
  }
})

client.on('presence', (frame) => {
  const room = rooms.get(frame.room)
  if (room === undefined) return
  const ts = Date.now()
  for (const name of frame.joined) addEntry(room, { kind: 'system', text: `${name} joined`, ts })
  for (const name of frame.left) addEntry(room, { kind: 'system', text: `${name} left`, ts })
  if (frame.room === activeRoom) renderMembers()
})

client.on('recovery-failed', ({ room: name }) => {
  const room = rooms.get(name)
  if (room === undefined) return
  addEntry(room, {
    kind: 'system',
    note: 'recovery',
    text: 'Reconnected, but some messages could not be recovered.',
    ts: Date.now()
  })
})

client.on('error', (error) => {
  if (error.room !== undefined && error.willRetry === true) {
    showJoinError(error.room, `${error.room} is unavailable right now; retrying. (${error.message})`)
    return
  }
  if (error.room !== undefined) {
    // A room refused on re-join: the client has dropped it, so does the page.
    rooms.delete(error.room)
    if (activeRoom === error.room) activeRoom = rooms.keys().next().value
    renderRoomList()
    renderRoom()
    renderMembers()
    showJoinError(error.room, `Lost ${error.room}: ${error.message}`)
    return
  }
  ui.composerError.textContent = describeError(new ChatError(error.code, error.message))
})

renderConnection(client.state)
renderRoomList()
renderRoom()
renderMembers()
client.connect()
if (savedName === undefined) ui.nameInput.focus()
else ui.roomInput.focus()
