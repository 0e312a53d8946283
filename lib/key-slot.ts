// Redis Cluster's key → slot mapping (CRC16/XMODEM of the hash tag, mod
// 16384), so a node can tell which master serves a channel without asking:
// the readiness probe needs one channel on every master, and a resubscribe
// one channel of its own per master to wait on.

export const CLUSTER_SLOTS = 16384

const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[byte] = crc
  }
  return table
})()

function crc16 (bytes: Buffer): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number)
  return crc
}

/** The slot of `key`: only its hash tag counts (the part between the first `{` and the next `}`, when not empty). */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) key = key.slice(open + 1, close)
  }
  return crc16(Buffer.from(key)) % CLUSTER_SLOTS
}
