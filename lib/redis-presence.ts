// Cluster presence over Redis: every node writes its members into the room's
// member hash under its incarnation (one run of the process) and keeps a
// heartbeat key holding that incarnation alive. A member counts while its
// node's key holds its incarnation: a node that died, even one restarted at
// once under the same NODE_ID, brings none of its old members back. Every key
// expires unless a live node refreshes it. Changes reach other nodes as
// ephemeral payloads on the room's channel (the broker's, past its sequencing).
import { randomBytes } from 'node:crypto'
import type { EphemeralChannel } from './broker.js'
import type { Presence, PresenceMember, RemotePresenceHandler, UserSet } from './presence.js'
import { type RedisErrorReporter, reportUnlessAway } from './redis-errors.js'
import { nodeKey, roomKeys } from './redis-scripts.js'
import type { RedisClient } from './redis-topology.js'

export interface RedisPresenceOptions {
  /** Connection for commands (not the subscriber). */
  command: RedisClient
  /** Where presence changes travel between nodes. */
  channel: EphemeralChannel
  nodeId: string
  /**
   * A node's members count while its heartbeat key lives this long without a
   * refresh; a member hash expires this long after the last node with members
   * in it refreshed it.
   */
  presenceTtlMs: number
  /** This run of the node; random by default (tests pin it). */
  incarnation?: string
  /** Unexpected errors that reach no caller (Redis being away is expected and not reported). */
  onError: RedisErrorReporter
}

/** The ephemeral topic presence changes travel under. */
const TOPIC = 'presence'

/** The heartbeat key and member hashes are refreshed this many times per TTL, so one missed refresh does not expire them. */
const REFRESH_PER_TTL = 3

/** Random bytes of an incarnation: restarts of one NODE_ID never share one. */
const INCARNATION_BYTES = 6

/**
 * What a node of the version before incarnations keeps in its heartbeat key;
 * its member fields (`<node>/<connection>`) belong to it. Understood so a
 * rolling upgrade neither hides nor tidies away the old nodes' members.
 */
const UNVERSIONED_INCARNATION = '1'

/** Deletes the heartbeat key only if it still holds this incarnation (a newer run of the node may own it). */
const DELETE_IF_OURS = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

/**
 * A member hash field: `<node>/<incarnation>.<connection>`. NODE_ID holds no
 * `/` and connection ids and incarnations no `.` (both hex), so it parses back.
 */
function memberOwner (field: string): { node: string, incarnation: string } {
  const slash = field.indexOf('/')
  const dot = field.indexOf('.', slash + 1)
  return {
    node: field.slice(0, slash),
    incarnation: dot === -1 ? UNVERSIONED_INCARNATION : field.slice(slash + 1, dot)
  }
}

/**
 * The user a member field stands for: the hub records a user's presence under
 * the id `user:<id>` (connection ids are hex), so the field names it. Values
 * stay plain names, as every version wrote them.
 */
function memberUser (field: string): string | undefined {
  const at = field.indexOf(USER_PREFIX, field.indexOf('/') + 1)
  return at === -1 || field[at - 1] !== '.' ? undefined : field.slice(at + USER_PREFIX.length)
}

const USER_PREFIX = 'user:'

/** A member of another node, as read from the member hash. */
interface RemoteEntry {
  name: string
  user: string | undefined
}

/** A heartbeat key that could not be read: its node's members count, whatever their incarnation. */
const ANY_INCARNATION = Symbol('any incarnation')

/** A presence change as it travels: names that joined and left. */
interface Change {
  j: string[]
  l: string[]
}

export class RedisPresence implements Presence {
  private readonly command: RedisClient
  readonly incarnation: string
  /** Members on this node per room (field → name), re-registered after Redis comes back. */
  private readonly localMembers = new Map<string, Map<string, string>>()
  /** Removals that failed while Redis was away (`room\nfield`), retried when it returns. */
  private readonly staleFields = new Set<string>()
  private readonly membersInFlight = new Map<string, Promise<RemoteEntry[]>>()
  private refreshTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor (private readonly options: RedisPresenceOptions) {
    this.command = options.command
    this.incarnation = options.incarnation ?? randomBytes(INCARNATION_BYTES).toString('hex')
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
      this.refreshRooms()
    }, this.options.presenceTtlMs / REFRESH_PER_TTL)
    this.refreshTimer.unref()
  }

  memberJoined (room: string, member: PresenceMember): void {
    let members = this.localMembers.get(room)
    const first = !members
    if (!members) {
      members = new Map()
      this.localMembers.set(room, members)
    }
    const field = this.memberField(member)
    members.set(field, member.name)
    const key = roomKeys(room).members
    // A failed write is repaired when the connection returns (onCommandReady).
    this.command.hset(key, field, member.name).catch(this.reporter('adding a member'))
    // The hash may be new; later the refresh timer keeps it alive while this node has members in it.
    if (first) this.command.pexpire(key, this.options.presenceTtlMs).catch(this.reporter('setting a member list\'s expiry'))
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
  async remoteMembers (room: string, localUsers?: UserSet): Promise<string[]> {
    let pending = this.membersInFlight.get(room)
    if (!pending) {
      pending = this.readRemoteMembers(room).finally(() => this.membersInFlight.delete(room))
      this.membersInFlight.set(room, pending)
    }
    const names: string[] = []
    const seen = new Set<string>()
    for (const { name, user } of await pending) {
      if (user !== undefined) {
        if (seen.has(user) || localUsers?.has(user) === true) continue
        seen.add(user)
      }
      names.push(name)
    }
    return names
  }

  /** Never a shared read: the answer must come after this node's own write of the change. */
  async remoteHasUser (room: string, user: string): Promise<boolean> {
    return (await this.readRemoteMembers(room)).some((entry) => entry.user === user)
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
    const heartbeat = this.command.eval(DELETE_IF_OURS, 1, nodeKey(this.options.nodeId), this.incarnation).catch(report)
    await Promise.all([...cleanup, heartbeat])
  }

  private async readRemoteMembers (room: string): Promise<RemoteEntry[]> {
    const key = roomKeys(room).members
    let all: Record<string, string>
    try {
      all = await this.command.hgetall(key)
    } catch (error) {
      // Without the list, the joiner sees this node's members only.
      this.reporter('reading the member list')(error)
      return []
    }
    const byNode = new Map<string, Array<{ incarnation: string, field: string, name: string }>>()
    for (const [field, name] of Object.entries(all)) {
      const { node, incarnation } = memberOwner(field)
      // This run's own members come from the hub; an earlier run's are checked like any other node's.
      if (node === this.options.nodeId && incarnation === this.incarnation) continue
      let list = byNode.get(node)
      if (!list) byNode.set(node, list = [])
      list.push({ incarnation, field, name })
    }
    if (byNode.size === 0) return []
    const nodes = [...byNode.keys()]
    const reportGet = this.reporter('reading a node heartbeat key')
    // When the read fails, the node counts as alive: better a ghost for a while than a member hidden.
    const live = await Promise.all(nodes.map((node) => this.command.get(nodeKey(node)).catch((error: unknown) => {
      reportGet(error)
      return ANY_INCARNATION
    })))
    const names: RemoteEntry[] = []
    const dead: string[] = []
    nodes.forEach((node, i) => {
      for (const { incarnation, field, name } of byNode.get(node) ?? []) {
        if (live[i] === ANY_INCARNATION || live[i] === incarnation) names.push({ name, user: memberUser(field) })
        else dead.push(field)
      }
    })
    // Members of a node whose heartbeat key expired, or of an earlier run of it, are gone; tidy them up.
    if (dead.length > 0) this.command.hdel(key, ...dead).catch(this.reporter('removing members of a dead node'))
    return names
  }

  /** The command connection came back: make this node's presence true again. */
  private onCommandReady (): void {
    if (this.closed) return
    this.refreshNode().catch(this.reporter('refreshing the node heartbeat key'))
    for (const [room, members] of this.localMembers) {
      if (members.size === 0) continue
      const key = roomKeys(room).members
      this.command.hset(key, Object.fromEntries(members))
        .then(() => this.command.pexpire(key, this.options.presenceTtlMs))
        .catch(this.reporter('re-adding members'))
    }
    for (const stale of this.staleFields) {
      const [room, field] = stale.split('\n') as [string, string]
      this.command.hdel(roomKeys(room).members, field).then(() => this.staleFields.delete(stale), this.reporter('removing a member'))
    }
  }

  private refreshNode (): Promise<unknown> {
    return this.command.set(nodeKey(this.options.nodeId), this.incarnation, 'PX', this.options.presenceTtlMs)
  }

  /**
   * Keeps alive the member hashes this node has members in (one PEXPIRE per
   * such room, REFRESH_PER_TTL times per TTL); a hash that expired meanwhile
   * (Redis was away longer than the TTL) gets this node's members back.
   */
  private refreshRooms (): void {
    const report = this.reporter('refreshing a member list\'s expiry')
    for (const [room, members] of this.localMembers) {
      const key = roomKeys(room).members
      this.command.pexpire(key, this.options.presenceTtlMs).then((refreshed) => {
        if (refreshed === 1 || this.closed || this.localMembers.get(room) !== members || members.size === 0) return
        return this.command.hset(key, Object.fromEntries(members)).then(() => this.command.pexpire(key, this.options.presenceTtlMs))
      }).catch(report)
    }
  }

  private memberField (member: PresenceMember): string {
    return `${this.options.nodeId}/${this.incarnation}.${member.id}`
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
