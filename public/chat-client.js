// Protocol client for the chat service's WebSocket API (shared/PROTOCOL.md):
// reconnects with jittered backoff, resumes rooms with `since`, drops duplicates.
// Plain ES module with JSDoc types: runs unchanged in browsers and in Node 20
// (pass the `ws` package as the `WebSocket` option there).

// ---------------------------------------------------------------------------
// Wire frames
// ---------------------------------------------------------------------------

// The server's own types (lib/frames.ts), imported for the type-checker only:
// the browser never loads that file.

/** @typedef {import('../lib/frames.js').ErrorCode} ServerErrorCode */

/**
 * Codes a {@link ChatError} can carry: the server's, plus `disconnected` when the
 * socket closed (or {@link ChatClient#close} was called) before the answer came.
 * @typedef {ServerErrorCode | 'disconnected' | 'unauthorized'} ChatErrorCode
 */

/** @typedef {import('../lib/frames.js').JoinFrame} JoinFrame */
/** @typedef {import('../lib/frames.js').ClientFrame} ClientFrame */
/** @typedef {import('../lib/frames.js').WelcomeFrame} WelcomeFrame */
/** @typedef {import('../lib/frames.js').JoinedFrame} JoinedFrame */
/** @typedef {import('../lib/frames.js').MessageFrame} MessageFrame */
/** @typedef {import('../lib/frames.js').PresenceFrame} PresenceFrame */
/** @typedef {import('../lib/frames.js').LeftFrame} LeftFrame */
/** @typedef {import('../lib/frames.js').AckFrame} AckFrame */
/** @typedef {import('../lib/frames.js').ErrorFrame} ErrorFrame */
/** @typedef {import('../lib/frames.js').ServerFrame} ServerFrame */

// ---------------------------------------------------------------------------
// Client API types
// ---------------------------------------------------------------------------

/**
 * The part of a WebSocket this client uses; both the browser's WebSocket and
 * the `ws` package fit it. Events are read defensively, so any object will do.
 * @typedef {{
 *   readonly readyState: number,
 *   send (data: string): void,
 *   close (code?: number, reason?: string): void,
 *   addEventListener (type: 'open' | 'message' | 'close' | 'error', listener: (event: object) => void): void
 * }} SocketLike
 */

/** @typedef {new (url: string, protocols?: string[]) => SocketLike} SocketConstructor */

/**
 * Gives the connection token (sync or async) before each connect and each
 * refresh; undefined connects as a guest. The token travels as the
 * `bearer.<token>` subprotocol, never in the URL.
 * @typedef {() => string | undefined | Promise<string | undefined>} TokenSource
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number} [baseMs] first retry waits up to this long (default 500)
 * @property {number} [maxMs] cap on the wait before jitter (default 30000)
 */

/**
 * @typedef {object} ChatClientOptions
 * @property {string | URL} url WebSocket endpoint, e.g. `wss://chat.example/ws`
 * @property {string} [name] display name; left out → the server assigns `guest-XXXX`
 * @property {string} [token] a fixed connection token (prefer `getToken`, which can refresh)
 * @property {TokenSource} [getToken] called before each connect and before the token expires
 * @property {SocketConstructor} [WebSocket] WebSocket class; default `globalThis.WebSocket`
 * @property {BackoffOptions} [backoff]
 * @property {() => number} [random] source of jitter in [0, 1); default `Math.random`
 * @property {number} [dedupeWindow] recent message ids remembered per room (default 1000)
 */

/**
 * @typedef {{ state: 'idle' }
 *   | { state: 'connecting', attempt: number }
 *   | { state: 'online' }
 *   | { state: 'reconnecting', delayMs: number, attempt: number, code: number, reason: string }
 *   | { state: 'closed', code?: number, reason?: string }} ConnectionState
 * `reconnecting.delayMs` is the wait until the next try; `attempt` counts tries
 * since the last welcome (1 for the first retry). `closed` carries the close
 * code when the server ended the session (1008, policy); none after `close()`.
 */

/**
 * @typedef {object} RecoveryFailedEvent
 * @property {string} room room whose resume got `recovered: false`: messages may be missing
 */

/**
 * An `error` frame nothing was waiting for, or a refused join that no `join()`
 * call is waiting for (a re-join after a reconnect). Then `room` names the
 * room: with `willRetry` (code `unavailable`) the client tries again later,
 * otherwise it has dropped the room.
 * @typedef {object} ErrorEvent
 * @property {ServerErrorCode} code
 * @property {string} message
 * @property {string} [ref]
 * @property {string} [room]
 * @property {boolean} [willRetry]
 */

/**
 * Events of {@link ChatClient}, by name, with the payload their listeners get.
 * @typedef {object} ChatClientEvents
 * @property {ConnectionState} state
 * @property {WelcomeFrame} welcome
 * @property {JoinedFrame} joined
 * @property {MessageFrame} message a new message (duplicates are dropped)
 * @property {PresenceFrame} presence
 * @property {LeftFrame} left
 * @property {ErrorEvent} error
 * @property {RecoveryFailedEvent} recovery-failed
 */

/** @typedef {keyof ChatClientEvents} ChatClientEventName */

/**
 * @template {ChatClientEventName} K
 * @typedef {(payload: ChatClientEvents[K]) => void} Listener
 */

/**
 * @typedef {object} SendResult
 * @property {string} id id the server gave the message
 */

/**
 * @typedef {object} RoomState
 * @property {string} name
 * @property {boolean} joined a `joined` arrived on the current connection
 * @property {string} [lastId] id of the last message seen
 * @property {Set<string>} recentIds bounded, oldest first
 * @property {Map<string, number>} members name → number of connections
 * @property {JoinedFrame} [joinedFrame] last `joined` received
 * @property {Array<Waiter<JoinedFrame>>} waiters `join()` calls waiting for `joined`
 * @property {number} joinRetries joins refused as `unavailable` in a row
 * @property {ReturnType<typeof setTimeout>} [joinTimer] next try after an `unavailable` join
 */

/**
 * @template T
 * @typedef {object} Waiter
 * @property {(value: T) => void} resolve
 * @property {(error: ChatError) => void} reject
 */

/**
 * @typedef {{ kind: 'join', room: string }
 *   | { kind: 'leave', room: string, waiter: Waiter<void> }
 *   | { kind: 'send', room: string, waiter: Waiter<SendResult> }
 *   | { kind: 'auth', room?: undefined }} Pending
 */

/**
 * The codes of ServerErrorCode, at run time. Typed as a record so that the
 * type-checker reports a code added to or removed from the server's list.
 * @type {Record<ServerErrorCode, true>}
 */
const SERVER_ERROR_CODES = { invalid_frame: true, not_joined: true, rate_limited: true, too_many_rooms: true, unavailable: true, timeout: true, token_invalid: true, forbidden: true }
const OPEN = 1
const CLOSE_NORMAL = 1000
const CLOSE_POLICY = 1008
/** The token expired: get a fresh one and reconnect (PROTOCOL §3). */
const CLOSE_TOKEN_EXPIRED = 4001
/** Unauthorized: the same token would be refused again; stop. */
const CLOSE_UNAUTHORIZED = 4003
/** A refresh is sent between these fractions of the token's remaining life, at random, so tabs do not all refresh at once. */
const REFRESH_AT_MIN = 0.7
const REFRESH_AT_MAX = 0.9
const DEFAULT_BASE_MS = 500
const DEFAULT_MAX_MS = 30_000
const DEFAULT_DEDUPE_WINDOW = 1000

/** An error from the service (its `code`), or `disconnected`. */
export class ChatError extends Error {
  /**
   * @param {ChatErrorCode} code
   * @param {string} message
   * @param {{ ref?: string, room?: string }} [details]
   */
  constructor (code, message, details = {}) {
    super(message)
    this.name = 'ChatError'
    /** @type {ChatErrorCode} */
    this.code = code
    /** @type {string | undefined} */
    this.ref = details.ref
    /** @type {string | undefined} */
    this.room = details.room
  }
}

export class ChatClient {
  /** @type {string} */
  #url
  /** @type {string | undefined} */
  #name
  /** @type {TokenSource | undefined} */
  #getToken
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #refreshTimer
  /** Counts opens, so a token that arrives for an abandoned open is dropped. */
  #openSeq = 0
  /** @type {SocketConstructor} */
  #WebSocket
  /** @type {number} */
  #baseMs
  /** @type {number} */
  #maxMs
  /** @type {() => number} */
  #random
  /** @type {number} */
  #dedupeWindow

  /** @type {ConnectionState} */
  #state = { state: 'idle' }
  /** @type {SocketLike | undefined} */
  #socket
  /** @type {WelcomeFrame | undefined} */
  #welcome
  /** Tries since the last welcome; the exponent of the backoff. */
  #attempt = 0
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer
  #refSeq = 0
  /** @type {Map<string, RoomState>} rooms wanted, in join order */
  #rooms = new Map()
  /** @type {Map<string, Pending>} requests of the current connection, by ref */
  #pending = new Map()
  /** @type {{ [K in ChatClientEventName]: Set<Listener<K>> }} */
  #listeners = {
    state: new Set(),
    welcome: new Set(),
    joined: new Set(),
    message: new Set(),
    presence: new Set(),
    left: new Set(),
    error: new Set(),
    'recovery-failed': new Set()
  }

  /** @param {ChatClientOptions} options */
  constructor (options) {
    // Checked here so that a bad URL throws at once, not inside a retry timer.
    this.#url = new URL(String(options.url)).toString()
    this.#name = options.name
    const fixed = options.token
    this.#getToken = options.getToken ?? (fixed === undefined ? undefined : () => fixed)
    const Ctor = options.WebSocket ?? /** @type {{ WebSocket?: SocketConstructor }} */ (/** @type {unknown} */ (globalThis)).WebSocket
    if (Ctor === undefined) throw new TypeError('no WebSocket implementation: pass the `WebSocket` option')
    this.#WebSocket = Ctor
    this.#baseMs = options.backoff?.baseMs ?? DEFAULT_BASE_MS
    this.#maxMs = options.backoff?.maxMs ?? DEFAULT_MAX_MS
    this.#random = options.random ?? Math.random
    this.#dedupeWindow = options.dedupeWindow ?? DEFAULT_DEDUPE_WINDOW
  }

  // -- events ---------------------------------------------------------------

  /**
   * Adds a listener; returns a function that removes it.
   * @template {ChatClientEventName} K
   * @param {K} type
   * @param {Listener<K>} listener
   * @returns {() => void}
   */
  on (type, listener) {
    this.#listeners[type].add(listener)
    return () => this.off(type, listener)
  }

  /**
   * @template {ChatClientEventName} K
   * @param {K} type
   * @param {Listener<K>} listener
   * @returns {void}
   */
  off (type, listener) {
    this.#listeners[type].delete(listener)
  }

  /**
   * @template {ChatClientEventName} K
   * @param {K} type
   * @param {ChatClientEvents[K]} payload
   * @returns {void}
   */
  #emit (type, payload) {
    for (const listener of [...this.#listeners[type]]) {
      try {
        listener(payload)
      } catch (err) {
        // A failing listener must not leave the client half-updated; surface it
        // the way EventTarget does, as an uncaught error outside this call.
        queueMicrotask(() => { throw err })
      }
    }
  }

  // -- read-only views ------------------------------------------------------

  /** @returns {ConnectionState} */
  get state () { return this.#state }

  /** @returns {WelcomeFrame | undefined} the welcome of the current connection */
  get welcome () { return this.#welcome }

  /** @returns {string | undefined} the name asked for (the server's choice is in `welcome.name`) */
  get name () { return this.#name }

  /** @returns {string[]} rooms joined or being joined, in join order */
  rooms () { return [...this.#rooms.keys()] }

  /**
   * @param {string} room
   * @returns {boolean} whether the server confirmed the join on the current connection
   */
  isJoined (room) { return this.#rooms.get(room)?.joined ?? false }

  /**
   * @param {string} room
   * @returns {Map<string, number>} member name → number of its connections in the room (a copy)
   */
  members (room) { return new Map(this.#rooms.get(room)?.members) }

  /**
   * @param {string} room
   * @returns {string | undefined} id of the last message seen in the room
   */
  lastMessageId (room) { return this.#rooms.get(room)?.lastId }

  // -- connection -----------------------------------------------------------

  /**
   * Opens the connection (no-op while connecting or online). Rooms kept from
   * before a `close()` are joined again, resuming after their last message.
   * @returns {void}
   */
  connect () {
    const current = this.#state.state
    if (current === 'connecting' || current === 'online' || current === 'reconnecting') return
    this.#attempt = 0
    this.#open()
  }

  /**
   * Closes for good: no reconnect. Pending sends and joins reject with
   * `disconnected`; the rooms are kept for a later `connect()`.
   * @returns {void}
   */
  close () {
    this.#clearRetry()
    this.#dropSocket(CLOSE_NORMAL, 'client closed')
    this.#failWaiters('client closed')
    this.#setState({ state: 'closed' })
  }

  /**
   * Reconnects at once if a reconnect is scheduled (e.g. a "retry now" button).
   * @returns {void}
   */
  retryNow () {
    if (this.#state.state !== 'reconnecting') return
    this.#clearRetry()
    this.#open()
  }

  /**
   * Changes the display name. The name is fixed per connection, so an open
   * connection is replaced by a new one; rooms resume where they were.
   * @param {string | undefined} name undefined → the server assigns one
   * @returns {void}
   */
  setName (name) {
    if (name === this.#name) return
    this.#name = name
    const current = this.#state.state
    if (current === 'idle' || current === 'closed') return
    this.#clearRetry()
    this.#dropSocket(CLOSE_NORMAL, 'changing name')
    this.#attempt = 0
    this.#open()
  }

  /** @returns {string} */
  #socketUrl () {
    const url = new URL(this.#url)
    if (this.#name !== undefined) url.searchParams.set('name', this.#name)
    return url.toString()
  }

  /** @returns {void} */
  #open () {
    this.#setState({ state: 'connecting', attempt: this.#attempt })
    const getToken = this.#getToken
    if (getToken === undefined) {
      this.#openSocket(undefined)
      return
    }
    const seq = ++this.#openSeq
    Promise.resolve().then(getToken).then((token) => {
      if (seq === this.#openSeq && this.#state.state === 'connecting') this.#openSocket(token)
    }, (err) => {
      // The host application could not give a token (its endpoint is down?): try again later.
      if (seq === this.#openSeq && this.#state.state === 'connecting') this.#retry(1006, `no token: ${err instanceof Error ? err.message : String(err)}`)
    })
  }

  /**
   * @param {string | undefined} token
   * @returns {void}
   */
  #openSocket (token) {
    /** @type {SocketLike} */
    let socket
    try {
      socket = token === undefined
        ? new this.#WebSocket(this.#socketUrl())
        : new this.#WebSocket(this.#socketUrl(), ['chat', `bearer.${token}`])
    } catch (err) {
      // The constructor only throws for a URL it will never accept (a wrong
      // scheme): retrying cannot help, so stop and say why.
      this.#setState({ state: 'closed', reason: err instanceof Error ? err.message : String(err) })
      return
    }
    this.#socket = socket
    // Every handler checks it still belongs to the current socket: a replaced
    // socket's late events must not touch the new connection's state.
    socket.addEventListener('message', (event) => {
      if (this.#socket !== socket) return
      const data = 'data' in event ? event.data : undefined
      if (typeof data !== 'string') return
      const frame = parseServerFrame(data)
      if (frame !== undefined) this.#handle(frame)
    })
    socket.addEventListener('close', (event) => {
      if (this.#socket !== socket) return
      const code = 'code' in event && typeof event.code === 'number' ? event.code : 1006
      const reason = 'reason' in event && typeof event.reason === 'string' ? event.reason : ''
      this.#onClose(code, reason)
    })
    // Errors are always followed by `close`, which does the work.
    socket.addEventListener('error', () => {})
  }

  /**
   * Forgets the current socket (its late events are ignored) and closes it.
   * @param {number} code
   * @param {string} reason
   * @returns {void}
   */
  #dropSocket (code, reason) {
    this.#openSeq++
    const socket = this.#socket
    this.#socket = undefined
    this.#welcome = undefined
    this.#endConnection()
    if (socket === undefined) return
    try {
      socket.close(code, reason)
    } catch {
      // Closing a socket that is still connecting throws in some implementations.
    }
  }

  /**
   * Resets what belonged to one connection: pending requests fail with
   * `disconnected`; join waiters stay, the room will be joined again.
   * @returns {void}
   */
  #endConnection () {
    clearTimeout(this.#refreshTimer)
    this.#refreshTimer = undefined
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const room of this.#rooms.values()) {
      room.joined = false
      // The welcome of the next connection joins every room anyway.
      clearTimeout(room.joinTimer)
      room.joinTimer = undefined
    }
    for (const request of pending) {
      if (request.kind === 'leave' || request.kind === 'send') {
        request.waiter.reject(new ChatError('disconnected', 'connection closed before the server answered', { room: request.room }))
      }
    }
  }

  /**
   * @param {string} reason
   * @param {ChatErrorCode} [code]
   * @returns {void}
   */
  #failWaiters (reason, code = 'disconnected') {
    for (const room of this.#rooms.values()) {
      const waiters = room.waiters
      room.waiters = []
      for (const waiter of waiters) waiter.reject(new ChatError(code, reason, { room: room.name }))
    }
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @returns {void}
   */
  #onClose (code, reason) {
    this.#socket = undefined
    this.#welcome = undefined
    this.#endConnection()
    if (code === CLOSE_POLICY) {
      // Origin, auth or abuse: trying again would only be refused again.
      this.#failWaiters(`closed by the server (${code}${reason === '' ? '' : `: ${reason}`})`)
      this.#setState({ state: 'closed', code, reason })
      return
    }
    if (code === CLOSE_UNAUTHORIZED) {
      // The token was refused or the user disconnected: reconnecting with it would loop.
      this.#failWaiters(`unauthorized${reason === '' ? '' : `: ${reason}`}`, 'unauthorized')
      this.#setState({ state: 'closed', code, reason })
      return
    }
    // 4001 (expired) comes here too: the next open asks getToken for a fresh token.
    if (code === CLOSE_TOKEN_EXPIRED && this.#getToken === undefined) {
      this.#setState({ state: 'closed', code, reason })
      return
    }
    this.#retry(code, reason)
  }

  /**
   * Schedules the next open after a jittered backoff.
   * @param {number} code
   * @param {string} reason
   * @returns {void}
   */
  #retry (code, reason) {
    const delayMs = this.#backoff(this.#attempt)
    this.#attempt++
    this.#setState({ state: 'reconnecting', delayMs, attempt: this.#attempt, code, reason })
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#open()
    }, delayMs)
  }

  /**
   * Full jitter: a uniform wait below the capped exponential, so clients cut
   * off together do not come back together.
   * @param {number} attempt tries so far
   * @returns {number} milliseconds
   */
  #backoff (attempt) {
    return this.#random() * Math.min(this.#maxMs, this.#baseMs * 2 ** attempt)
  }

  /** @returns {void} */
  #clearRetry () {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
  }

  /**
   * @param {ConnectionState} state
   * @returns {void}
   */
  #setState (state) {
    this.#state = state
    this.#emit('state', state)
  }

  // -- requests -------------------------------------------------------------

  /**
   * @param {ClientFrame} frame
   * @returns {boolean} whether the frame was handed to an open socket
   */
  #sendFrame (frame) {
    const socket = this.#socket
    if (socket === undefined || this.#welcome === undefined || socket.readyState !== OPEN) return false
    socket.send(JSON.stringify(frame))
    return true
  }

  /** @returns {string} */
  #nextRef () {
    this.#refSeq++
    return `c${this.#refSeq}`
  }

  /**
   * Joins a room (or keeps it wanted until online). Resolves on `joined`;
   * rejects with the server's error (the room is then dropped), or with
   * `disconnected` on `close()` / a policy close. A drop of the connection
   * does not reject: the join is made again on the next connection, as is an
   * `unavailable` refusal after a backoff. Joining a room already joined
   * resolves with its last `joined` frame. A rejection nobody handles is not
   * reported as unhandled.
   * @param {string} room
   * @returns {Promise<JoinedFrame>}
   */
  join (room) {
    const existing = this.#rooms.get(room)
    if (existing?.joined === true && existing.joinedFrame !== undefined) return Promise.resolve(existing.joinedFrame)
    /** @type {RoomState} */
    const state = existing ?? {
      name: room,
      joined: false,
      recentIds: new Set(),
      members: new Map(),
      waiters: [],
      joinRetries: 0
    }
    /** @type {Promise<JoinedFrame>} */
    const promise = new Promise((resolve, reject) => { state.waiters.push({ resolve, reject }) })
    // Fire-and-forget joins are normal; do not report their failure as unhandled.
    promise.catch(() => {})
    if (existing === undefined) {
      this.#rooms.set(room, state)
      this.#sendJoin(state)
    }
    return promise
  }

  /**
   * @param {RoomState} room
   * @returns {void}
   */
  #sendJoin (room) {
    clearTimeout(room.joinTimer)
    room.joinTimer = undefined
    const ref = this.#nextRef()
    /** @type {JoinFrame} */
    const frame = { type: 'join', room: room.name, ref }
    // `since` is left out, never null, when nothing was seen yet.
    if (room.lastId !== undefined) frame.since = room.lastId
    if (this.#sendFrame(frame)) this.#pending.set(ref, { kind: 'join', room: room.name })
  }

  /**
   * Leaves a room: it is forgotten at once (no more events, no re-join).
   * Resolves on `left`, or at once when offline.
   * @param {string} room
   * @returns {Promise<void>}
   */
  leave (room) {
    const state = this.#rooms.get(room)
    if (state === undefined) return Promise.resolve()
    this.#rooms.delete(room)
    clearTimeout(state.joinTimer)
    for (const waiter of state.waiters) waiter.reject(new ChatError('disconnected', 'left the room before joining it', { room }))
    const ref = this.#nextRef()
    /** @type {Promise<void>} */
    const promise = new Promise((resolve, reject) => {
      if (this.#sendFrame({ type: 'leave', room, ref })) {
        this.#pending.set(ref, { kind: 'leave', room, waiter: { resolve, reject } })
      } else {
        resolve()
      }
    })
    promise.catch(() => {}) // as for join(): callers may ignore the answer
    return promise
  }

  /**
   * Posts `text` to a joined room. Resolves with the stored message's id on
   * `ack`; rejects with a {@link ChatError} carrying the server's code
   * (`rate_limited`, `invalid_frame`, `not_joined`, `unavailable`, ...) or
   * `disconnected` when not online or the socket closed before the answer.
   * Nothing is retried: after `disconnected` the message may or may not have
   * been stored.
   * @param {string} room
   * @param {string} text
   * @returns {Promise<SendResult>}
   */
  send (room, text) {
    const ref = this.#nextRef()
    return new Promise((resolve, reject) => {
      if (this.#sendFrame({ type: 'send', room, text, ref })) {
        this.#pending.set(ref, { kind: 'send', room, waiter: { resolve, reject } })
      } else {
        reject(new ChatError('disconnected', 'not connected', { ref, room }))
      }
    })
  }

  // -- incoming frames ------------------------------------------------------

  /**
   * @param {ServerFrame} frame
   * @returns {void}
   */
  #handle (frame) {
    switch (frame.type) {
      case 'welcome': return this.#onWelcome(frame)
      case 'joined': return this.#onJoined(frame)
      case 'message': return this.#onMessage(frame)
      case 'presence': return this.#onPresence(frame)
      case 'left': return this.#onLeft(frame)
      case 'ack': return this.#onAck(frame)
      case 'error': return this.#onError(frame)
    }
  }

  /**
   * @param {WelcomeFrame} frame
   * @returns {void}
   */
  #onWelcome (frame) {
    this.#welcome = frame
    this.#attempt = 0
    this.#emit('welcome', frame)
    this.#setState({ state: 'online' })
    for (const room of this.#rooms.values()) this.#sendJoin(room)
    this.#scheduleRefresh(frame.expiresIn)
  }

  /**
   * Plans the next `auth` frame at a random point between REFRESH_AT_MIN and
   * REFRESH_AT_MAX of the token's remaining life.
   * @param {number | undefined} expiresIn seconds
   * @returns {void}
   */
  #scheduleRefresh (expiresIn) {
    clearTimeout(this.#refreshTimer)
    this.#refreshTimer = undefined
    const getToken = this.#getToken
    if (expiresIn === undefined || getToken === undefined) return
    const fraction = REFRESH_AT_MIN + (REFRESH_AT_MAX - REFRESH_AT_MIN) * this.#random()
    const socket = this.#socket
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined
      Promise.resolve().then(getToken).then((token) => {
        if (token === undefined || this.#socket !== socket) return
        const ref = this.#nextRef()
        if (this.#sendFrame({ type: 'auth', token, ref })) this.#pending.set(ref, { kind: 'auth' })
      }, () => {
        // No fresh token now: the server closes with 4001 at expiry, and the reconnect asks again.
      })
    }, expiresIn * 1000 * fraction)
  }

  /**
   * @param {JoinedFrame} frame
   * @returns {void}
   */
  #onJoined (frame) {
    const room = this.#rooms.get(frame.room)
    if (room === undefined) return
    for (const [ref, request] of this.#pending) {
      if (request.kind === 'join' && request.room === frame.room) { this.#pending.delete(ref); break }
    }
    const resumed = room.lastId !== undefined
    room.joined = true
    room.joinRetries = 0
    room.joinedFrame = frame
    room.members = countNames(frame.members)
    const waiters = room.waiters
    room.waiters = []
    this.#emit('joined', frame)
    for (const waiter of waiters) waiter.resolve(frame)
    if (resumed && !frame.recovered) this.#emit('recovery-failed', { room: frame.room })
  }

  /**
   * @param {MessageFrame} frame
   * @returns {void}
   */
  #onMessage (frame) {
    const room = this.#rooms.get(frame.room)
    if (room === undefined) return
    if (room.recentIds.has(frame.id)) return
    room.recentIds.add(frame.id)
    if (room.recentIds.size > this.#dedupeWindow) {
      // Sets iterate in insertion order: the first id is the oldest.
      const oldest = room.recentIds.values().next().value
      if (oldest !== undefined) room.recentIds.delete(oldest)
    }
    room.lastId = frame.id
    this.#emit('message', frame)
  }

  /**
   * @param {PresenceFrame} frame
   * @returns {void}
   */
  #onPresence (frame) {
    const room = this.#rooms.get(frame.room)
    if (room === undefined || !room.joined) return
    for (const name of frame.joined) room.members.set(name, (room.members.get(name) ?? 0) + 1)
    for (const name of frame.left) {
      const count = room.members.get(name) ?? 0
      if (count <= 1) room.members.delete(name)
      else room.members.set(name, count - 1)
    }
    this.#emit('presence', frame)
  }

  /**
   * @param {LeftFrame} frame
   * @returns {void}
   */
  #onLeft (frame) {
    for (const [ref, request] of this.#pending) {
      if (request.kind === 'leave' && request.room === frame.room) {
        this.#pending.delete(ref)
        request.waiter.resolve()
        break
      }
    }
    this.#emit('left', frame)
  }

  /**
   * @param {AckFrame} frame
   * @returns {void}
   */
  #onAck (frame) {
    const request = this.#pending.get(frame.ref)
    if (request?.kind === 'auth') {
      this.#pending.delete(frame.ref)
      this.#scheduleRefresh(frame.expiresIn)
      return
    }
    if (request?.kind !== 'send' || frame.id === undefined) return
    this.#pending.delete(frame.ref)
    request.waiter.resolve({ id: frame.id })
  }

  /**
   * @param {ErrorFrame} frame
   * @returns {void}
   */
  #onError (frame) {
    const request = frame.ref === undefined ? undefined : this.#pending.get(frame.ref)
    if (request === undefined || frame.ref === undefined) {
      this.#emit('error', { code: frame.code, message: frame.message, ...(frame.ref === undefined ? {} : { ref: frame.ref }) })
      return
    }
    this.#pending.delete(frame.ref)
    if (request.kind === 'auth') {
      // The refresh was refused: the current token stays until it expires (4001, then a reconnect with a new one).
      this.#emit('error', { code: frame.code, message: frame.message, ref: frame.ref })
      return
    }
    const error = new ChatError(frame.code, frame.message, { ref: frame.ref, room: request.room })
    if (request.kind !== 'join') {
      request.waiter.reject(error)
      return
    }
    const room = this.#rooms.get(request.room)
    if (room === undefined) return
    if (frame.code === 'unavailable') {
      // The broker could not serve the history just now: the room stays
      // wanted and is tried again; `join()` callers keep waiting.
      const delayMs = this.#backoff(room.joinRetries)
      room.joinRetries++
      room.joinTimer = setTimeout(() => {
        room.joinTimer = undefined
        if (this.#rooms.get(room.name) === room && !room.joined) this.#sendJoin(room)
      }, delayMs)
      this.#emit('error', { code: frame.code, message: frame.message, ref: frame.ref, room: room.name, willRetry: true })
      return
    }
    // Any other refusal drops the room; whoever asked for it hears why.
    this.#rooms.delete(request.room)
    if (room.waiters.length === 0) {
      this.#emit('error', { code: frame.code, message: frame.message, ref: frame.ref, room: request.room })
    }
    for (const waiter of room.waiters) waiter.reject(error)
  }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/**
 * @param {string[]} names
 * @returns {Map<string, number>}
 */
function countNames (names) {
  /** @type {Map<string, number>} */
  const counts = new Map()
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1)
  return counts
}

/**
 * @param {unknown} value
 * @returns {value is string[]}
 */
function isStringArray (value) {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

/**
 * @param {unknown} value
 * @returns {value is ServerErrorCode}
 */
function isServerErrorCode (value) {
  return typeof value === 'string' && Object.hasOwn(SERVER_ERROR_CODES, value)
}

/**
 * Checks a server frame's shape; anything outside the contract is dropped
 * (undefined) rather than trusted.
 * @param {string} data
 * @returns {ServerFrame | undefined}
 */
export function parseServerFrame (data) {
  /** @type {unknown} */
  let value
  try {
    value = JSON.parse(data)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  /** @type {Record<string, unknown>} */
  const f = { ...value }
  const { type, room, id, name, node, members, recovered, from, text, ts, joined, left, ref, code, message, user, expiresIn, api } = f
  switch (type) {
    case 'welcome':
      if (typeof id !== 'string' || typeof name !== 'string' || typeof node !== 'string') return undefined
      // `user` and `expiresIn` come together, for an authenticated connection.
      if (typeof user === 'string' && typeof expiresIn === 'number') return { type, id, name, node, user, expiresIn }
      return { type, id, name, node }
    case 'joined':
      if (typeof room === 'string' && isStringArray(members) && typeof recovered === 'boolean') return { type, room, members, recovered }
      return undefined
    case 'message':
      if (typeof room === 'string' && typeof id === 'string' && typeof from === 'string' && typeof text === 'string' && typeof ts === 'number') {
        /** @type {MessageFrame} */
        const frame = { type, room, id, from, text, ts }
        // What a reader may trust beyond `from`: the verified sender, the back office.
        if (typeof user === 'string') frame.user = user
        if (api === true) frame.api = true
        return frame
      }
      return undefined
    case 'presence':
      if (typeof room === 'string' && isStringArray(joined) && isStringArray(left)) return { type, room, joined, left }
      return undefined
    case 'left':
      if (typeof room === 'string') return { type, room }
      return undefined
    case 'ack':
      if (typeof ref === 'string' && typeof id === 'string') return { type, ref, id }
      if (typeof ref === 'string' && typeof expiresIn === 'number') return { type, ref, expiresIn }
      return undefined
    case 'error':
      if (!isServerErrorCode(code) || typeof message !== 'string') return undefined
      if (ref === undefined) return { type, code, message }
      if (typeof ref === 'string') return { type, code, message, ref }
      return undefined
    default:
      return undefined
  }
}
