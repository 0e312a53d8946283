// The connection banner in the header: the client's state in words, a
// countdown to the next try, and the "Retry now" / "Reconnect" button.
import { byId } from './dom.js'

/** @typedef {import('./chat-client.js').ChatClient} ChatClient */
/** @typedef {import('./chat-client.js').ConnectionState} ConnectionState */

/** How often the countdown to the next try is redrawn. */
const COUNTDOWN_TICK_MS = 250

/** The close code of an unauthorized connection (PROTOCOL §3): no retry will help. */
const CLOSE_UNAUTHORIZED = 4003

/**
 * @param {ChatClient} client
 * @param {{ guestsRefused?: boolean }} [options] `guestsRefused`: the server takes no guests and this page has no way to get a token
 * @returns {void}
 */
export function mountConnectionBanner (client, options = {}) {
  const banner = byId('connection-state', HTMLParagraphElement)
  const label = byId('connection-label', HTMLSpanElement)
  const countdown = byId('connection-countdown', HTMLSpanElement)
  const retry = byId('retry-button', HTMLButtonElement)
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let countdownTimer

  /**
   * @param {ConnectionState} state
   * @returns {void}
   */
  function render (state) {
    clearInterval(countdownTimer)
    countdownTimer = undefined
    banner.dataset.state = state.state
    countdown.textContent = ''
    retry.hidden = true
    switch (state.state) {
      case 'idle':
      case 'connecting':
        label.textContent = state.state === 'connecting' && state.attempt > 0 ? `connecting… (try ${state.attempt + 1})` : 'connecting…'
        break
      case 'online':
        label.textContent = 'online'
        break
      case 'reconnecting': {
        label.textContent = 'reconnecting'
        retry.textContent = 'Retry now'
        retry.hidden = false
        // The seconds tick outside the live region's spoken text (aria-hidden).
        const until = Date.now() + state.delayMs
        const tick = () => {
          countdown.textContent = ` in ${Math.max(1, Math.ceil((until - Date.now()) / 1000))}s`
        }
        tick()
        countdownTimer = setInterval(tick, COUNTDOWN_TICK_MS)
        break
      }
      case 'closed':
        if (state.code === CLOSE_UNAUTHORIZED) {
          label.textContent = options.guestsRefused === true
            ? 'This chat is for signed-in users only, and this page cannot sign you in.'
            : `Not allowed in${state.reason ? ` (${state.reason})` : ''}: sign in again, then reconnect.`
        } else {
          label.textContent = state.code === undefined
            ? 'disconnected'
            : `disconnected by the server${state.reason ? `: ${state.reason}` : ''}`
        }
        retry.textContent = 'Reconnect'
        retry.hidden = false
        break
    }
  }

  retry.addEventListener('click', () => {
    if (client.state.state === 'closed') client.connect()
    else client.retryNow()
  })
  client.on('state', render)
  render(client.state)
}
