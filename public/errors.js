// The page's words for a refused request or a lost connection.
import { ChatError } from './chat-client.js'

/** @typedef {import('./limits.js').PagePolicy} PagePolicy */

/**
 * What the page knows that makes a refusal plain: the room's policy (when the
 * server published it) and whether this connection is signed in.
 * @typedef {object} ErrorContext
 * @property {Readonly<PagePolicy>} [policy]
 * @property {boolean} [signedIn]
 */

/**
 * @param {unknown} error a ChatError, or anything else that went wrong
 * @param {ErrorContext} [context]
 * @returns {string}
 */
export function describeError (error, context = {}) {
  if (!(error instanceof ChatError)) return 'Something went wrong. Please try again.'
  switch (error.code) {
    case 'rate_limited': return `Slow down: you are sending too fast. (${error.message})`
    case 'invalid_frame': return `Not sent: ${error.message}`
    case 'unavailable': return `Not sent: the service is temporarily unavailable, please try again. (${error.message})`
    case 'not_joined': return `Not sent: you are not in this room. (${error.message})`
    case 'too_many_rooms': return `You are in too many rooms: leave one first. (${error.message})`
    case 'timeout': return `Not confirmed: the service did not answer in time, so the message may or may not have been posted; if it was, it will appear. (${error.message})`
    case 'disconnected': return 'Not sent: you are offline. Try again once reconnected.'
    case 'token_invalid': return `Your sign-in could not be renewed. (${error.message})`
    case 'unauthorized': return `You are not allowed in: sign in again. (${error.message})`
    case 'forbidden': return describeForbidden(error, context)
  }
}

/**
 * A room's policy or the token's grants refused a join, a message or a
 * signal (PROTOCOL §8): say which, where, and the likely reason in words.
 * @param {ChatError} error
 * @param {ErrorContext} context
 * @returns {string}
 */
function describeForbidden ({ room, operation }, { policy, signedIn = false }) {
  const where = room ?? 'this room'
  if (operation === 'join') return `You are not allowed to join ${where} — ${joinReason(policy, signedIn)}.`
  if (operation === 'signal') return `You cannot send signals in ${where} — ${signalReason(policy)}.`
  return `You cannot post in ${where} — ${sendReason(policy, signedIn)}.`
}

/**
 * @param {Readonly<PagePolicy> | undefined} policy
 * @param {boolean} signedIn
 * @returns {string}
 */
function joinReason (policy, signedIn) {
  switch (policy?.join) {
    case 'authenticated': return signedIn ? 'the room\'s rules do not let you in' : 'it is for signed-in users only; sign in first'
    case 'owner': return 'it is a personal room, open only to its owner'
    case 'granted': return signedIn ? 'your sign-in does not grant it' : 'it needs a sign-in that grants access to it'
    default: return signedIn ? 'your sign-in does not grant it' : 'the room\'s rules do not let guests in; sign in first'
  }
}

/**
 * @param {Readonly<PagePolicy> | undefined} policy
 * @param {boolean} signedIn
 * @returns {string}
 */
function sendReason (policy, signedIn) {
  if (policy?.send === 'none') return 'it is read-only: only announcements are posted here'
  return signedIn ? 'your sign-in does not grant posting here' : 'posting here needs a sign-in that grants it'
}

/**
 * @param {Readonly<PagePolicy> | undefined} policy
 * @returns {string}
 */
function signalReason (policy) {
  if (policy?.send === 'none') return 'it is read-only'
  if (policy?.signals === false) return 'the room does not allow them'
  return 'you may not post here'
}
