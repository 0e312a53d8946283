// Attack tool of issue 10 finding 3: floods a node with client frames from
// --parallel connections, each sending a burst as fast as it can and replaced
// by a fresh one as soon as it is closed, until --seconds have passed. Run in its own process
// so the flood costs the server, not the measuring test.
//   node --import tsx test/tools/frame-flood.ts --url=ws://127.0.0.1:3000/ws --kind=invalid --seconds=5 --parallel=10
// --kind=invalid: 49 KB frames that are valid JSON but not a valid frame (a
// 49 KB room id); --kind=churn: join/leave of one room, 28 bytes each.
// Prints one JSON line: connections, frames sent, rate_limited errors seen,
// and close codes with their counts.
import { parseArgs } from 'node:util'
import WebSocket from 'ws'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    kind: { type: 'string', default: 'invalid' },
    seconds: { type: 'string', default: '5' },
    parallel: { type: 'string', default: '1' },
    /** Frames per connection: twice FRAME_BURST + RATE_LIMIT_STRIKES_BEFORE_CLOSE, as tokens refill while a burst is read. */
    burst: { type: 'string', default: '400' }
  }
})
if (values.url === undefined || (values.kind !== 'invalid' && values.kind !== 'churn')) {
  console.error('usage: frame-flood.ts --url=ws://HOST:PORT/ws [--kind=invalid|churn] [--seconds=5] [--parallel=1] [--burst=400]')
  process.exit(2)
}
const url = values.url
const burst = Number(values.burst)
const deadline = Date.now() + Number(values.seconds) * 1000
/** A connection the server does not close is given up after this long. */
const CONNECTION_TIMEOUT_MS = 10_000

// Built once, sent as text with a zero mask (which `ws` skips), so the
// flooder's own CPU goes to sending, not to encoding and masking.
const invalid = Buffer.from(JSON.stringify({ type: 'join', room: 'x'.repeat(49_000) }))
const churn = [Buffer.from(JSON.stringify({ type: 'join', room: 'churn' })), Buffer.from(JSON.stringify({ type: 'leave', room: 'churn' }))]
const frameAt = (i: number) => values.kind === 'invalid' ? invalid : churn[i % 2] as Buffer
const zeroMask = (mask: Buffer) => { mask.fill(0) }

const summary = { connections: 0, framesSent: 0, rateLimited: 0, closes: {} as Record<string, number> }

function floodOnce (): Promise<void> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, generateMask: zeroMask })
    summary.connections++
    const timer = setTimeout(() => socket.terminate(), CONNECTION_TIMEOUT_MS)
    socket.on('open', () => {
      for (let i = 0; i < burst && socket.readyState === WebSocket.OPEN; i++) {
        socket.send(frameAt(i), { binary: false })
        summary.framesSent++
      }
    })
    socket.on('message', (data) => {
      if (data.toString().includes('"rate_limited"')) summary.rateLimited++
    })
    socket.on('error', () => {})
    socket.on('close', (code) => {
      clearTimeout(timer)
      summary.closes[code] = (summary.closes[code] ?? 0) + 1
      resolve()
    })
  })
}

async function flooder (): Promise<void> {
  while (Date.now() < deadline) await floodOnce()
}

await Promise.all(Array.from({ length: Number(values.parallel) }, flooder))
console.log(JSON.stringify(summary))
