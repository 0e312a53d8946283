// One WebSocket connection: rate-limits, validates and dispatches client
// frames to the hub; writes frames, paces history replays by the socket
// draining, and watches its send backlog after each flush.
import { randomBytes } from 'node:crypto'
import type { AuthOutcome } from './auth/authenticator.js'
import type { Identity } from './auth/identity.js'
import { TokenSession } from './auth/session.js'
import { BrokerTimeoutError, BrokerUnavailableError } from './broker.js'
import { CloseCode } from './close-codes.js'
import type { Tracked } from './connection-registry.js'
import {
  encodeAck, encodeAuthAck, encodeError, encodeLeft, encodeSignalAck, encodeWelcome,
  type ClientFrame, type ErrorCode, type JsonObject, type Origin, type ParseResult
} from './frames.js'
import type { Hub, Member } from './hub.js'
import { decide, type Decision, type Operation } from './policy.js'
import { POLICY_CLOSE_LINGER_MS, RATE_LIMIT_STRIKES_BEFORE_CLOSE, REPLAY_DRAIN_TIMEOUT_MS, SLOW_CONSUMER_CLOSE_TIMEOUT_MS } from './limits.js'
import { TokenBucket } from './rate-limiter.js'
import type { Stats } from './stats.js'
import type { Timer } from './timer.js'
import type { Corkable, WriteBatch } from './write-batch.js'
import { textFrame } from './ws-frame.js'

/** The part of a `ws` WebSocket a connection uses: control frames and state. */
export interface Socket {
  readonly readyState: number
  close (code: number, reason: string): void
  terminate (): void
  ping (): void
  /** Stops reading the peer's frames (`ws` resumes only when told). */
  pause (): void
}

/**
 * The byte stream under the WebSocket. Data frames are written to it
 * directly: they are complete, pre-built frames (`textFrame`), and with
 * compression off `ws` writes its own frames (ping, close) synchronously to
 * the same stream, so the order of bytes is kept.
 */
export interface FrameStream extends Corkable {
  /** False once the stream holds its high-water mark: a replay then waits for 'drain'. */
  write (frame: Buffer): boolean
  /** Bytes written and not yet taken by the kernel (a net.Socket's own count). */
  readonly writableLength: number
  once (event: 'drain', listener: () => void): unknown
  off (event: 'drain', listener: () => void): unknown
}

/** The events of a `ws` WebSocket a connection listens to. */
export interface SocketEvents {
  on (event: 'message', listener: (data: Buffer, isBinary: boolean) => void): unknown
  on (event: 'pong' | 'close', listener: () => void): unknown
}

const OPEN = 1

export interface ConnectionOptions {
  hub: Hub
  stats: Stats
  parse: (raw: string) => ParseResult
  /** Coalesces the writes of one event-loop turn into one system call per connection. */
  batch: WriteBatch
  /** Backlog left after a flush (history replays aside) beyond which the connection is closed with 1013. */
  sendQueueMaxBytes: number
  /** Every client frame, before it is parsed. */
  frameRatePerSec: number
  frameBurst: number
  /** `send` frames, after validation and membership. */
  rateLimitPerSec: number
  rateLimitBurst: number
  /** `signal` frames, after validation, membership and policy (SIGNAL_RATE_PER_SEC / SIGNAL_BURST). */
  signalRatePerSec: number
  signalBurst: number
  /** How long a replay waits for the socket to drain before giving up on the peer; REPLAY_DRAIN_TIMEOUT_MS by default. */
  replayDrainTimeoutMs?: number
  /** The buckets' clock, in ms; performance.now by default. */
  now?: () => number
  /**
   * Told of an unexpected error (a bug, not a client's mistake), with what it
   * cost: the connection closed with 1011, or a send answered `unavailable`.
   */
  onInternalError?: (error: unknown, consequence: string) => void
  /** Told once the socket is gone (e.g. to forget the connection). */
  onClosed?: (connection: Connection) => void
  /** Token handling, for connections opened with an identity. */
  auth?: ConnectionAuth
}

/** What an authenticated connection needs to refresh and expire its token (§7). */
export interface ConnectionAuth {
  /** AUTH_CLOCK_TOLERANCE_S: the connection is closed with 4001 this long after `exp`. */
  clockToleranceS: number
  /** Checks an `auth` frame's token for `user`. */
  refresh (user: string, token: string): Promise<AuthOutcome>
  /** Drives the expiry timers; the global setTimeout (unref'd) by default. */
  timer?: Timer
}

export function newConnectionId (): string {
  return randomBytes(8).toString('hex')
}

/** The refusal of a frame over the frame bucket, built once per limit: a flood costs no JSON work. */
let frameLimitRefusal: { message: string, frame: Buffer } | undefined

function frameLimitFrame (message: string): Buffer {
  if (frameLimitRefusal?.message !== message) frameLimitRefusal = { message, frame: textFrame(encodeError('rate_limited', message)) }
  return frameLimitRefusal.frame
}

export class Connection implements Member, Corkable, Tracked {
  /** Cleared by each heartbeat ping, set again by the pong. */
  alive = true
  private closing = false
  /** Rate-limited frames since the last accepted one. */
  private rateLimitStrikes = 0
  private readonly frameBucket: TokenBucket
  private readonly sendBucket: TokenBucket
  private readonly signalBucket: TokenBucket
  private readonly now: () => number
  private readonly frameLimitMessage: string
  private closeTimer: NodeJS.Timeout | undefined
  /** Corked by the write batch until this turn's check phase. */
  private held = false
  /**
   * Bytes written by history replays since the stream last drained: they are
   * paced, and not counted against SEND_QUEUE_MAX_BYTES (PROTOCOL §5).
   */
  private replayBytes = 0
  /** Shared by every replay waiting for this socket to drain. */
  private drain: { promise: Promise<boolean>, settle: (drained: boolean) => void } | undefined
  /** The verified user id; undefined for a guest. */
  readonly user: string | undefined
  /** The token's expiry; present only for an authenticated connection. */
  private readonly session: TokenSession | undefined
  /** Carried by this connection's messages: who sent them, beyond the display name. */
  private readonly origin: Origin | undefined

  constructor (
    readonly id: string,
    readonly name: string,
    private readonly socket: Socket,
    private readonly stream: FrameStream,
    private readonly options: ConnectionOptions,
    identity?: Identity
  ) {
    this.now = options.now ?? performance.now.bind(performance)
    this.frameBucket = new TokenBucket(options.frameRatePerSec, options.frameBurst, this.now)
    this.sendBucket = new TokenBucket(options.rateLimitPerSec, options.rateLimitBurst, this.now)
    this.signalBucket = new TokenBucket(options.signalRatePerSec, options.signalBurst, this.now)
    this.frameLimitMessage = `too many frames: at most ${options.frameRatePerSec} per second (bursts of ${options.frameBurst}); slow down`
    if (identity !== undefined) {
      this.user = identity.user
      this.origin = { user: identity.user }
      this.session = new TokenSession(identity, {
        clockToleranceS: options.auth?.clockToleranceS ?? 0,
        onExpired: () => this.close(CloseCode.TOKEN_EXPIRED, 'token expired; reconnect with a fresh token and resume with since'),
        ...(options.auth?.timer === undefined ? {} : { timer: options.auth.timer })
      })
    }
  }

  /** The `iat` of the token this connection holds now (after any refresh); undefined for a guest or a token without one. */
  get tokenIat (): number | undefined {
    return this.session?.iat
  }

  get isClosing (): boolean {
    return this.closing
  }

  /** Listens to the socket's frames, pongs and close; call once, right after the upgrade. */
  listen (socket: SocketEvents): void {
    socket.on('message', (data, isBinary) => this.receive(data, isBinary))
    socket.on('pong', () => { this.alive = true })
    socket.on('close', () => this.closed())
  }

  welcome (node: string): void {
    this.write(textFrame(encodeWelcome(this.id, this.name, node, this.session?.user, this.session?.expiresIn)))
  }

  /** Writes a live frame; the backlog it leaves is checked once the turn's writes are flushed (`uncork`). */
  write (frame: Buffer): void {
    if (this.closing || this.socket.readyState !== OPEN) return
    if (!this.held) {
      this.held = true
      this.options.batch.hold(this)
    }
    this.stream.write(frame)
  }

  /**
   * Writes a frame of a history replay, not counted against the send limit.
   * False when the caller must wait for `drained()` before writing more (the
   * socket holds its high-water mark), or when the connection is closing.
   */
  replay (frame: Buffer): boolean {
    if (this.closing || this.socket.readyState !== OPEN) return false
    if (!this.held) {
      this.held = true
      this.options.batch.hold(this)
    }
    this.replayBytes += frame.length
    return this.stream.write(frame)
  }

  /**
   * Resolves true once the socket has taken everything queued, false if the
   * connection closes first. A peer that takes nothing for
   * `replayDrainTimeoutMs` is closed with 1013: a replay cannot be held open
   * by a client that stopped reading.
   */
  drained (): Promise<boolean> {
    if (this.closing || this.socket.readyState !== OPEN) return Promise.resolve(false)
    if (this.drain !== undefined) return this.drain.promise
    let settle!: (drained: boolean) => void
    const promise = new Promise<boolean>((resolve) => { settle = resolve })
    const onDrain = () => finish(true)
    const timer = setTimeout(() => {
      finish(false)
      if (this.closing) return
      this.options.stats.slowConsumerCloses++
      this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer: the history replay was not read')
    }, this.options.replayDrainTimeoutMs ?? REPLAY_DRAIN_TIMEOUT_MS)
    timer.unref()
    const finish = (drained: boolean) => {
      clearTimeout(timer)
      this.stream.off('drain', onDrain)
      this.drain = undefined
      if (drained) this.replayBytes = 0
      settle(drained)
    }
    this.stream.once('drain', onDrain)
    this.drain = { promise, settle: finish }
    return promise
  }

  /**
   * Sends a close frame behind whatever is queued, so a slow reader still
   * gets it once it reads; a peer that reads nothing is cut off after `lingerMs`.
   */
  close (code: number, reason: string, lingerMs = SLOW_CONSUMER_CLOSE_TIMEOUT_MS): void {
    if (this.closing) return
    this.closing = true
    this.socket.close(code, reason)
    this.closeTimer = setTimeout(() => this.socket.terminate(), lingerMs)
    this.closeTimer.unref()
  }

  /** The socket is gone: forget it and leave every room. */
  closed (): void {
    this.closing = true
    clearTimeout(this.closeTimer)
    this.session?.stop()
    this.drain?.settle(false)
    this.options.onClosed?.(this)
    this.options.hub.disconnect(this)
  }

  cork (): void {
    this.stream.cork()
  }

  /**
   * The write batch's flush: the kernel takes what it can now, and what it
   * leaves is the peer's backlog. Counted here, not per write, so a burst
   * queued in one turn is not mistaken for a peer that does not read.
   */
  uncork (): void {
    this.held = false
    this.stream.uncork()
    const queued = this.stream.writableLength
    if (queued <= this.options.sendQueueMaxBytes) {
      if (queued === 0) this.replayBytes = 0
      return
    }
    // Replayed bytes still queued are at most what replays wrote since the last drain.
    if (this.replayBytes > queued) this.replayBytes = queued
    if (queued - this.replayBytes > this.options.sendQueueMaxBytes) {
      this.options.stats.slowConsumerCloses++
      this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer: send queue full')
    }
  }

  ping (): void {
    this.socket.ping()
  }

  terminate (): void {
    this.closing = true
    this.socket.terminate()
  }

  /** A frame from the client: frame bucket, then parsing and validation, then dispatch (PROTOCOL §2). */
  receive (data: Buffer, isBinary: boolean): void {
    if (this.closing) return
    if (isBinary) {
      this.close(CloseCode.UNSUPPORTED_DATA, 'binary frames are not accepted; send JSON text frames')
      return
    }
    // Before any parsing: a flood of frames, valid or not, costs a clock read each.
    const now = this.now()
    if (!this.frameBucket.take(now)) {
      if (this.strike()) return
      this.options.stats.errors.rate_limited++
      this.write(frameLimitFrame(this.frameLimitMessage))
      return
    }
    try {
      const parsed = this.options.parse(data.toString())
      if (!parsed.ok) {
        this.error('invalid_frame', parsed.message, parsed.ref)
        return
      }
      this.dispatch(parsed.frame, now)
    } catch (error) {
      // A bug must cost one connection, not the process.
      this.options.onInternalError?.(error, 'internal error on a WebSocket connection; closed with 1011')
      this.close(CloseCode.INTERNAL_ERROR, 'internal error')
    }
  }

  private dispatch (frame: ClientFrame, now: number): void {
    const hub = this.options.hub
    switch (frame.type) {
      case 'join':
        // Every join, a resume's `join … since` included, is checked before the room limit (PROTOCOL §2).
        if (!this.allowed('join', frame.room, frame.ref)) return
        if (hub.join(this, frame.room, frame.since, frame.ref) === 'too_many_rooms') {
          this.error('too_many_rooms', `a connection may be in at most ${this.options.hub.maxRoomsPerConnection} rooms; leave one first`, frame.ref)
        } else {
          this.rateLimitStrikes = 0
        }
        return
      case 'leave':
        if (hub.leave(this, frame.room)) {
          this.rateLimitStrikes = 0
          this.write(textFrame(encodeLeft(frame.room)))
        } else {
          this.error('not_joined', `not in room "${frame.room}"`, frame.ref)
        }
        return
      case 'send':
        this.send(frame.room, frame.text, frame.ref, now, frame.data)
        return
      case 'signal':
        this.signal(frame.room, frame.event, frame.ref, now)
        return
      case 'auth':
        this.refresh(frame.token, frame.ref)
    }
  }

  /** An `auth` frame: a fresh token for the same user; the connection keeps its current one until it is accepted. */
  private refresh (token: string, ref: string | undefined): void {
    const { session } = this
    const auth = this.options.auth
    if (session === undefined || auth === undefined) {
      this.error('token_invalid', 'this connection has no token to refresh: a guest cannot become a user; reconnect with a token', ref)
      return
    }
    auth.refresh(session.user, token).then((outcome) => {
      if (this.closing) return
      if (outcome.ok) {
        session.renew(outcome.identity)
        this.leaveForbiddenRooms()
        if (ref !== undefined) this.write(textFrame(encodeAuthAck(ref, session.expiresIn)))
      } else if (outcome.reason === 'unavailable') {
        this.error('unavailable', `${outcome.message}; the connection keeps its current token`, ref)
      } else {
        this.error('token_invalid', `${outcome.message}; the connection keeps its current token`, ref)
      }
    }, (error: unknown) => {
      this.options.onInternalError?.(error, 'a token refresh failed unexpectedly; the client was told unavailable')
      this.error('unavailable', 'the token could not be checked; the connection keeps its current token', ref)
    })
  }

  /**
   * May this connection `operation` in `room`, by the room's policy and its
   * token's current grants (PROTOCOL §8)? Membership is the caller's check.
   */
  mayAct (operation: Operation, room: string): Decision {
    return decide(operation, room, { user: this.user, grants: this.session?.grants }, this.options.hub.policies)
  }

  /** The policy step of §2's check order: false, with `forbidden` sent (the connection stays open), when refused. */
  private allowed (operation: Operation, room: string, ref: string | undefined): boolean {
    const decision = this.mayAct(operation, room)
    if (decision.allowed) return true
    this.error('forbidden', decision.reason, ref)
    return false
  }

  /** A refreshed token may grant less: every room it no longer lets the connection join is left at once, with `left`. */
  private leaveForbiddenRooms (): void {
    const hub = this.options.hub
    for (const room of hub.roomsOf(this)) {
      if (this.mayAct('join', room).allowed) continue
      hub.leave(this, room)
      this.write(textFrame(encodeLeft(room)))
    }
  }

  /**
   * Counts a rate-limited frame; true when that was one too many in a row and
   * the connection is now closing with 1008 (the frame then gets no error).
   */
  private strike (): boolean {
    this.options.stats.rateLimitedFrames++
    if (++this.rateLimitStrikes < RATE_LIMIT_STRIKES_BEFORE_CLOSE) return false
    // What the abuser has in flight is not even read: its close frame goes
    // out, and the socket is cut off after POLICY_CLOSE_LINGER_MS.
    this.close(CloseCode.POLICY, 'rate limit exceeded repeatedly', POLICY_CLOSE_LINGER_MS)
    this.socket.pause()
    return true
  }

  private send (room: string, text: string, ref: string | undefined, now: number, data: JsonObject | undefined): void {
    const hub = this.options.hub
    if (!hub.isJoined(this, room)) {
      this.error('not_joined', `join room "${room}" before sending to it`, ref)
      return
    }
    if (!this.allowed('send', room, ref)) return
    if (!this.sendBucket.take(now)) {
      if (this.strike()) return
      this.error('rate_limited', `too many messages: at most ${this.options.rateLimitPerSec} per second (bursts of ${this.options.rateLimitBurst}); slow down`, ref)
      return
    }
    this.rateLimitStrikes = 0
    // Encoded once here; stored and written into every frame as this string.
    const options = data === undefined ? this.origin : { ...this.origin, data: JSON.stringify(data) }
    hub.publish(room, this.name, text, options).then((message) => {
      if (ref !== undefined) this.write(textFrame(encodeAck(ref, message.id)))
    }, (error: unknown) => {
      if (error instanceof BrokerUnavailableError) {
        this.error('unavailable', error.message, ref)
        return
      }
      if (error instanceof BrokerTimeoutError) {
        this.error('timeout', error.message, ref)
        return
      }
      // Not the broker being away: a bug, which must be seen, not swallowed.
      this.options.onInternalError?.(error, 'a send failed unexpectedly; the client was told unavailable')
      this.error('unavailable', 'the message could not be stored; nothing was published', ref)
    })
  }

  /**
   * A `signal` frame, checked in PROTOCOL §2's order (the frame bucket and
   * validation came first): membership, policy, then its own bucket. Relayed
   * at once to the other members, never stored; the `ack` means relayed.
   */
  private signal (room: string, event: string, ref: string | undefined, now: number): void {
    const hub = this.options.hub
    if (!hub.isJoined(this, room)) {
      this.error('not_joined', `join room "${room}" before sending signals to it`, ref)
      return
    }
    if (!this.allowed('signal', room, ref)) return
    if (!this.signalBucket.take(now)) {
      if (this.strike()) return
      this.error('rate_limited', `too many signals: at most ${this.options.signalRatePerSec} per second (bursts of ${this.options.signalBurst}); slow down`, ref)
      return
    }
    this.rateLimitStrikes = 0
    hub.signal(this, room, event)
    if (ref !== undefined) this.write(textFrame(encodeSignalAck(ref)))
  }

  /** Sends an `error` frame (the connection stays open) and counts it. */
  error (code: ErrorCode, message: string, ref?: string): void {
    this.options.stats.errors[code]++
    this.write(textFrame(encodeError(code, message, ref)))
  }
}
