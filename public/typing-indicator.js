// "… is typing" on the page: the composer tells the room (a `typing` signal,
// at most one per TYPING_SIGNAL_INTERVAL_MS per room while the user types,
// never where the room's policy forbids signals or posting), and the line
// under the log shows who else is typing, each until TYPING_SHOWN_MS after
// their last signal or until their message arrives.
import { ChatError } from './chat-client.js'
import { byId } from './dom.js'
import { TYPING_EVENT, TypingThrottle, TypingTracker, typingPhrase } from './typing.js'

/** @typedef {import('./chat-client.js').ChatClient} ChatClient */
/** @typedef {import('./limits.js').Limits} Limits */
/** @typedef {import('./state.js').PageState} PageState */

/**
 * @param {object} parts
 * @param {ChatClient} parts.client
 * @param {PageState} parts.state
 * @param {Limits} parts.limits
 * @returns {void}
 */
export function mountTyping ({ client, state, limits }) {
  const composer = byId('composer-input', HTMLTextAreaElement)
  const indicator = byId('typing-indicator', HTMLParagraphElement)
  const throttle = new TypingThrottle()
  /** Rooms where the server refused a typing signal: not asked again on this connection. */
  const refused = new Set()
  /** The server does not know signals at all (an older version): none until the next connection. */
  let unsupported = false

  /** @returns {void} */
  function render () {
    const room = state.shown
    const pieces = room === undefined ? [] : typingPhrase(tracker.names(room.name))
    indicator.replaceChildren(...pieces.map((piece) => {
      if (typeof piece === 'string') return piece
      const name = document.createElement('bdi')
      name.textContent = piece.name
      return name
    }))
    indicator.hidden = pieces.length === 0
  }

  const tracker = new TypingTracker((room) => {
    if (room === state.shown?.name) render()
  })

  composer.addEventListener('input', () => {
    const room = state.shown?.name
    if (room === undefined || unsupported || composer.value.trim() === '' || refused.has(room) || !client.isJoined(room)) return
    const policy = limits.policyFor(room)
    if (!policy.signals || policy.send === 'none') return
    if (!throttle.take(room)) return
    client.signal(room, TYPING_EVENT).catch((/** @type {unknown} */ error) => {
      // The room's rules (or the token's grants) refuse it: stop asking there. Rate limits and drops pass.
      if (!(error instanceof ChatError)) return
      if (error.code === 'forbidden') refused.add(room)
      else if (error.code === 'invalid_frame') unsupported = true
    })
  })

  client.on('signal', (frame) => {
    if (frame.event !== TYPING_EVENT) return
    // My own other tab or device is not "someone typing".
    if (frame.user !== undefined && frame.user === client.welcome?.user) return
    tracker.typing(frame.room, TypingTracker.keyOf(frame), frame.from)
  })
  client.on('message', (frame) => {
    tracker.stopped(frame.room, TypingTracker.keyOf(frame))
    if (frame.from === state.me) throttle.reset(frame.room)
  })
  client.on('left', ({ room }) => tracker.clear(room))
  client.on('state', ({ state: now }) => {
    if (now === 'online') {
      refused.clear()
      unsupported = false
    } else {
      tracker.clearAll()
    }
  })
  state.subscribe((change) => {
    if (change.type === 'removed') tracker.clear(change.name)
    else if (change.type === 'shown') render()
  })
  render()
}
