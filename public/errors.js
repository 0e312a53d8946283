// The page's words for a refused request or a lost connection.
import { ChatError } from './chat-client.js'

/**
 * @param {unknown} error a ChatError, or anything else that went wrong
 * @returns {string}
 */
export function describeError (error) {
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
    case 'forbidden': return `Not allowed in this room. (${error.message})`
  }
}
