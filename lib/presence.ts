// Who is in a room across nodes. The hub keeps this node's members itself;
// a Presence tells other nodes of them and learns theirs. One node alone has
// no other nodes (memory-presence.ts); a cluster shares them over Redis.

export interface PresenceMember {
  /** Unique on this node (the connection's id). */
  id: string
  name: string
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
  /** Records a member of this node, for other nodes' member lists. */
  memberJoined (room: string, member: PresenceMember): void
  memberLeft (room: string, member: PresenceMember): void
  /**
   * Names of the room's members on other nodes: one per user however many
   * nodes it is on, none for a user `localUsers` has (this node lists it).
   */
  remoteMembers (room: string, localUsers?: UserSet): Promise<string[]>
  /**
   * Whether another node has a connection of `user` in the room (read afresh,
   * after this node's own writes). Absent on a single node: nobody else to ask.
   */
  remoteHasUser? (room: string, user: string): Promise<boolean>
  /** Tells other nodes of this node's (batched) presence changes. */
  publishPresence (room: string, joined: string[], left: string[]): void
  close (): Promise<void>
}
