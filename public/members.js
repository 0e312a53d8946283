// The members of the room on screen (you first, then by name, with a count
// when someone is connected more than once), in a panel that is a drawer on
// narrow screens. A room whose policy turns presence off says so instead.
import { byId, paintAvatar, part, templateOf } from './dom.js'

/** @typedef {import('./chat-client.js').ChatClient} ChatClient */
/** @typedef {import('./state.js').PageState} PageState */
/** @typedef {import('./limits.js').Limits} Limits */

/**
 * @param {object} parts
 * @param {ChatClient} parts.client
 * @param {PageState} parts.state
 * @param {Limits} parts.limits
 * @returns {void}
 */
export function mountMembers ({ client, state, limits }) {
  const panel = byId('members-panel', HTMLElement)
  const list = byId('member-list', HTMLUListElement)
  const count = byId('members-count', HTMLSpanElement)
  const toggle = byId('members-toggle', HTMLButtonElement)
  const close = byId('members-close', HTMLButtonElement)
  const newMember = templateOf('member-template', HTMLLIElement)
  const hiddenNote = byId('members-hidden', HTMLParagraphElement)

  /** @returns {void} */
  function render () {
    const room = state.shown
    // The server lists nobody there (`joined.members` is empty): not "you are alone".
    const hidden = room !== undefined && !limits.policyFor(room.name).presence
    hiddenNote.hidden = !hidden
    const members = room === undefined || hidden ? new Map() : client.members(room.name)
    const me = state.me
    const names = [...members.keys()].sort((a, b) => {
      if (a === me) return -1
      if (b === me) return 1
      return a.localeCompare(b)
    })
    list.replaceChildren(...names.map((name) => {
      const item = newMember()
      item.classList.toggle('self', name === me)
      item.dataset.name = name
      paintAvatar(part(item, '.avatar', HTMLSpanElement), name)
      part(item, '.member-name', HTMLElement).textContent = name
      const connections = members.get(name) ?? 1
      if (connections > 1) {
        // Shown by CSS from the attribute, so the item's text stays the bare name.
        item.dataset.count = String(connections)
        item.title = `${name}: ${connections} connections`
      }
      return item
    }))
    count.textContent = hidden ? '–' : String(names.length)
  }

  /**
   * Opens or closes the drawer (only a drawer on narrow screens).
   * @param {boolean} open
   * @returns {void}
   */
  function setOpen (open) {
    panel.classList.toggle('open', open)
    toggle.setAttribute('aria-expanded', String(open))
    if (open) close.focus()
  }

  toggle.addEventListener('click', () => setOpen(!panel.classList.contains('open')))
  close.addEventListener('click', () => {
    setOpen(false)
    toggle.focus()
  })
  panel.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || !panel.classList.contains('open')) return
    setOpen(false)
    toggle.focus()
  })

  state.subscribe((change) => {
    if (change.type === 'shown') render()
  })
  /** @param {{ room: string }} frame */
  const renderIfShown = (frame) => {
    if (frame.room === state.shown?.name) render()
  }
  client.on('joined', renderIfShown)
  client.on('presence', renderIfShown)

  render()
}
