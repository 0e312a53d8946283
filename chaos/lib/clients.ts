// The clients of a chaos run, over real WebSocket connections: members that
// record every message they get and, when their connection drops, come back
// (to the same node or the next one) and resume each room with `since`, as
// PROTOCOL §3 tells a client to; and publishers that send numbered messages
// at a steady rate and record every answer.
import { TEST_TOKEN } from '../../test/helpers/server.js'
import { TestClient } from '../../test/helpers/ws-client.js'
import type { ReceiverRecord, SenderRecord } from './tally.js'

/** A client closed with 1013 waits at least this long before it comes back (PROTOCOL §3). */
const SLOW_CONSUMER_BACKOFF_MS = 1000
/** After any other drop (a node gone, 1001): a short pause, so reconnects do not spin. */
const RECONNECT_PAUSE_MS = 100
/** A member that cannot get back in this long gives up; what it missed counts as lost. */
const RECONNECT_DEADLINE_MS = 30_000
/** Joins and the welcome on a loaded machine. */
const JOIN_TIMEOUT_MS = 10_000

/**
 * A stalled reader: it stops reading its socket once joined, and reads again
 * (at full speed) when `released` says so (the server has given up on it)
 * or after `stallMs`, whichever comes first.
 */
export interface SlowReading {
  stallMs: number
  released: () => Promise<boolean>
}

/** How often a stalled reader asks whether it may read again. */
const RELEASE_POLL_MS = 100

/**
 * What identifies a message in the tally: its id and the `room#seq` label its
 * text starts with, so an id that came back on a different message (a reused
 * id) counts as a different message, not as one received.
 */
export function messageKey (id: unknown, text: unknown): string {
  return `${String(id)} ${String(text).split(' ', 1)[0]}`
}

async function openClient (url: string, name: string): Promise<TestClient> {
  const client = await TestClient.connect(`${url}?name=${encodeURIComponent(name)}`)
  try {
    await client.next((frame) => frame.type === 'welcome', 'welcome', 0, JOIN_TIMEOUT_MS)
  } catch (error) {
    client.socket.terminate()
    throw error
  }
  return client
}

export class Member implements ReceiverRecord {
  readonly received = new Map<string, string[]>()
  /** Close codes of the connections it lost, in order. */
  readonly closes: number[] = []
  /** Times it came back and resumed its rooms with `since`. */
  resumes = 0
  /** Joins with `since` answered `recovered: false` (the server no longer had the point). */
  notRecovered = 0
  /** Per room, how many messages it had received when each resume began (to tell where a fault shows). */
  readonly resumeMarks = new Map<string, number[]>()
  /** Set when it could not get back within the deadline. */
  gaveUp: string | undefined
  private client: TestClient | undefined
  private stopped = false
  private reconnecting: Promise<void> | undefined
  private node: number

  constructor (readonly member: string, private readonly rooms: string[], private readonly urls: string[], home: number, private slow?: SlowReading) {
    this.node = home
    for (const room of rooms) this.received.set(room, [])
  }

  get connected (): boolean {
    return this.client !== undefined && this.reconnecting === undefined
  }

  /** Connects to its home node and joins its rooms (plain joins: rooms start empty). */
  async start (): Promise<void> {
    await this.attach(this.urls[this.node] as string, false)
  }

  /** Every id of `expected` received, per room. */
  has (expected: Map<string, Set<string>>): boolean {
    for (const [room, ids] of expected) {
      const got = new Set(this.received.get(room))
      for (const id of ids) if (!got.has(id)) return false
    }
    return true
  }

  /** Waits until every frame the server queued for this member before now has arrived. */
  async barrier (): Promise<void> {
    if (this.connected) await this.client?.barrier(JOIN_TIMEOUT_MS)
  }

  stop (): void {
    this.stopped = true
    this.client?.socket.terminate()
  }

  private async attach (url: string, resume: boolean): Promise<void> {
    const client = await openClient(url, this.member)
    // Registered after TestClient's own listener, which has parsed the frame into `frames` already.
    client.socket.on('message', () => {
      const frame = client.frames.at(-1)
      if (frame?.type === 'message') this.received.get(frame.room as string)?.push(messageKey(frame.id, frame.text))
    })
    try {
      for (const room of this.rooms) {
        const got = this.received.get(room) ?? []
        const last = got.at(-1)?.split(' ', 1)[0]
        if (resume) this.resumeMarks.set(room, [...(this.resumeMarks.get(room) ?? []), got.length])
        const joined = await client.join(room, resume ? last : undefined)
        if (resume && last !== undefined && joined.recovered === false) this.notRecovered++
      }
    } catch (error) {
      client.socket.terminate()
      throw error
    }
    this.client = client
    client.closed.then(({ code }) => this.onClose(client, code), () => {})
    const slow = this.slow
    if (slow !== undefined) {
      // Stalls once, on its first connection; back after a close it reads like anyone.
      this.slow = undefined
      client.socket.pause()
      this.stall(client, slow).catch(() => {})
    }
  }

  private async stall (client: TestClient, slow: SlowReading): Promise<void> {
    const until = Date.now() + slow.stallMs
    while (Date.now() < until && !this.stopped && client.closeCode === undefined && !(await slow.released())) await sleep(RELEASE_POLL_MS)
    client.socket.resume()
  }

  private onClose (client: TestClient, code: number): void {
    if (this.stopped || this.client !== client) return
    this.closes.push(code)
    this.reconnecting = this.reconnect(code).finally(() => { this.reconnecting = undefined })
  }

  private async reconnect (code: number): Promise<void> {
    const deadline = Date.now() + RECONNECT_DEADLINE_MS
    await sleep((code === 1013 ? SLOW_CONSUMER_BACKOFF_MS : RECONNECT_PAUSE_MS) + Math.random() * RECONNECT_PAUSE_MS)
    let lastError = ''
    while (!this.stopped && Date.now() < deadline) {
      for (let step = 0; step < this.urls.length && !this.stopped; step++) {
        const index = (this.node + step) % this.urls.length
        try {
          await this.attach(this.urls[index] as string, true)
          this.node = index
          this.resumes++
          return
        } catch (error) {
          lastError = (error as Error).message
        }
      }
      await sleep(RECONNECT_PAUSE_MS)
    }
    if (!this.stopped) this.gaveUp = `could not reconnect within ${RECONNECT_DEADLINE_MS} ms: ${lastError}`
  }
}

export class Publisher implements SenderRecord {
  sent = 0
  readonly acked: string[] = []
  refused = 0
  /** Answers other than ack / unavailable / timeout, for the report. */
  readonly otherErrors: string[] = []
  private timeouts = 0
  private client: TestClient | undefined

  constructor (readonly name: string, readonly room: string, private readonly url: string, private readonly textBytes: number) {}

  get unknown (): number {
    return this.sent - this.acked.length - this.refused - this.otherErrors.length
  }

  /** `timeout` answers so far (a subset of `unknown`). */
  get timedOut (): number {
    return this.timeouts
  }

  /** Close code when its connection closed before the run ended (a publisher should stay connected). */
  get closedWith (): string | undefined {
    return this.client?.closeCode === undefined ? undefined : `${this.client.closeCode} (${this.client.closeReason || 'no reason'})`
  }

  /** Every send answered, or the connection gone (what is unanswered then stays unknown). */
  get answered (): boolean {
    return this.acked.length + this.refused + this.timeouts + this.otherErrors.length >= this.sent || this.client?.closeCode !== undefined
  }

  async start (): Promise<void> {
    const client = await openClient(this.url, this.name)
    client.socket.on('message', () => {
      const frame = client.frames.at(-1)
      if (typeof frame?.ref !== 'string' || !frame.ref.startsWith('m')) return
      if (frame.type === 'ack') this.acked.push(messageKey(frame.id, `${this.room}#${frame.ref.slice(1)}`))
      else if (frame.type === 'error' && frame.code === 'unavailable') this.refused++
      else if (frame.type === 'error' && frame.code === 'timeout') this.timeouts++
      else this.otherErrors.push(`${String(frame.code)}: ${String(frame.message)}`)
    })
    await client.join(this.room)
    this.client = client
  }

  /** Sends `count` numbered messages, `ratePerSec` a second on a fixed schedule; stops early if its connection closes. */
  async run (count: number, ratePerSec: number): Promise<void> {
    const client = this.client
    if (!client) throw new Error('publisher not started')
    const startedAt = Date.now()
    for (let seq = 0; seq < count; seq++) {
      if (client.closeCode !== undefined) return
      const label = `${this.room}#${seq} `
      client.send({ type: 'send', room: this.room, text: label.padEnd(this.textBytes, '.'), ref: `m${seq}` })
      this.sent++
      const due = startedAt + ((seq + 1) * 1000) / ratePerSec
      const wait = due - Date.now()
      if (wait > 0) await sleep(wait)
    }
  }

  stop (): void {
    this.client?.socket.terminate()
  }
}

/**
 * A publisher through the HTTP API (POST /rooms/:id/broadcast), not a member:
 * it does not receive its own messages, so a run of large messages does not
 * make the harness itself the slow reader. A `202` is its ack, a `503` without
 * `outcome` a refusal, a `503` with `outcome: unknown` (or no answer) unknown.
 */
export class BroadcastPublisher implements SenderRecord {
  sent = 0
  readonly acked: string[] = []
  refused = 0
  readonly otherErrors: string[] = []
  readonly closedWith = undefined
  private answers = 0
  private timeouts = 0

  constructor (readonly name: string, readonly room: string, private readonly baseUrl: string, private readonly textBytes: number) {}

  get unknown (): number {
    return this.sent - this.acked.length - this.refused - this.otherErrors.length
  }

  get timedOut (): number {
    return this.timeouts
  }

  get answered (): boolean {
    return this.answers >= this.sent
  }

  async start (): Promise<void> {}

  /** Fires `count` broadcasts on a fixed schedule, without waiting for one to answer before the next. */
  async run (count: number, ratePerSec: number): Promise<void> {
    const startedAt = Date.now()
    const posts: Array<Promise<void>> = []
    for (let seq = 0; seq < count; seq++) {
      posts.push(this.post(seq))
      this.sent++
      const wait = startedAt + ((seq + 1) * 1000) / ratePerSec - Date.now()
      if (wait > 0) await sleep(wait)
    }
    await Promise.all(posts)
  }

  stop (): void {}

  private async post (seq: number): Promise<void> {
    const label = `${this.room}#${seq}`
    try {
      const response = await fetch(`${this.baseUrl}/rooms/${encodeURIComponent(this.room)}/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ text: `${label} `.padEnd(this.textBytes, '.'), from: this.name })
      })
      const body = await response.json() as { id?: string, outcome?: string, message?: string }
      if (response.status === 202) this.acked.push(messageKey(body.id, label))
      else if (response.status === 503 && body.outcome === 'unknown') this.timeouts++
      else if (response.status === 503) this.refused++
      else this.otherErrors.push(`${response.status}: ${String(body.message)}`)
    } catch {
      // No answer: the outcome stays unknown.
    } finally {
      this.answers++
    }
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
