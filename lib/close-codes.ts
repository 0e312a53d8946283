// WebSocket close codes the server sends (PROTOCOL §3), by name: no bare
// numbers anywhere else in the code.
export const CloseCode = {
  /** Server shutting down: reconnect elsewhere and resume with `since`. */
  GOING_AWAY: 1001,
  /** A binary frame. */
  UNSUPPORTED_DATA: 1003,
  /** Repeated rate-limit abuse. */
  POLICY: 1008,
  /** An unexpected error on the server. */
  INTERNAL_ERROR: 1011,
  /** Slow consumer, or a dependency away: reconnect after a backoff and resume. */
  TRY_AGAIN_LATER: 1013,
  /** The connection's token expired: get a fresh one, reconnect and resume. */
  TOKEN_EXPIRED: 4001,
  /** Token missing (when required), invalid or revoked: do not reconnect with the same token. */
  UNAUTHORIZED: 4003
} as const

export type CloseCode = typeof CloseCode[keyof typeof CloseCode]
