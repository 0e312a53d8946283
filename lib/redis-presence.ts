// Cluster presence over Redis: every node writes its members into the room's
// member hash and keeps a heartbeat key alive; a node whose key expired is
// gone, and its members with it. Changes reach other nodes as ephemeral
// payloads on the room's channel (the broker's, past its sequencing).
import type { Redis } from 'ioredis'
import type { EphemeralChannel } from './broker.js'
import type { Presence, PresenceMember, RemotePresenceHandler } from './presence.js'
import { type RedisErrorReporter, reportUnlessAway } from './redis-errors.js'
import { nodeKey, roomKeys } from './redis-scripts.js'

export interface RedisPresenceOptions {
  /** Connection for commands (not the subscriber). */
  command: Redis
  /** Where presence changes travel between nodes. */
  channel: EphemeralChannel
  nodeId: string
  /** A node's members count while its heartbeat key lives this long without a refresh. */
  presenceTtlMs: number
  /** Unexpected errors that reach no caller (Redis being away is expected and not reported). */
  onError: RedisErrorReporter
}

/** The ephemeral topic presence changes travel under. */
const TOPIC = 'presence'

/** The heartbeat key is refreshed this many times per TTL, so one missed refresh does not expire it. */
const REFRESH_PER_TTL = 3

/** A presence change as it travels: names that joined and left. */
interface Change {
  j: string[]
  l: string[]
}

export class RedisPresence implements Presence {
  private readonly command: Redis
  /** Members on this node per room (field → name), re-registered after Redis comes back. */
  private readonly localMembers = new Map<string, Map<string, string>>()
  /** Removals that failed while Redis was away (`room\nfield`), retried when it returns. */
  private readonly staleFields = new Set<string>()
  private readonly membersInFlight = new Map<string, Promise<string[]>>()
  private refreshTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor (private readonly options: RedisPresenceOptions) {
    this.command = options.command
  }

  async start (onRemotePresence: RemotePresenceHandler): Promise<void> {
    this.options.channel.onEphemeral(TOPIC, (room, payload) => {
      if (isChange(payload)) onRemotePresence(room, payload.j, payload.l)
      else this.options.onError(new Error('a malformed presence change arrived'), `room ${room}`)
    })
    this.command.on('ready', () => this.onCommandReady())
    await this.refreshNode()
    this.refreshTimer = setInterval(() => {
      this.refreshNode().catch(this.reporter('refreshing the node heartbeat key'))
    }, this.options.presenceTtlMs / REFRESH_PER_TTL)
    this.refreshTimer.unref()
  }

  memberJoined (room: string, member: PresenceMember): void {
    let members = this.localMembers.get(room)
    if (!members) {
      members = new Map()
      this.localMembers.set(room, members)
    }
    const field = this.memberField(member)
    members.set(field, member.name)
    // A failed write is repaired when the connection returns (onCommandReady).
    this.command.hset(roomKeys(room).members, field, member.name).catch(this.reporter('adding a member'))
  }

  memberLeft (room: string, member: PresenceMember): void {
    const members = this.localMembers.get(room)
    const field = this.memberField(member)
    members?.delete(field)
    if (members?.size === 0) this.localMembers.delete(room)
    const report = this.reporter('removing a member')
    // A failed removal is repaired when the connection returns (onCommandReady).
    this.command.hdel(roomKeys(room).members, field).catch((error: unknown) => {
      this.staleFields.add(`${room}\n${field}`)
      report(error)
    })
  }

  /**
   * Joins that arrive together share one read of the member list (a join
   * storm would otherwise read the whole, growing list once per joiner).
   */
  remoteMembers (room: string): Promise<string[]> {
    let pending = this.membersInFlight.get(room)
    if (!pending) {
      pending = this.readRemoteMembers(room).finally(() => this.membersInFlight.delete(room))
      this.membersInFlight.set(room, pending)
    }
    return pending
  }

  publishPresence (room: string, joined: string[], left: string[]): void {
    this.options.channel.publishEphemeral(room, TOPIC, { j: joined, l: left })
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.refreshTimer)
    // Leave no ghosts: other nodes drop this node's members at once.
    const report = this.reporter('removing this node\'s members on shutdown')
    const cleanup = [...this.localMembers].map(([room, members]) =>
      this.command.hdel(roomKeys(room).members, ...members.keys()).catch(report))
    await Promise.all([...cleanup, this.command.del(nodeKey(this.options.nodeId)).catch(report)])
  }

  private async readRemoteMembers (room: string): Promise<string[]> {
    const key = roomKeys(room).members
    let all: Record<string, string>
    try {
      all = await this.command.hgetall(key)
    } catch (error) {
      // Without the list, the joiner sees this node's members only.
      this.reporter('reading the member list')(error)
      return []
    }
    const byNode = new Map<string, Array<[string, string]>>()
    for (const [field, name] of Object.entries(all)) {
      const node = field.slice(0, field.indexOf('/'))
      if (node === this.options.nodeId) continue
      let list = byNode.get(node)
      if (!list) byNode.set(node, list = [])
      list.push([field, name])
    }
    if (byNode.size === 0) return []
    const nodes = [...byNode.keys()]
    const reportExists = this.reporter('checking a node heartbeat key')
    // When the check fails, the node counts as alive: better a ghost for a while than a member hidden.
    const alive = await Promise.all(nodes.map((node) => this.command.exists(nodeKey(node)).catch((error: unknown) => {
      reportExists(error)
      return 1
    })))
    const names: string[] = []
    const dead: string[] = []
    nodes.forEach((node, i) => {
      for (const [field, name] of byNode.get(node) ?? []) {
        if (alive[i] === 1) names.push(name)
        else dead.push(field)
      }
    })
    // Members of a node whose heartbeat key expired are gone; tidy them up.
    if (dead.length > 0) this.command.hdel(key, ...dead).catch(this.reporter('removing members of a dead node'))
    return names
  }

  /** The command connection came back: make this node's presence true again. */
  private onCommandReady (): void {
    if (this.closed) return
    this.refreshNode().catch(this.reporter('refreshing the node heartbeat key'))
    for (const [room, members] of this.localMembers) {
      if (members.size > 0) this.command.hset(roomKeys(room).members, Object.fromEntries(members)).catch(this.reporter('re-adding members'))
    }
    for (const stale of this.staleFields) {
      const [room, field] = stale.split('\n') as [string, string]
      this.command.hdel(roomKeys(room).members, field).then(() => this.staleFields.delete(stale), this.reporter('removing a member'))
    }
  }

  private refreshNode (): Promise<unknown> {
    return this.command.set(nodeKey(this.options.nodeId), '1', 'PX', this.options.presenceTtlMs)
  }

  private memberField (member: PresenceMember): string {
    return `${this.options.nodeId}/${member.id}`
  }

  private reporter (context: string): (error: unknown) => void {
    return reportUnlessAway(this.options.onError, context)
  }
}

function isChange (payload: unknown): payload is Change {
  if (typeof payload !== 'object' || payload === null || !('j' in payload) || !('l' in payload)) return false
  return isNames(payload.j) && isNames(payload.l)
}

function isNames (value: unknown): value is string[] {
  return Array.isArray(value) && value.every((name) => typeof name === 'string')
}
