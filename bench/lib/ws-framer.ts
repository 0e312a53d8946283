// The bare baseline's framer: a text frame built by ws's own `Sender.frame`
// (not in @types/ws), as a server on ws alone builds it.
import * as wsModule from 'ws'

const Sender = (wsModule as unknown as {
  Sender: { frame (data: Buffer, options: { fin: boolean, rsv1: boolean, opcode: number, mask: boolean, readOnly: boolean }): Buffer[] }
}).Sender
const TEXT_OPCODE = 1

/** One complete unmasked text frame carrying `payload`. */
export function wsTextFrame (payload: Buffer): Buffer {
  return Buffer.concat(Sender.frame(payload, { fin: true, rsv1: false, opcode: TEXT_OPCODE, mask: false, readOnly: false }))
}
