// Where a connection's token comes from on the upgrade request (PROTOCOL §1):
// the `bearer.<token>` subprotocol (preferred: it stays out of URLs) or the
// `token` query parameter. The answered subprotocol is `chat`, never the token.

/** The subprotocol the server answers when a client offers it. */
export const CHAT_PROTOCOL = 'chat'
/** Prefix of the subprotocol that carries a token. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.'

export type OfferedToken =
  | { kind: 'none' }
  | { kind: 'token', token: string }
  /** Two different tokens: nobody can tell which one the client meant. */
  | { kind: 'conflict' }

/** The `handleProtocols` of the WebSocket server: `chat` when offered; a bearer token is never echoed. */
export function chooseProtocol (protocols: Set<string>): string | false {
  return protocols.has(CHAT_PROTOCOL) ? CHAT_PROTOCOL : false
}

/**
 * The token the request offers. `protocolHeader` is Sec-WebSocket-Protocol,
 * `query` the parsed `token` query parameter (a string, or an array when repeated).
 */
export function offeredToken (protocolHeader: string | string[] | undefined, query: unknown): OfferedToken {
  const tokens = new Set<string>()
  const header = Array.isArray(protocolHeader) ? protocolHeader.join(',') : protocolHeader
  if (header !== undefined) {
    for (const item of header.split(',')) {
      const protocol = item.trim()
      if (protocol.startsWith(BEARER_PROTOCOL_PREFIX)) tokens.add(protocol.slice(BEARER_PROTOCOL_PREFIX.length))
    }
  }
  for (const value of Array.isArray(query) ? query : [query]) {
    if (typeof value === 'string') tokens.add(value)
  }
  if (tokens.size === 0) return { kind: 'none' }
  if (tokens.size > 1) return { kind: 'conflict' }
  return { kind: 'token', token: tokens.values().next().value as string }
}
