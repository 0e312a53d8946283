// Who is in a room across nodes. The hub keeps this node's members itself;
// a Presence tells other nodes of them and learns theirs. One node alone has
// no other nodes (memory-presence.ts); a cluster shares them over Redis.

export interface PresenceMember {
  /** Unique on this node (the connection's id). */
  id: string
  name: string
  /** How many connections it stands for on this node (a user's); 1 when absent. */
  connections?: number
}

/** A member of another node as the member list (GET /rooms/:id/members) shows it. */
export interface RosterEntry {
  name: string
  /** The user id; absent for a guest connection. */
  user?: string
  /** Its connections in the room on that node. */
  connections: number
}

/** The users a node has in a room. */
export interface UserSet {
  has (user: string): boolean
}

/** Receives presence changes made on other nodes. */
export type RemotePresenceHandler = (room: string, joined: string[], left: string[]) => void

export interface Presence {
  /** Call once before use; `onRemotePresence` receives other nodes' changes in the rooms this node serves. */
  start (onRemotePresence: RemotePresenceHandler): Promise<void>
  /**
   * Records a member of this node, for other nodes' member lists; recorded
   * again when its number of connections here changes.
   */
  memberJoined (room: string, member: PresenceMember): void
  memberLeft (room: string, member: PresenceMember): void
  /**
   * Names of the room's members on other nodes: one per user however many
   * nodes it is on, none for a user `localUsers` has (this node lists it).
   */
  remoteMembers (room: string, localUsers?: UserSet): Promise<string[]>
  /**
   * The room's members on other nodes, one entry per node a user is on (with
   * its connections there) and one per guest connection. Unlike
   * `remoteMembers`, a store that cannot be read is an error, not an empty list.
   */
  remoteRoster (room: string): Promise<RosterEntry[]>
  /**
   * Whether another node has a connection of `user` in the room (read afresh,
   * after this node's own writes). Absent on a single node: nobody else to ask.
   */
  remoteHasUser? (room: string, user: string): Promise<boolean>
  /** Tells other nodes of this node's (batched) presence changes. */
  publishPresence (room: string, joined: string[], left: string[]): void
  close (): Promise<void>
}
