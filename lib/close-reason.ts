// A WebSocket close reason must fit in 123 bytes of UTF-8 (RFC 6455 §5.5);
// `ws` throws on a longer one. Reasons that quote input are cut to fit.

export const CLOSE_REASON_MAX_BYTES = 123

/** `text` cut to at most CLOSE_REASON_MAX_BYTES of UTF-8, never inside a character. */
export function fitCloseReason (text: string): string {
  if (Buffer.byteLength(text) <= CLOSE_REASON_MAX_BYTES) return text
  let out = ''
  let bytes = 0
  for (const character of text) {
    const size = Buffer.byteLength(character)
    if (bytes + size > CLOSE_REASON_MAX_BYTES) break
    out += character
    bytes += size
  }
  return out
}
