// Who the page is: the name form (kept in localStorage across visits) and the
// "as <name>" line for the name the server settled on.
import { byId } from './dom.js'

/** @typedef {import('./chat-client.js').ChatClient} ChatClient */
/** @typedef {import('./limits.js').Limits} Limits */
/** @typedef {import('./state.js').PageState} PageState */

const NAME_KEY = 'chat.name'

/** @returns {string | undefined} the name chosen on an earlier visit */
export function loadName () {
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

/**
 * @param {object} parts
 * @param {ChatClient} parts.client
 * @param {PageState} parts.state
 * @param {Limits} parts.limits
 * @param {() => void} parts.onNameSet the name form was submitted with a valid name
 * @returns {{ applyName: () => boolean, focus: () => void }}
 */
export function mountIdentity ({ client, state, limits, onNameSet }) {
  const identity = byId('identity', HTMLParagraphElement)
  const form = byId('name-form', HTMLFormElement)
  const input = byId('name-input', HTMLInputElement)
  const error = byId('name-error', HTMLParagraphElement)

  /**
   * Applies the name typed in the name field; a change reconnects under the new name.
   * @returns {boolean} false when the name is invalid (the reason is shown)
   */
  function applyName () {
    const result = limits.checkName(input.value)
    if (!result.ok) {
      error.textContent = result.message
      input.setAttribute('aria-invalid', 'true')
      return false
    }
    error.textContent = ''
    input.removeAttribute('aria-invalid')
    if (result.name !== client.name) {
      saveName(result.name)
      client.setName(result.name)
    }
    return true
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (applyName()) onNameSet()
    else input.focus()
  })
  input.addEventListener('change', () => { applyName() })

  client.on('state', ({ state: connection }) => {
    if (connection !== 'online') identity.hidden = true
  })
  client.on('welcome', (welcome) => {
    state.me = welcome.name
    // Isolated, so a name's direction cannot pull "as" into it.
    const name = document.createElement('bdi')
    name.textContent = welcome.name
    identity.replaceChildren('as ', name)
    identity.hidden = false
  })

  input.value = client.name ?? ''
  return { applyName, focus: () => input.focus() }
}
