// The test WebSocket client over a real socket: records every frame and close,
// and waits for them with a bounded timeout. `TestClient.open` is the usual
// start: connect, wait for `welcome`, torn down with the test.
import type { Test } from 'tap'
import WebSocket from 'ws'

export interface Frame {
  type: string
  [field: string]: unknown
}

const DEFAULT_TIMEOUT_MS = 5000

/** Numbers refs made up by the helpers, unique within the test process. */
let barriers = 0

export class TestClient {
  readonly frames: Frame[] = []
  closeCode: number | undefined
  closeReason = ''
  private waiters: Array<() => void> = []
  readonly closed: Promise<{ code: number, reason: string }>

  constructor (readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame)
      this.wake()
    })
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeCode = code
        this.closeReason = reason.toString()
        this.wake()
        resolve({ code, reason: this.closeReason })
      })
    })
    socket.on('error', () => {})
  }

  /**
   * Connects to `wsUrl` as `name`, waits for `welcome`, and terminates the
   * connection in the test's teardown (no closing handshake to wait for).
   */
  static async open (t: Test, wsUrl: string, name?: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const client = await TestClient.connect(name === undefined ? wsUrl : `${wsUrl}?name=${encodeURIComponent(name)}`, options)
    t.teardown(() => client.socket.terminate())
    await client.next((frame) => frame.type === 'welcome', 'welcome')
    return client
  }

  /** Opens a connection; rejects with the HTTP status if the upgrade is refused. */
  static connect (url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options)
      const client = new TestClient(socket)
      socket.once('open', () => resolve(client))
      socket.once('unexpected-response', (_request, response) => {
        reject(Object.assign(new Error(`upgrade refused with ${response.statusCode}`), { statusCode: response.statusCode }))
        socket.terminate()
      })
      socket.once('error', reject)
    })
  }

  send (frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** Frames of one type received so far. */
  ofType (type: string): Frame[] {
    return this.frames.filter((frame) => frame.type === type)
  }

  /** Waits until `predicate` holds over the frames received so far. */
  async until (predicate: (frames: Frame[]) => boolean, what: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate(this.frames)) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.frames.slice(-5))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  /** Waits for the first frame (after `from`) matching `match`, and returns it. */
  async next (match: (frame: Frame) => boolean, what: string, from = 0, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Frame> {
    let found: Frame | undefined
    await this.until((frames) => (found = frames.slice(from).find(match)) !== undefined, what, timeoutMs)
    return found as Frame
  }

  /** Joins and waits for `joined`. */
  async join (room: string, since?: string): Promise<Frame> {
    const from = this.frames.length
    this.send(since === undefined ? { type: 'join', room } : { type: 'join', room, since })
    return this.next((frame) => frame.type === 'joined' && frame.room === room, `joined ${room}`, from)
  }

  /** Messages received in `room`, in arrival order. */
  messages (room: string): Frame[] {
    return this.frames.filter((frame) => frame.type === 'message' && frame.room === room)
  }

  async waitClosed (timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ code: number, reason: string }> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`connection not closed within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      return await Promise.race([this.closed, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  close (): void {
    this.socket.close()
  }

  /** Error frames received so far, optionally only those with `code`. */
  errors (code?: string): Frame[] {
    return this.frames.filter((frame) => frame.type === 'error' && (code === undefined || frame.code === code))
  }

  /**
   * Round trip on this connection: sends a frame that can only be refused
   * (leave a room never joined, with a unique ref) and waits for the refusal.
   * The server writes to one socket in order, so every frame it queued for
   * this client before the barrier has arrived once this resolves.
   */
  async barrier (timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const ref = `barrier-${++barriers}`
    const from = this.frames.length
    this.send({ type: 'leave', room: 'barrier.never-joined', ref })
    await this.next((frame) => frame.type === 'error' && frame.ref === ref, `barrier ${ref}`, from, timeoutMs)
  }

  /** Sends `text` to `room` with a fresh ref and waits for its ack; returns the message id. */
  async sendAndAck (room: string, text: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const ref = `send-${++barriers}`
    const from = this.frames.length
    this.send({ type: 'send', room, text, ref })
    const reply = await this.next((frame) => (frame.type === 'ack' || frame.type === 'error') && frame.ref === ref, `ack ${ref}`, from, timeoutMs)
    if (reply.type !== 'ack') throw new Error(`send refused: ${JSON.stringify(reply)}`)
    return reply.id as string
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }
}
