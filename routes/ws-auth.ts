// The token step of GET /ws (PROTOCOL §1, §7), right after the upgrade: a
// guest opens at once; a token is verified first, and a refusal closes the
// socket with 4001, 4003 or 1013 and a reason the client can show.
import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { closeCodeFor, type Authenticator } from '../lib/auth/authenticator.js'
import type { Identity } from '../lib/auth/identity.js'
import { offeredToken } from '../lib/auth/offered-token.js'
import { CloseCode } from '../lib/close-codes.js'
import { fitCloseReason } from '../lib/close-reason.js'
import type { Connection } from '../lib/connection.js'

/** Frames a client may send before its token is checked; beyond them the socket is paused until it is. */
export const FRAMES_HELD_DURING_AUTH_MAX = 16
const OPEN = 1

/**
 * Opens the connection (`open`) as a guest or as the token's user, or
 * closes the socket. Frames sent meanwhile are held, then handed over in order.
 */
export function admitConnection (
  socket: WebSocket,
  request: FastifyRequest,
  authenticator: Authenticator,
  open: (identity: Identity | undefined) => Connection
): void {
  const offered = offeredToken(request.headers['sec-websocket-protocol'], (request.query as Record<string, unknown>).token)
  // The guest path stays synchronous: nothing changes for clients without a token.
  if (offered.kind === 'none' && !authenticator.required) {
    open(undefined)
    return
  }
  const held: Array<[Buffer, boolean]> = []
  const hold = (data: Buffer, isBinary: boolean) => {
    held.push([data, isBinary])
    if (held.length === FRAMES_HELD_DURING_AUTH_MAX) socket.pause()
  }
  socket.on('message', hold)
  authenticator.admit(offered).then((outcome) => {
    socket.off('message', hold)
    if (socket.readyState !== OPEN) return
    if (outcome !== undefined && !outcome.ok) {
      socket.close(closeCodeFor(outcome.reason), fitCloseReason(outcome.message))
      return
    }
    const connection = open(outcome?.identity)
    for (const [data, isBinary] of held) connection.receive(data, isBinary)
    if (socket.isPaused) socket.resume()
  }, (error: unknown) => {
    socket.off('message', hold)
    request.log.error({ err: error }, 'checking a connection token failed unexpectedly; closed with 1011')
    if (socket.readyState === OPEN) socket.close(CloseCode.INTERNAL_ERROR, 'internal error')
  })
}
