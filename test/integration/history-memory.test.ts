// Finding 1 of issue 10 (memory exhaustion through history), as an attack in
// bounded form against a real server process: a few connections post
// max-size messages (MAX_TEXT_LENGTH astral code points, ~16 KB of UTF-8) into
// many rooms, leaving half of them behind (rooms without members) and staying
// in the rest. The node runs with small history caps; its resident memory
// must stay under a stated bound, and the history API must show both caps
// held. Without the byte caps the node keeps every message (~100 MB here) and
// grows until it dies. Rerun alone: `npx tap test/integration/history-memory.test.ts`.
import { readFileSync } from 'node:fs'
import t from 'tap'
import WebSocket from 'ws'
import { NodeProcess } from '../helpers/node-process.js'
import { TEST_TOKEN } from '../helpers/server.js'

const HISTORY_MAX_BYTES = 256 * 1024
const HISTORY_TOTAL_MAX_BYTES = 4 * 1024 * 1024
const CONNECTIONS = 4
const ROOMS_PER_CONNECTION = 40
const MESSAGES_PER_ROOM = 40
/** 4096 astral code points: the longest text by default, 16 KB of UTF-8. */
const TEXT = '😀'.repeat(4096)
const TEXT_BYTES = Buffer.byteLength(TEXT)
/**
 * What the node may grow by over its idle size while under attack. The caps
 * hold 4 MB of text (8 MB as UTF-16 strings at most); the rest is the frames
 * in flight and garbage not yet collected. Unbounded, the node keeps all
 * 6400 messages: ~105 MB of UTF-8, ~105 MB of heap.
 */
const RSS_GROWTH_BOUND_BYTES = 64 * 1024 * 1024
/** Whole attack, start to end: ~6 s alone, 40 s seen under the full suite on two busy cores (tap's file timeout is 120 s). */
const ATTACK_TIMEOUT_MS = 90_000

function rssOf (pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) ?? ''
  return Number(/(\d+)/.exec(line)?.[1] ?? 0) * 1024
}

/** One attacking connection: frames are counted and matched by `ref`, never kept (they are big). */
class Attacker {
  private readonly waiting = new Map<string, () => void>()
  private refs = 0
  /** Error frames received: the attack is meant to be accepted, only trimmed. */
  readonly refusals: string[] = []

  private constructor (private readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      // Only the small frames are parsed: messages echoed back are skipped unread.
      if (data.length > 1024) return
      const frame = JSON.parse(data.toString()) as { type: string, ref?: string, room?: string, code?: string }
      if (frame.type === 'error') this.refusals.push(JSON.stringify(frame))
      const key = frame.ref ?? (frame.type === 'joined' || frame.type === 'left' ? `${frame.type}:${frame.room}` : undefined)
      if (key === undefined) return
      this.waiting.get(key)?.()
      this.waiting.delete(key)
    })
  }

  static open (wsUrl: string): Promise<Attacker> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(wsUrl)
      socket.once('open', () => resolve(new Attacker(socket)))
      socket.once('error', reject)
    })
  }

  private expect (key: string): Promise<void> {
    return new Promise((resolve) => this.waiting.set(key, resolve))
  }

  async join (room: string): Promise<void> {
    const joined = this.expect(`joined:${room}`)
    this.socket.send(JSON.stringify({ type: 'join', room }))
    await joined
  }

  async leave (room: string): Promise<void> {
    const left = this.expect(`left:${room}`)
    this.socket.send(JSON.stringify({ type: 'leave', room }))
    await left
  }

  /** Sends `count` messages at once and waits for every ack. */
  async post (room: string, count: number): Promise<void> {
    const acks: Array<Promise<void>> = []
    for (let i = 0; i < count; i++) {
      const ref = String(++this.refs)
      acks.push(this.expect(ref))
      this.socket.send(`{"type":"send","room":"${room}","text":"${TEXT}","ref":"${ref}"}`)
    }
    await Promise.all(acks)
  }

  close (): void {
    this.socket.terminate()
  }
}

t.test('max-size messages into many rooms: the byte caps hold and the node stays small', async (t) => {
  const node = await NodeProcess.start(t, {
    HISTORY_MAX_BYTES: String(HISTORY_MAX_BYTES),
    HISTORY_TOTAL_MAX_BYTES: String(HISTORY_TOTAL_MAX_BYTES),
    // The attack is bounded by its counts, not by the send rate: the limits out of the way.
    RATE_LIMIT_PER_SEC: '100000',
    RATE_LIMIT_BURST: '100000',
    FRAME_RATE_PER_SEC: '100000',
    FRAME_BURST: '100000',
    SEND_QUEUE_MAX_BYTES: String(256 * 1024 * 1024)
  })
  const pid = node.child.pid as number
  const attackers = await Promise.all(Array.from({ length: CONNECTIONS }, () => Attacker.open(node.wsUrl)))
  t.teardown(() => { for (const attacker of attackers) attacker.close() })
  // Warm up (code paths compiled, buffers allocated) before the baseline.
  await attackers[0]?.join('warm-up')
  await attackers[0]?.post('warm-up', 5)
  const baseline = rssOf(pid)

  let peak = baseline
  const sampler = setInterval(() => { peak = Math.max(peak, rssOf(pid)) }, 50)
  t.teardown(() => clearInterval(sampler))
  const rooms: string[] = []
  const started = Date.now()
  await Promise.race([
    Promise.all(attackers.map(async (attacker, a) => {
      for (let r = 0; r < ROOMS_PER_CONNECTION; r++) {
        const room = `flood-${a}-${r}`
        rooms.push(room)
        await attacker.join(room)
        await attacker.post(room, MESSAGES_PER_ROOM)
        // Every other room is left behind without members; the rest keep theirs.
        if (r % 2 === 0) await attacker.leave(room)
      }
    })),
    new Promise((_resolve, reject) => setTimeout(() => reject(new Error('the attack did not finish in time')), ATTACK_TIMEOUT_MS).unref())
  ])
  const seconds = (Date.now() - started) / 1000
  await new Promise((resolve) => setTimeout(resolve, 200))
  peak = Math.max(peak, rssOf(pid))
  clearInterval(sampler)
  const posted = CONNECTIONS * ROOMS_PER_CONNECTION * MESSAGES_PER_ROOM
  t.comment(`${posted} messages of ${TEXT_BYTES} bytes (${(posted * TEXT_BYTES / 2 ** 20).toFixed(0)} MB) in ${seconds.toFixed(1)} s; RSS ${(baseline / 2 ** 20).toFixed(0)} MB → peak ${(peak / 2 ** 20).toFixed(0)} MB`)

  t.same(attackers.flatMap((attacker) => attacker.refusals), [], 'every frame was accepted')
  let total = 0
  let roomsWithHistory = 0
  const statuses = new Set<number>()
  let largestRoom = 0
  for (const room of rooms) {
    const response = await fetch(`${node.url}/rooms/${room}/messages?limit=1000`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
    statuses.add(response.status)
    const { messages } = await response.json() as { messages: Array<{ text: string }> }
    const bytes = messages.reduce((sum, m) => sum + Buffer.byteLength(m.text), 0)
    total += bytes
    largestRoom = Math.max(largestRoom, bytes)
    if (messages.length > 0) roomsWithHistory++
  }
  t.same([...statuses], [200], 'the history API answered for every room')
  t.comment(`history kept: ${(total / 2 ** 20).toFixed(2)} MB in ${roomsWithHistory} of ${rooms.length} rooms; largest room ${(largestRoom / 1024).toFixed(0)} KB`)
  t.ok(largestRoom <= HISTORY_MAX_BYTES, `no room keeps more than HISTORY_MAX_BYTES (largest: ${largestRoom})`)
  t.ok(total <= HISTORY_TOTAL_MAX_BYTES, `all rooms together keep at most HISTORY_TOTAL_MAX_BYTES (kept: ${total})`)
  t.ok(total >= HISTORY_TOTAL_MAX_BYTES / 2, 'and the node still keeps history: the caps trim, they do not wipe')
  t.ok(peak - baseline < RSS_GROWTH_BOUND_BYTES, `RSS grew by ${((peak - baseline) / 2 ** 20).toFixed(0)} MB, under ${RSS_GROWTH_BOUND_BYTES / 2 ** 20} MB`)
  t.equal(node.child.exitCode, null, 'the node is alive')
})
