// Presence of a single node: there are no other nodes, so nobody to tell and
// no remote members. The hub's own member list is the whole truth.
import type { Presence, RosterEntry } from './presence.js'

export class MemoryPresence implements Presence {
  async start (): Promise<void> {}
  memberJoined (): void {}
  memberLeft (): void {}
  async remoteMembers (): Promise<string[]> {
    return []
  }

  async remoteRoster (): Promise<RosterEntry[]> {
    return []
  }

  publishPresence (): void {}
  async close (): Promise<void> {}
}
