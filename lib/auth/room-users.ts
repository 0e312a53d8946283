// One room's authenticated users, so that presence counts a user once however
// many connections it has there (PROTOCOL §3): `joined` on its first
// connection, `left` on its last. Guests stay one entry per connection.
import type { RosterEntry } from '../presence.js'

export interface RoomMember {
  readonly id: string
  readonly name: string
  readonly user?: string | undefined
}

interface Present<P> {
  /** Stands for the user in presence, from its first connection to its last. */
  readonly stand: P
  readonly connections: Set<RoomMember>
}

export class RoomUsers<P extends RoomMember> {
  private readonly users = new Map<string, Present<P>>()

  /**
   * @param standFor builds what presence records for a user (its name is the
   *   first connection's display name); a guest is recorded as itself.
   */
  constructor (private readonly standFor: (member: P) => P) {}

  /** What presence must record as joined, or undefined when the user was already there. */
  joined (member: P): P | undefined {
    if (member.user === undefined) return member
    const present = this.users.get(member.user)
    if (present !== undefined) {
      present.connections.add(member)
      return undefined
    }
    const stand = this.standFor(member)
    this.users.set(member.user, { stand, connections: new Set([member]) })
    return stand
  }

  /** Whether `user` has a connection in the room here. */
  has (user: string): boolean {
    return this.users.has(user)
  }

  /** What stands for `user` in presence and how many of its connections are in the room; undefined when none is. */
  present (user: string): { stand: P, connections: number } | undefined {
    const present = this.users.get(user)
    return present === undefined ? undefined : { stand: present.stand, connections: present.connections.size }
  }

  /** What presence must record as left, or undefined when the user still has a connection here. */
  left (member: P): P | undefined {
    if (member.user === undefined) return member
    const present = this.users.get(member.user)
    if (present === undefined || !present.connections.delete(member)) return undefined
    if (present.connections.size > 0) return undefined
    this.users.delete(member.user)
    return present.stand
  }

  /** The room's users, each with its connections here, then one entry per guest among `members`. */
  * roster (members: Iterable<P>): Iterable<RosterEntry> {
    for (const [user, { stand, connections }] of this.users) yield { name: stand.name, user, connections: connections.size }
    for (const member of members) {
      if (member.user === undefined) yield { name: member.name, connections: 1 }
    }
  }

  /** The names of `members`: one per user, one per guest. */
  * names (members: Iterable<P>): Iterable<string> {
    const seen = new Set<string>()
    for (const member of members) {
      if (member.user === undefined) {
        yield member.name
      } else if (!seen.has(member.user)) {
        seen.add(member.user)
        yield this.users.get(member.user)?.stand.name ?? member.name
      }
    }
  }
}
