// One WebSocket connection: reads client frames, validates them and turns
// them into hub calls; writes frames and watches its own send backlog.
import { randomBytes } from 'node:crypto'
import type { AuthOutcome } from './auth/authenticator.js'
import type { Identity } from './auth/identity.js'
import { TokenSession } from './auth/session.js'
import { BrokerUnavailableError } from './broker.js'
import { CloseCode } from './close-codes.js'
import type { Tracked } from './connection-registry.js'
import {
  encodeAck, encodeAuthAck, encodeError, encodeLeft, encodeWelcome,
  type ClientFrame, type ErrorCode, type Origin, type ParseResult
} from './frames.js'
import type { Hub, Member } from './hub.js'
import { RATE_LIMIT_STRIKES_BEFORE_CLOSE, SLOW_CONSUMER_CLOSE_TIMEOUT_MS } from './limits.js'
import { TokenBucket } from './rate-limiter.js'
import type { Stats } from './stats.js'
import type { Timer } from './timer.js'
import type { Corkable, WriteBatch } from './write-batch.js'
import { textFrame } from './ws-frame.js'

/** The part of a `ws` WebSocket a connection uses: control frames and state. */
export interface Socket {
  readonly readyState: number
  /** Bytes queued for the peer and not yet taken by the kernel. */
  readonly bufferedAmount: number
  close (code: number, reason: string): void
  terminate (): void
  ping (): void
}

/**
 * The byte stream under the WebSocket. Data frames are written to it
 * directly: they are complete, pre-built frames (`textFrame`), and with
 * compression off `ws` writes its own frames (ping, close) synchronously to
 * the same stream, so the order of bytes is kept.
 */
export interface FrameStream extends Corkable {
  write (frame: Buffer): boolean
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
  sendQueueMaxBytes: number
  rateLimitPerSec: number
  rateLimitBurst: number
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

export class Connection implements Member, Corkable, Tracked {
  /** Cleared by each heartbeat ping, set again by the pong. */
  alive = true
  private closing = false
  private rateLimitStrikes = 0
  private readonly bucket: TokenBucket
  private closeTimer: NodeJS.Timeout | undefined
  /** Corked by the write batch until this turn's check phase. */
  private held = false
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
    this.bucket = new TokenBucket(options.rateLimitPerSec, options.rateLimitBurst)
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

  write (frame: Buffer): void {
    if (this.closing || this.socket.readyState !== OPEN) return
    if (!this.held) {
      this.held = true
      this.options.batch.hold(this)
    }
    this.stream.write(frame)
    if (this.socket.bufferedAmount > this.options.sendQueueMaxBytes) {
      this.options.stats.slowConsumerCloses++
      this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer: send queue full')
    }
  }

  /**
   * Sends a close frame behind whatever is queued, so a slow reader still
   * gets it once it reads; a peer that reads nothing is cut off after a while.
   */
  close (code: number, reason: string): void {
    if (this.closing) return
    this.closing = true
    this.socket.close(code, reason)
    this.closeTimer = setTimeout(() => this.socket.terminate(), SLOW_CONSUMER_CLOSE_TIMEOUT_MS)
    this.closeTimer.unref()
  }

  /** The socket is gone: forget it and leave every room. */
  closed (): void {
    this.closing = true
    clearTimeout(this.closeTimer)
    this.session?.stop()
    this.options.onClosed?.(this)
    this.options.hub.disconnect(this)
  }

  cork (): void {
    this.stream.cork()
  }

  uncork (): void {
    this.held = false
    this.stream.uncork()
  }

  ping (): void {
    this.socket.ping()
  }

  terminate (): void {
    this.closing = true
    this.socket.terminate()
  }

  /** A frame from the client. */
  receive (data: Buffer, isBinary: boolean): void {
    if (this.closing) return
    if (isBinary) {
      this.close(CloseCode.UNSUPPORTED_DATA, 'binary frames are not accepted; send JSON text frames')
      return
    }
    try {
      const parsed = this.options.parse(data.toString())
      if (!parsed.ok) {
        this.error('invalid_frame', parsed.message, parsed.ref)
        return
      }
      this.dispatch(parsed.frame)
    } catch (error) {
      // A bug must cost one connection, not the process.
      this.options.onInternalError?.(error, 'internal error on a WebSocket connection; closed with 1011')
      this.close(CloseCode.INTERNAL_ERROR, 'internal error')
    }
  }

  private dispatch (frame: ClientFrame): void {
    const hub = this.options.hub
    switch (frame.type) {
      case 'join':
        if (hub.join(this, frame.room, frame.since, frame.ref) === 'too_many_rooms') {
          this.error('too_many_rooms', `a connection may be in at most ${this.options.hub.maxRoomsPerConnection} rooms; leave one first`, frame.ref)
        }
        return
      case 'leave':
        if (hub.leave(this, frame.room)) this.write(textFrame(encodeLeft(frame.room)))
        else this.error('not_joined', `not in room "${frame.room}"`, frame.ref)
        return
      case 'send':
        this.send(frame.room, frame.text, frame.ref)
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

  private send (room: string, text: string, ref: string | undefined): void {
    if (!this.bucket.take()) {
      this.options.stats.rateLimitedFrames++
      if (++this.rateLimitStrikes >= RATE_LIMIT_STRIKES_BEFORE_CLOSE) {
        this.close(CloseCode.POLICY, 'rate limit exceeded repeatedly')
        return
      }
      this.error('rate_limited', `too many messages: at most ${this.options.rateLimitPerSec} per second (bursts of ${this.options.rateLimitBurst}); slow down`, ref)
      return
    }
    this.rateLimitStrikes = 0
    const hub = this.options.hub
    if (!hub.isJoined(this, room)) {
      this.error('not_joined', `join room "${room}" before sending to it`, ref)
      return
    }
    hub.publish(room, this.name, text, this.origin).then((message) => {
      if (ref !== undefined) this.write(textFrame(encodeAck(ref, message.id)))
    }, (error: unknown) => {
      if (error instanceof BrokerUnavailableError) {
        this.error('unavailable', error.message, ref)
        return
      }
      // Not the broker being away: a bug, which must be seen, not swallowed.
      this.options.onInternalError?.(error, 'a send failed unexpectedly; the client was told unavailable')
      this.error('unavailable', 'the message could not be stored; nothing was published', ref)
    })
  }

  /** Sends an `error` frame (the connection stays open) and counts it. */
  error (code: ErrorCode, message: string, ref?: string): void {
    this.options.stats.errors[code]++
    this.write(textFrame(encodeError(code, message, ref)))
  }
}
