// The broker behind the hub: stores each message in its room's log, then fans
// it out to every node serving the room. The in-memory bus serves one node;
// the Redis bus a cluster. The hub is written against this interface only.
import type { StoredMessage } from './frames.js'

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

export interface BusMember {
  id: string
  name: string
}

export interface BusHandlers {
  /** A stored message of a subscribed room; called in room order, once per message. */
  message (message: StoredMessage): void
  /** Presence changes made on other nodes. */
  presence (room: string, joined: string[], left: string[]): void
}

/** Counters of a cluster bus, for the metrics plugin. */
export interface ClusterStats {
  redisReconnects: number
  gapsDetected: number
  messagesRepaired: number
  /** Round trip of the last readiness probe, in milliseconds. */
  probeRoundTripMs: number
}

export type BusHealth = { ok: true } | { ok: false, check: string, reason: string }

export interface Bus {
  start (handlers: BusHandlers): Promise<void>
  /** Stores the message, then publishes it. Rejects with BrokerUnavailableError if it could not be stored. */
  publish (room: string, from: string, text: string): Promise<StoredMessage>
  read (room: string, request: ReadRequest): Promise<ReadResult>
  /** This node has local members in `room` and wants its messages. */
  subscribe (room: string): void
  unsubscribe (room: string): void
  /** Cluster-wide membership bookkeeping. */
  memberJoined (room: string, member: BusMember): void
  memberLeft (room: string, member: BusMember): void
  /** Names of the room's members on other nodes. */
  remoteMembers (room: string): Promise<string[]>
  /** Tells other nodes of this node's presence changes. */
  publishPresence (room: string, joined: string[], left: string[]): void
  health (): BusHealth
  close (): Promise<void>
  /** Present on a cluster bus. */
  readonly clusterStats?: ClusterStats
}

/** The broker cannot take the message now; nothing was published. */
export class BrokerUnavailableError extends Error {
  constructor (message = 'the message broker is unavailable; nothing was published, try again') {
    super(message)
    this.name = 'BrokerUnavailableError'
  }
}
