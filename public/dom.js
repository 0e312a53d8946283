// Small DOM helpers shared by the page's modules: typed lookups, <template>
// cloning and the avatar. Text is only ever set through textContent.

/** Avatar colours in styles.css (.hue-0 … .hue-7). */
const AVATAR_HUES = 8

/**
 * The element with `id`, checked to be a `type`.
 * @template {Element} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
export function byId (id, type) {
  const element = document.getElementById(id)
  if (!(element instanceof type)) throw new Error(`#${id} missing from index.html`)
  return element
}

/**
 * The first element matching `selector` inside `root`, checked to be a `type`.
 * @template {Element} T
 * @param {ParentNode} root
 * @param {string} selector
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
export function part (root, selector, type) {
  const element = root.querySelector(selector)
  if (!(element instanceof type)) throw new Error(`${selector} missing from a template in index.html`)
  return element
}

/**
 * A function that returns a fresh copy of the root element of
 * `<template id="…">` in index.html, checked to be a `type`.
 * @template {Element} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {() => T}
 */
export function templateOf (id, type) {
  const root = byId(id, HTMLTemplateElement).content.firstElementChild
  if (!(root instanceof type)) throw new Error(`<template id="${id}"> has no ${type.name} at its root`)
  return () => /** @type {T} */ (root.cloneNode(true))
}

/**
 * Colours `avatar` for `name` and gives it the name's initial. The colour is a
 * class (inline styles are barred by the CSP); the initial is drawn by CSS from
 * an attribute, keeping it out of the text of the message or member it sits in.
 * @param {HTMLElement} avatar
 * @param {string} name
 * @returns {void}
 */
export function paintAvatar (avatar, name) {
  let hash = 0
  for (const char of name) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0
  avatar.classList.add(`hue-${hash % AVATAR_HUES}`)
  avatar.dataset.initial = [...name][0]?.toUpperCase() ?? '?'
}

/**
 * Shows `ts` in `time`: the time in the reader's locale, the date too when not
 * today; the full date and time as a tooltip.
 * @param {HTMLTimeElement} time
 * @param {number} ts milliseconds since the epoch
 * @returns {void}
 */
export function showTime (time, ts) {
  const date = new Date(ts)
  const sameDay = date.toDateString() === new Date().toDateString()
  time.textContent = sameDay
    ? date.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' })
    : date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })
  time.dateTime = date.toISOString()
  time.title = date.toLocaleString()
}
