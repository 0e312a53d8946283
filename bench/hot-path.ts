// `npm run bench:hot-path [-- --messages=N --reps=N]`: the JavaScript cost of
// one message on one node, without sockets or the kernel. A publisher's
// `send` frame goes through the real Connection, Hub, MemoryBroker and write
// batch to 20 members whose streams only count bytes; the baseline does what
// bench/baseline-server.ts does per message (JSON.parse, a membership check,
// JSON.stringify, one frame built by ws's framer, a write per member). Each
// target runs in a fresh process, alternating, and the figure is CPU time per
// message. The full bench (`npm run bench`) prices the same path with the
// kernel's writes, which dominate there; this one shows what the product's
// own code costs, and moves when that code changes.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../lib/config.js'
import { Connection, type FrameStream, type Socket } from '../lib/connection.js'
import { createFrameParser } from '../lib/frames.js'
import { Hub } from '../lib/hub.js'
import { MemoryBroker } from '../lib/memory-broker.js'
import { MemoryPresence } from '../lib/memory-presence.js'
import { createStats } from '../lib/stats.js'
import { WriteBatch } from '../lib/write-batch.js'
import { integerOption, readCommandLine, refuse } from './lib/args.js'
import { median } from './lib/stats.js'
import { wsTextFrame } from './lib/ws-framer.js'

const ROOMS = 100
const MEMBERS_PER_ROOM = 20
/** Messages sent per event-loop turn (the write batch flushes between turns). */
const MESSAGES_PER_TURN = 100
const WARMUP_MESSAGES = 50_000
/** The product's defaults (history kept per room, text length...), as a node with no settings runs. */
const DEFAULTS = loadConfig({})

/** A WebSocket and its TCP stream that accept everything and count it. */
class CountingSink implements Socket, FrameStream {
  readonly readyState = 1
  readonly writableLength = 0
  bytes = 0
  write (frame: Buffer): boolean {
    this.bytes += frame.length
    return true
  }

  cork (): void {}
  uncork (): void {}
  once (): void {}
  off (): void {}
  close (): void {}
  terminate (): void {}
  ping (): void {}
  pause (): void {}
}

const sendFrame = (room: number, k: number) => Buffer.from(`{"type":"send","room":"room-${room}","text":"#1:${k}@${(1732830000000 + k).toFixed(3)}"}`)
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Sends `count` messages round-robin over the rooms; returns the CPU time it took in µs. */
async function drive (count: number, sendOne: (room: number, k: number) => void): Promise<number> {
  const before = process.cpuUsage()
  for (let k = 0; k < count;) {
    for (let i = 0; i < MESSAGES_PER_TURN && k < count; i++, k++) sendOne(k % ROOMS, k)
    await nextTurn()
  }
  const used = process.cpuUsage(before)
  return used.user + used.system
}

async function runProduct (messages: number): Promise<{ cpuUs: number, bytes: number }> {
  const stats = createStats()
  const broker = new MemoryBroker({
    historySize: DEFAULTS.historySize,
    historyMaxBytes: DEFAULTS.historyMaxBytes,
    historyTotalMaxBytes: DEFAULTS.historyTotalMaxBytes,
    maxIdleRooms: ROOMS
  })
  const hub = new Hub({ broker, presence: new MemoryPresence(), stats, historyOnJoin: 0, historySize: DEFAULTS.historySize, presenceBatchMs: DEFAULTS.presenceBatchMs, maxRoomsPerConnection: DEFAULTS.maxRoomsPerConnection })
  await hub.start()
  const options = {
    hub,
    stats,
    batch: new WriteBatch(),
    parse: createFrameParser(DEFAULTS.maxTextLength, DEFAULTS.maxDataBytes),
    sendQueueMaxBytes: 1 << 30,
    frameRatePerSec: 1e9,
    frameBurst: 1e9,
    rateLimitPerSec: 1e9,
    rateLimitBurst: 1e9,
    signalRatePerSec: 1e9,
    signalBurst: 1e9
  }
  const sinks: CountingSink[] = []
  const connect = (name: string) => {
    const sink = new CountingSink()
    sinks.push(sink)
    return new Connection(name, name, sink, sink, options)
  }
  const publishers: Connection[] = []
  for (let r = 0; r < ROOMS; r++) {
    const join = Buffer.from(`{"type":"join","room":"room-${r}"}`)
    const publisher = connect(`p${r}`)
    publisher.receive(join, false)
    publishers.push(publisher)
    for (let m = 0; m < MEMBERS_PER_ROOM; m++) connect(`s${r}-${m}`).receive(join, false)
  }
  // Joins complete once their (empty) history is read; presence windows close.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const send = (room: number, k: number) => (publishers[room] as Connection).receive(sendFrame(room, k), false)
  await drive(WARMUP_MESSAGES, send)
  const cpuUs = await drive(messages, send)
  hub.close()
  return { cpuUs, bytes: sinks.reduce((sum, sink) => sum + sink.bytes, 0) }
}

async function runBaseline (messages: number): Promise<{ cpuUs: number, bytes: number }> {
  interface Member { sink: CountingSink, rooms: Set<Room> }
  interface Room { name: string, members: Set<Member>, seq: number }
  const rooms = new Map<string, Room>()
  const sinks: CountingSink[] = []
  const member = (): Member => {
    const sink = new CountingSink()
    sinks.push(sink)
    return { sink, rooms: new Set() }
  }
  const publishers: Member[] = []
  for (let r = 0; r < ROOMS; r++) {
    const room: Room = { name: `room-${r}`, members: new Set(), seq: 0 }
    rooms.set(room.name, room)
    for (let m = 0; m <= MEMBERS_PER_ROOM; m++) {
      const joined = member()
      room.members.add(joined)
      joined.rooms.add(room)
      if (m === 0) publishers.push(joined)
    }
  }
  const receive = (from: Member, data: Buffer) => {
    const frame = JSON.parse(data.toString()) as { type?: unknown, room?: unknown, text?: unknown }
    if (frame.type !== 'send' || typeof frame.room !== 'string') return
    const room = rooms.get(frame.room)
    if (room === undefined || !from.rooms.has(room)) return
    room.seq++
    const payload = Buffer.from(JSON.stringify({ type: 'message', room: room.name, id: String(room.seq), from: 'p', text: frame.text, ts: Date.now() }))
    const built = wsTextFrame(payload)
    for (const other of room.members) other.sink.write(built)
  }
  const send = (room: number, k: number) => receive(publishers[room] as Member, sendFrame(room, k))
  await drive(WARMUP_MESSAGES, send)
  const cpuUs = await drive(messages, send)
  return { cpuUs, bytes: sinks.reduce((sum, sink) => sum + sink.bytes, 0) }
}

type Target = 'product' | 'baseline'

const USAGE = 'usage: npm run bench:hot-path [-- --messages=N] [--reps=N]'
const args = readCommandLine(process.argv.slice(2), {
  messages: { type: 'string' },
  reps: { type: 'string' },
  /** Internal: the parent runs each target in a child of its own with this. */
  target: { type: 'string' }
}, USAGE)
if (args.target !== undefined && args.target !== 'product' && args.target !== 'baseline') refuse('--target must be product or baseline', USAGE)
const target = args.target as Target | undefined
const messages = integerOption(args.messages, 'messages', 200_000, 1000, 10_000_000, USAGE)

if (target !== undefined) {
  // A child: one measurement, printed as JSON for the parent.
  const result = target === 'product' ? await runProduct(messages) : await runBaseline(messages)
  process.stdout.write(JSON.stringify(result) + '\n')
} else {
  const reps = integerOption(args.reps, 'reps', 5, 1, 20, USAGE)
  const self = fileURLToPath(import.meta.url)
  const figures: Record<Target, number[]> = { product: [], baseline: [] }
  for (let rep = 1; rep <= reps; rep++) {
    for (const which of ['product', 'baseline'] as const) {
      const child = spawnSync(process.execPath, ['--import', 'tsx', self, `--target=${which}`, `--messages=${messages}`], { encoding: 'utf8', timeout: 120_000 })
      if (child.status !== 0) {
        process.stderr.write(`${which} run ${rep} failed (exit ${child.status ?? child.signal}):\n${child.stderr}`)
        process.exit(1)
      }
      const { cpuUs, bytes } = JSON.parse(child.stdout) as { cpuUs: number, bytes: number }
      figures[which].push(cpuUs / messages)
      process.stderr.write(`${which} run ${rep}/${reps}: ${(cpuUs / messages).toFixed(2)} µs per message, ${(bytes / 1e6).toFixed(0)} MB written\n`)
    }
  }
  const product = median(figures.product)
  const baseline = median(figures.baseline)
  const range = (list: number[]) => `${Math.min(...list).toFixed(2)}-${Math.max(...list).toFixed(2)}`
  process.stdout.write(
    `hot path, ${messages} messages over ${ROOMS} rooms x ${MEMBERS_PER_ROOM + 1} members, no sockets; median of ${reps} runs each\n` +
    `product   ${product.toFixed(2)} µs CPU per message (${range(figures.product)}), ${(product / (MEMBERS_PER_ROOM + 1)).toFixed(3)} per delivery\n` +
    `baseline  ${baseline.toFixed(2)} µs CPU per message (${range(figures.baseline)}), ${(baseline / (MEMBERS_PER_ROOM + 1)).toFixed(3)} per delivery\n` +
    `ratio     ${(product / baseline).toFixed(2)}x\n`
  )
}
