// Message ids: `<epoch>-<seq>`. The sequence orders a room's log; the epoch
// names one incarnation of that log, so an id from a log that was lost (a
// restarted single node, a flushed Redis) is recognised as unknown rather
// than mistaken for a position in the new one.
import { randomBytes } from 'node:crypto'

export interface MessagePosition {
  epoch: string
  seq: number
}

export function newEpoch (): string {
  return randomBytes(4).toString('hex')
}

export function formatMessageId (epoch: string, seq: number): string {
  return `${epoch}-${seq}`
}

export function parseMessageId (id: string): MessagePosition | undefined {
  const dash = id.lastIndexOf('-')
  if (dash <= 0) return undefined
  const digits = id.slice(dash + 1)
  if (!/^[1-9]\d{0,15}$/.test(digits)) return undefined
  return { epoch: id.slice(0, dash), seq: Number(digits) }
}
