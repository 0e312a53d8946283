// The message broker behind the hub: stores each message in its room's log,
// then fans it out to every node serving the room, in room order. The memory
// broker serves one node; the Redis broker a cluster. Who is in a room is
// another concern (presence.ts).
import type { Origin, StoredMessage } from './frames.js'

export interface ReadRequest {
  /** Id of the last message the reader has; absent for the most recent messages. */
  since?: string | undefined
  limit: number
  /** How many recent messages to return instead when `since` is unknown; defaults to `limit`. */
  fallbackLimit?: number
}

export interface ReadResult {
  /** Oldest first. With a known `since`: the first `limit` after it; otherwise the newest `limit`. */
  messages: StoredMessage[]
  /** False when `since` was given but is unknown here (never issued, or trimmed away): `messages` are then the recent ones. */
  recovered: boolean
}

/** Receives the stored messages of subscribed rooms: in room order, once per message. */
export type MessageHandler = (message: StoredMessage) => void

/** Counters of a cluster broker, for the metrics plugin. */
export interface ClusterStats {
  redisReconnects: number
  gapsDetected: number
  messagesRepaired: number
  /** Round trip of the last readiness probe, in milliseconds. */
  probeRoundTripMs: number
}

/** What the sender of a stored message learns: the `ack`'s id, the HTTP 202 body. */
export type PublishReceipt = Pick<StoredMessage, 'room' | 'id' | 'ts'>

/** How a message is published besides its words: who is behind it, its structured data, and the caller's retry key. */
export interface PublishOptions extends Origin {
  /** The message's `data` as its compact JSON encoding (StoredMessage.data); checked against MAX_DATA_BYTES by the caller. */
  data?: string | undefined
  idempotencyKey?: string | undefined
}

export type BrokerHealth = { ok: true } | { ok: false, check: string, reason: string }

export interface Broker {
  /** Call once before use; `onMessage` receives every message of the rooms subscribed to. */
  start (onMessage: MessageHandler): Promise<void>
  /**
   * Stores the message, then publishes it. Rejects with BrokerUnavailableError
   * if it could not be stored, BrokerTimeoutError if the store did not answer.
   * The origin in `options` (a verified user, the HTTP API) travels with the
   * message. With `options.idempotencyKey`, a cluster broker records the key
   * in the same atomic step as the message, and a repeat within
   * IDEMPOTENCY_TTL_MS gets the first call's receipt and publishes nothing
   * (PROTOCOL §4); the memory broker ignores it (MemoryIdempotencyStore does
   * that job on one node).
   */
  publish (room: string, from: string, text: string, options?: PublishOptions): Promise<PublishReceipt>
  read (room: string, request: ReadRequest): Promise<ReadResult>
  /** This node has local members in `room` and wants its messages. */
  subscribe (room: string): void
  unsubscribe (room: string): void
  health (): BrokerHealth
  close (): Promise<void>
  /** Present on a cluster broker. */
  readonly clusterStats?: ClusterStats
}

/**
 * Unsequenced payloads for the other nodes serving a room (presence changes,
 * later typing signals): they travel on the room's channel but never take a
 * sequence, are never stored, and never wait for or start a gap repair. A
 * node does not receive its own. Only a cluster broker has one.
 */
export interface EphemeralChannel {
  publishEphemeral (room: string, topic: string, payload: EphemeralPayload): void
  /** `handler` receives other nodes' payloads of `topic` in the rooms this node subscribes to; unvalidated. */
  onEphemeral (topic: string, handler: (room: string, payload: unknown) => void): void
}

/** Anything JSON can carry. */
export type EphemeralPayload = string | number | boolean | null | EphemeralPayload[] | { [key: string]: EphemeralPayload }

/** The broker cannot take the message now; nothing was published. */
export class BrokerUnavailableError extends Error {
  constructor (message = 'the message broker is unavailable; nothing was published, try again') {
    super(message)
    this.name = 'BrokerUnavailableError'
  }
}

/**
 * The broker took the message but did not answer in time: it may or may not
 * have been published, and if it was, it is delivered like any other. A retry
 * with the same Idempotency-Key publishes it at most once.
 */
export class BrokerTimeoutError extends Error {
  constructor (message = 'the message broker did not answer in time; the message may or may not have been published') {
    super(message)
    this.name = 'BrokerTimeoutError'
  }
}
