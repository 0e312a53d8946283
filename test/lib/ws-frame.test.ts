// lib/ws-frame.ts against ws's own framer (`Sender.frame`, what a server on ws
// alone would write): every length encoding of RFC 6455 §5.2, at and around
// its boundaries, byte for byte.
import t from 'tap'
import * as wsModule from 'ws'
import { textFrame } from '../../lib/ws-frame.js'

// ws's Sender and Receiver are exported but not in @types/ws.
interface Receiver {
  write (chunk: Buffer): boolean
  on (event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this
  on (event: 'error', listener: (error: Error) => void): this
}
const { Sender, Receiver } = wsModule as unknown as {
  Sender: { frame (data: Buffer, options: { fin: boolean, rsv1: boolean, opcode: number, mask: boolean, readOnly: boolean }): Buffer[] }
  Receiver: new (options: { isServer: boolean, maxPayload: number }) => Receiver
}
const TEXT_OPCODE = 1

function wsFrame (json: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(json), { fin: true, rsv1: false, opcode: TEXT_OPCODE, mask: false, readOnly: false }))
}

/** A JSON text of exactly `bytes` UTF-8 bytes. */
function jsonOf (bytes: number, filler = 'x'): string {
  const text = `{"t":"${filler.repeat(Math.max(0, bytes - 8))}"}`
  if (Buffer.byteLength(text) !== bytes) throw new Error(`built ${Buffer.byteLength(text)} bytes, wanted ${bytes}`)
  return text
}

// 7-bit length up to 125, 16-bit from 126 to 65535, 64-bit from 65536.
const LENGTHS = [8, 125, 126, 127, 1000, 65535, 65536, 65537, 70_000, 1 << 20]

for (const length of LENGTHS) {
  t.test(`a ${length}-byte payload is framed as ws frames it`, async (t) => {
    const json = jsonOf(length)
    const frame = textFrame(json)
    const expected = wsFrame(json)
    t.equal(frame.length, expected.length, 'same frame length')
    t.ok(frame.equals(expected), 'same bytes')
    const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
    t.equal(frame.subarray(headerLength).toString(), json, 'the payload follows the header')
  })
}

t.test('the length counts UTF-8 bytes, not UTF-16 units', async (t) => {
  // 60 two-byte characters: 68 UTF-16 units but 128 bytes, past the 7-bit length only in bytes; 4-byte emoji past 64 KiB.
  for (const json of [`{"t":"${'é'.repeat(60)}"}`, `{"t":"${'😀'.repeat(16_400)}"}`, '{"t":""}']) {
    t.ok(textFrame(json).equals(wsFrame(json)), `${Buffer.byteLength(json)} bytes in ${json.length} UTF-16 units`)
  }
})

t.test('a frame round-trips through a ws receiver', async (t) => {
  const json = jsonOf(65536 + 17)
  const received = await new Promise<string>((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, maxPayload: 0 })
    receiver.on('message', (data, isBinary) => { resolve(isBinary ? 'binary!' : data.toString()) })
    receiver.on('error', reject)
    receiver.write(textFrame(json))
  })
  t.equal(received, json)
})
