// The message box: enabled while a room is on screen, Enter sends,
// a counter near the server's length limit, and the reason a send failed.
// In a read-only room (policy `send: none`) it gives way to a note saying so.
import { ChatError } from './chat-client.js'
import { byId } from './dom.js'
import { describeError } from './errors.js'

/** @typedef {import('./chat-client.js').ChatClient} ChatClient */
/** @typedef {import('./limits.js').Limits} Limits */
/** @typedef {import('./state.js').PageState} PageState */

/** Show the character counter once this few are left. */
const COUNTER_FROM = 200

/**
 * @param {object} parts
 * @param {ChatClient} parts.client
 * @param {PageState} parts.state
 * @param {Limits} parts.limits
 * @returns {{ focus: () => void }}
 */
export function mountComposer ({ client, state, limits }) {
  const form = byId('composer-form', HTMLFormElement)
  const composer = byId('composer-input', HTMLTextAreaElement)
  const send = byId('send-button', HTMLButtonElement)
  const charCount = byId('char-count', HTMLParagraphElement)
  const error = byId('composer-error', HTMLParagraphElement)
  const row = byId('composer-row', HTMLDivElement)
  const footer = byId('composer-footer', HTMLDivElement)
  const readOnlyNote = byId('read-only-note', HTMLParagraphElement)

  /**
   * @param {string} room
   * @returns {import('./errors.js').ErrorContext}
   */
  function contextOf (room) {
    return { policy: limits.policyFor(room), signedIn: client.welcome?.user !== undefined }
  }

  /** @returns {void} */
  function renderCharCount () {
    const left = limits.textLeft(composer.value.trim())
    charCount.textContent = left === undefined || left > COUNTER_FROM
      ? ''
      : left < 0 ? `${-left} characters over the limit` : `${left} characters left`
  }

  /** @returns {void} */
  function sendComposed () {
    const room = state.shown?.name
    const text = composer.value.trim()
    if (room === undefined || text === '') return
    const left = limits.textLeft(text)
    if (left !== undefined && left < 0) {
      error.textContent = `Not sent: ${-left} characters over the limit.`
      return
    }
    composer.value = ''
    renderCharCount()
    error.textContent = ''
    client.send(room, text).catch((/** @type {unknown} */ reason) => {
      // Give the text back unless the user has started a new message.
      if (composer.value === '' && state.shown?.name === room) {
        composer.value = text
        renderCharCount()
      }
      error.textContent = describeError(reason, contextOf(room))
    })
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    sendComposed()
    composer.focus()
  })
  composer.addEventListener('keydown', (event) => {
    // isComposing: Enter that confirms an IME candidate must not send.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault()
      sendComposed()
    }
  })
  composer.addEventListener('input', () => {
    renderCharCount()
    if (error.textContent !== '') error.textContent = ''
  })

  state.subscribe((change) => {
    if (change.type !== 'shown') return
    const { room } = change
    // Not a dead input: a room nobody may post in says so instead.
    const readOnly = room !== undefined && limits.policyFor(room.name).send === 'none'
    row.hidden = readOnly
    footer.hidden = readOnly
    readOnlyNote.hidden = !readOnly
    composer.disabled = room === undefined || readOnly
    send.disabled = room === undefined || readOnly
    composer.placeholder = room === undefined ? 'Join a room to chat' : `Message ${room.name}`
    error.textContent = ''
  })

  client.on('error', (event) => {
    if (event.room !== undefined) return // about a room: the join form shows it
    error.textContent = describeError(new ChatError(event.code, event.message))
  })

  return { focus: () => composer.focus() }
}
