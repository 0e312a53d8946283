// HTTP helpers for the integration tests: the broadcast API and Prometheus
// metrics read over the wire.
import { TEST_TOKEN } from './server.js'

export interface BroadcastReply {
  id: string
  room: string
  ts: number
}

/** POST /rooms/:room/broadcast with the test token; throws unless the answer is 202. */
export async function broadcast (baseUrl: string, room: string, text: string, from?: string): Promise<BroadcastReply> {
  const response = await fetch(`${baseUrl}/rooms/${encodeURIComponent(room)}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(from === undefined ? { text } : { text, from })
  })
  const body = await response.json() as BroadcastReply
  if (response.status !== 202) throw new Error(`broadcast answered ${response.status}: ${JSON.stringify(body)}`)
  return body
}

/**
 * The value of one sample from GET /metrics: `name` with exactly the labels
 * given (the `node` default label is ignored). Undefined when absent.
 */
export async function metric (baseUrl: string, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const response = await fetch(`${baseUrl}/metrics`)
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`)
  const text = await response.text()
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const found: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[pair[1] as string] = pair[2] as string
    delete found.node
    const wanted = Object.entries(labels)
    if (Object.keys(found).length !== wanted.length) continue
    if (wanted.every(([key, value]) => found[key] === value)) return Number(match[3])
  }
  return undefined
}
