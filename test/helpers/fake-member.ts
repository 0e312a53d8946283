// Fakes for the unit tests of lib/: a hub Member that records what it is sent,
// and a way to let the hub's pending promise callbacks run (polls and sleeps
// are in wait.ts).
import { encodeError, type ErrorCode } from '../../lib/frames.js'
import type { Member } from '../../lib/hub.js'
import { textFrame } from '../../lib/ws-frame.js'
import type { Frame } from './ws-client.js'

/** The JSON text inside a complete server frame built by `textFrame`. */
export function payloadOf (frame: Buffer): string {
  if (frame[0] !== 0x81) throw new Error(`not a final text frame: first byte ${frame[0]}`)
  const length = (frame[1] as number) & 0x7f
  return frame.subarray(length < 126 ? 2 : length === 126 ? 4 : 10).toString()
}

export class FakeMember implements Member {
  /** Every buffer written, in order, as the hub handed it over (identity matters). */
  readonly writes: Buffer[] = []
  readonly closes: Array<{ code: number, reason: string }> = []
  /** Every `error` the hub sent through `error()` (also written as frames, as a connection does). */
  readonly errors: Array<{ code: ErrorCode, message: string, ref: string | undefined }> = []

  constructor (readonly id: string, readonly name: string = id) {}

  /** What `replay` answers: false makes the hub wait for `drained()`. */
  replayAccepts = true
  /** Calls to `drained()` not yet answered; `drain(true|false)` answers them. */
  private drainWaiters: Array<(drained: boolean) => void> = []

  write (frame: Buffer): void {
    this.writes.push(frame)
  }

  replay (frame: Buffer): boolean {
    this.writes.push(frame)
    return this.replayAccepts
  }

  drained (): Promise<boolean> {
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  /** Answers every pending `drained()`; returns how many there were. */
  drain (drained = true): number {
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const resolve of waiters) resolve(drained)
    return waiters.length
  }

  error (code: ErrorCode, message: string, ref?: string): void {
    this.errors.push({ code, message, ref })
    this.write(textFrame(encodeError(code, message, ref)))
  }

  close (code: number, reason: string): void {
    this.closes.push({ code, reason })
  }

  /** The frames written so far, decoded. */
  get frames (): Frame[] {
    return this.writes.map((buffer) => JSON.parse(payloadOf(buffer)) as Frame)
  }

  ofType (type: string): Frame[] {
    return this.frames.filter((frame) => frame.type === type)
  }

  /** Texts of the message frames of `room`, in arrival order. */
  texts (room: string): string[] {
    return this.frames.filter((frame) => frame.type === 'message' && frame.room === room).map((frame) => frame.text as string)
  }
}

/** Lets every promise callback already queued run (the memory broker answers at once). */
export function settle (): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
