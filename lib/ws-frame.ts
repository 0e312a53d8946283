// Server → client WebSocket frames (RFC 6455 §5.2), built once per message.
// A server frame is never masked, so the same bytes are valid on every
// connection: the hub builds a message's frame once and writes it to every
// member, with no per-member header, copy or JSON work.

/** A complete unmasked text frame (FIN, opcode 1) carrying `json`. */
export function textFrame (json: string): Buffer {
  const length = Buffer.byteLength(json)
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  frame.write(json, headerLength)
  return frame
}
