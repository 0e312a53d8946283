// The hub alone owns rooms and their members, and fans messages out to them.
// Its methods are synchronous: membership changes happen at once, and only
// the reply to a join (members and history, which the broker may have to fetch)
// completes later, written at the pace the member's socket drains. Each room's
// presence window batches its joins and leaves.
import { RoomUsers } from './auth/room-users.js'
import { BrokerUnavailableError, type Broker, type EphemeralChannel, type PublishOptions, type PublishReceipt } from './broker.js'
import { CloseCode } from './close-codes.js'
import {
  encodeJoined, encodeMessage, encodePresence, encodeSignal,
  type ErrorCode, type StoredMessage
} from './frames.js'
import { CATCH_UP_BUFFER_MAX } from './limits.js'
import { defaultPolicies, policyFor, type Policies, type Policy } from './policy.js'
import { PresenceWindow } from './presence-window.js'
import type { Presence } from './presence.js'
import { parseSignalPayload, SIGNAL_TOPIC, signalPayload } from './signals.js'
import type { Stats } from './stats.js'
import type { Timer } from './timer.js'
import { textFrame } from './ws-frame.js'

/** A connection as the hub sees it. */
export interface Member {
  readonly id: string
  readonly name: string
  /** The user id from a verified token; undefined for a guest. */
  readonly user?: string | undefined
  /** Writes a complete WebSocket frame (`textFrame`); one buffer is shared by every member. */
  write (frame: Buffer): void
  /** Writes a frame of a join's reply (history), not counted as backlog; false: wait for `drained()` first. */
  replay (frame: Buffer): boolean
  /** Resolves true once the member's socket has taken what is queued; false if it closed (or stopped reading) first. */
  drained (): Promise<boolean>
  /** Sends an `error` frame (and counts it): the one way a refusal reaches a client. */
  error (code: ErrorCode, message: string, ref?: string): void
  /** Closes the connection (used when it cannot keep up). */
  close (code: CloseCode, reason: string): void
}

export interface HubOptions {
  broker: Broker
  presence: Presence
  stats: Stats
  historyOnJoin: number
  historySize: number
  /** Room policies (NAMESPACES_FILE): per-room history and presence; the default policy for every room when absent. */
  policies?: Policies
  presenceBatchMs: number
  maxRoomsPerConnection: number
  /** The other nodes serving a room, for signals (the broker's unsequenced path); absent on a single node. */
  ephemeral?: EphemeralChannel | undefined
  /** Drives the presence windows; the global setTimeout (unref'd) by default. */
  timer?: Timer
  /** Told of an unexpected error the hub recovered from (a join's read that failed other than by the broker being away). */
  onError?: (error: unknown, context: string) => void
}

interface Room {
  readonly name: string
  /** Its namespace's policy, looked up once per room. */
  readonly policy: Policy
  /** Members that receive live messages. */
  readonly live: Set<Member>
  /** Members whose join history is being read or replayed; live messages wait in their buffer. */
  readonly catchingUp: Map<Member, CatchUp>
  /** Batches the room's joins and leaves; tells the live members and the other nodes. */
  readonly presenceWindow: PresenceWindow<Member>
  /** Presence counts a user once, however many of its connections are here. */
  readonly users: RoomUsers<Member>
}

/** What presence records for a user with connections in a room: its id, and its first connection's name. */
function userPresence (member: Member): Member {
  return {
    id: `user:${member.user ?? ''}`,
    name: member.name,
    user: member.user,
    // Never written to: it only stands for the user in the presence records.
    write () {},
    replay: () => true,
    drained: () => Promise.resolve(true),
    error () {},
    close () {}
  }
}

/** A joining member's live messages, held until its history has been written. */
interface CatchUp {
  /** Not yet written, in room order; at most CATCH_UP_BUFFER_MAX. */
  pending: StoredMessage[]
}

export type JoinOutcome = 'joined' | 'too_many_rooms'

/**
 * The message's WebSocket frame. Live delivery builds it once per message
 * and writes the same buffer to every member; a replay builds it again. (A
 * cache keyed by message, a WeakMap, cost more in lookups and garbage
 * collection on every live message than the rebuilds it saved on joins.)
 */
function frameOf (message: StoredMessage): Buffer {
  return textFrame(encodeMessage(message))
}

export class Hub {
  private readonly rooms = new Map<string, Room>()
  private readonly memberships = new Map<Member, Set<Room>>()
  private readonly broker: Broker
  private readonly presence: Presence
  private readonly stats: Stats
  /** The room policies the hub applies (history, presence) and connections decide with (join, send, signal). */
  readonly policies: Policies
  private closed = false

  constructor (private readonly options: HubOptions) {
    this.broker = options.broker
    this.presence = options.presence
    this.stats = options.stats
    this.policies = options.policies ?? defaultPolicies(options)
  }

  /** Connects the hub to its broker and presence; call once before use. */
  async start (): Promise<void> {
    this.options.ephemeral?.onEphemeral(SIGNAL_TOPIC, (room, payload) => this.deliverRemoteSignal(room, payload))
    await this.broker.start((message) => this.deliver(message))
    await this.presence.start((room, joined, left) => this.deliverRemotePresence(room, joined, left))
  }

  get roomCount (): number {
    return this.rooms.size
  }

  get maxRoomsPerConnection (): number {
    return this.options.maxRoomsPerConnection
  }

  /** The rooms `member` is in (joined or still catching up). */
  roomsOf (member: Member): string[] {
    return [...this.memberships.get(member) ?? []].map((room) => room.name)
  }

  isJoined (member: Member, room: string): boolean {
    const target = this.rooms.get(room)
    return target !== undefined && this.memberships.get(member)?.has(target) === true
  }

  /**
   * Adds `member` to `room` now; `joined` and the history follow once read.
   * Joining a room again restarts it: the client gets `joined` and the history
   * it asked for, exactly as on a first join.
   */
  join (member: Member, room: string, since?: string, ref?: string): JoinOutcome {
    let rooms = this.memberships.get(member)
    const existing = this.rooms.get(room)
    if (existing && rooms?.has(existing)) {
      this.removeMember(member, existing)
      rooms = this.memberships.get(member)
    }
    if (rooms && rooms.size >= this.options.maxRoomsPerConnection) return 'too_many_rooms'
    if (!rooms) {
      rooms = new Set()
      this.memberships.set(member, rooms)
    }
    const target = this.roomFor(room)
    rooms.add(target)
    const catchUp: CatchUp = { pending: [] }
    target.catchingUp.set(member, catchUp)
    const { policy } = target
    const present = target.users.joined(member)
    // A presence-off room records its members (GET /rooms/:id/members) but announces nobody.
    if (present !== undefined && !policy.presence) {
      this.presence.memberJoined(room, present)
    } else if (present !== undefined) {
      // The check is sent before the write: of two nodes joining a user at
      // once, at least one sees the other absent and announces the join.
      const elsewhere = this.userElsewhere(room, present)
      this.presence.memberJoined(room, present)
      this.announce(target, present, 1, elsewhere)
    }

    const stored = since === undefined
      ? this.broker.read(room, { limit: policy.historyOnJoin })
      : this.broker.read(room, { since, limit: policy.historySize, fallbackLimit: policy.historyOnJoin })
    // A room that keeps nothing has nothing a resume can recover (PROTOCOL §8). It is still read (with limits of 0):
    // in cluster mode the read waits for the room's subscription, so `joined` comes once live messages flow.
    const read = policy.historySize === 0 ? stored.then(() => ({ messages: [], recovered: since === undefined })) : stored
    const remoteMembers = policy.presence ? this.presence.remoteMembers(room, target.users) : Promise.resolve([])
    Promise.all([read, remoteMembers]).then(([history, remote]) => {
      // The member left (or re-joined) while the history was being read.
      if (target.catchingUp.get(member) !== catchUp) return
      const members = policy.presence ? [...this.localNames(target), ...remote] : []
      return this.replay(member, target, catchUp, textFrame(encodeJoined(room, members, history.recovered)), history.messages)
    }).catch((error: unknown) => {
      const expected = error instanceof BrokerUnavailableError
      if (!expected) this.options.onError?.(error, `reading the history and members of room "${room}" for a join`)
      if (target.catchingUp.get(member) !== catchUp) return
      this.removeMember(member, target)
      const reason = expected ? error.message : 'could not read the room history'
      member.error('unavailable', `could not join "${room}": ${reason}`, ref)
    })
    return 'joined'
  }

  /**
   * Writes `joined`, the history, then the live messages that arrived
   * meanwhile (each once: by seq), at the pace the member's socket drains;
   * then the member goes live. Stops if the member leaves, re-joins or closes.
   */
  private async replay (member: Member, room: Room, catchUp: CatchUp, joined: Buffer, history: StoredMessage[]): Promise<void> {
    const current = () => room.catchingUp.get(member) === catchUp
    if (!member.replay(joined) && !(await member.drained() && current())) return
    let last = 0
    let replayed = 0
    for (const message of history) {
      last = message.seq
      replayed++
      if (!member.replay(frameOf(message)) && !(await member.drained() && current())) return
    }
    while (catchUp.pending.length > 0) {
      const pending = catchUp.pending
      catchUp.pending = []
      for (const message of pending) {
        if (message.seq <= last) continue
        last = message.seq
        replayed++
        if (!member.replay(frameOf(message)) && !(await member.drained() && current())) return
      }
    }
    this.stats.messagesOut += replayed
    room.catchingUp.delete(member)
    room.live.add(member)
    room.presenceWindow.wentLive(member)
  }

  /** Removes `member` from `room`; false when it was not in it. */
  leave (member: Member, room: string): boolean {
    const target = this.rooms.get(room)
    if (!target || this.memberships.get(member)?.has(target) !== true) return false
    this.removeMember(member, target)
    return true
  }

  /** Removes a closed connection from every room. */
  disconnect (member: Member): void {
    const rooms = this.memberships.get(member)
    if (!rooms) return
    for (const room of rooms) this.removeMember(member, room)
    this.memberships.delete(member)
  }

  /**
   * Stores and publishes a message; it reaches the members through `deliver`.
   * From a member (`from` is its name; the caller checked it joined) or from
   * the HTTP API (no membership needed; maybe with an Idempotency-Key, see Broker.publish).
   */
  publish (room: string, from: string, text: string, options?: PublishOptions): Promise<PublishReceipt> {
    this.stats.messagesIn++
    return this.broker.publish(room, from, text, options)
  }

  /**
   * Relays a member's signal (the caller checked it joined): to the room's
   * other live members here, then to the other nodes serving the room. Never
   * stored, no sequence, at most once: it takes no part in message order.
   */
  signal (sender: Member, room: string, event: string): void {
    const target = this.rooms.get(room)
    // Only a member signals; the connection checked, and a room without members here has none.
    if (target === undefined) return
    this.stats.signalsIn++
    this.writeSignal(target, textFrame(encodeSignal(room, event, sender.name, sender.user)), sender)
    this.options.ephemeral?.publishEphemeral(room, SIGNAL_TOPIC, signalPayload(event, sender.name, sender.user))
  }

  /** Stops the presence timers; a window still flushes when its room empties. */
  close (): void {
    this.closed = true
    for (const room of this.rooms.values()) room.presenceWindow.close()
  }

  /** Fan-out: one buffer, written to every live member; joiners get it after their history. */
  private deliver (message: StoredMessage): void {
    const room = this.rooms.get(message.room)
    if (!room) return
    if (room.catchingUp.size > 0) {
      for (const [member, catchUp] of room.catchingUp) {
        if (catchUp.pending.length >= CATCH_UP_BUFFER_MAX) {
          member.close(CloseCode.TRY_AGAIN_LATER, 'too many messages arrived while the history was read')
          continue
        }
        catchUp.pending.push(message)
      }
    }
    if (room.live.size === 0) return
    const frame = frameOf(message)
    for (const member of room.live) member.write(frame)
    this.stats.messagesOut += room.live.size
  }

  /** Another node's signal: checked before it reaches anyone (the channel carries whatever was published on it). */
  private deliverRemoteSignal (roomName: string, payload: unknown): void {
    const room = this.rooms.get(roomName)
    if (room === undefined) return
    const signal = parseSignalPayload(payload)
    if (signal === undefined) {
      this.options.onError?.(new Error('a malformed signal arrived from another node; dropped'), `room "${roomName}"`)
      return
    }
    this.writeSignal(room, textFrame(encodeSignal(roomName, signal.event, signal.from, signal.user)))
  }

  /** One buffer for every live member but the sender; members still reading their history get none (at most once). */
  private writeSignal (room: Room, frame: Buffer, sender?: Member): void {
    let written = 0
    for (const member of room.live) {
      if (member === sender) continue
      member.write(frame)
      written++
    }
    this.stats.signalsOut += written
  }

  private deliverRemotePresence (roomName: string, joined: string[], left: string[]): void {
    const room = this.rooms.get(roomName)
    if (!room || room.live.size === 0 || !room.policy.presence) return
    const frame = textFrame(encodePresence(roomName, joined, left))
    for (const member of room.live) member.write(frame)
  }

  private roomFor (name: string): Room {
    let room = this.rooms.get(name)
    if (!room) {
      const live = new Set<Member>()
      const presenceWindow = new PresenceWindow<Member>({
        room: name,
        batchMs: this.options.presenceBatchMs,
        audience: live,
        onChange: (joined, left) => this.presence.publishPresence(name, joined, left),
        timer: this.options.timer
      })
      if (this.closed) presenceWindow.close()
      room = { name, policy: policyFor(this.policies, name), live, catchingUp: new Map(), presenceWindow, users: new RoomUsers(userPresence) }
      this.rooms.set(name, room)
      this.broker.subscribe(name)
    }
    return room
  }

  private removeMember (member: Member, room: Room): void {
    room.live.delete(member)
    room.catchingUp.delete(member)
    this.memberships.get(member)?.delete(room)
    const absent = room.users.left(member)
    if (absent !== undefined && !room.policy.presence) {
      this.presence.memberLeft(room.name, absent)
    } else if (absent !== undefined) {
      this.presence.memberLeft(room.name, absent)
      // Sent after the removal: of two nodes dropping a user's last connections at once, at least one announces it.
      this.announce(room, absent, -1, this.userElsewhere(room.name, absent))
    }
    if (room.live.size === 0 && room.catchingUp.size === 0) {
      // Other nodes still need this node's last changes.
      room.presenceWindow.flush()
      this.rooms.delete(room.name)
      this.broker.unsubscribe(room.name)
    }
  }

  /**
   * Whether another node has a connection of this user in the room (then its
   * join or leave here changes nothing for the room: PROTOCOL §3). Undefined
   * for a guest or on a single node; false when Redis cannot tell.
   */
  private userElsewhere (room: string, present: Member): Promise<boolean> | undefined {
    const { user } = present
    if (user === undefined || this.presence.remoteHasUser === undefined) return undefined
    return this.presence.remoteHasUser(room, user).catch(() => false)
  }

  /** Adds a join (1) or leave (-1) to the room's window, unless another node keeps the user in the room. */
  private announce (room: Room, present: Member, delta: 1 | -1, elsewhere: Promise<boolean> | undefined): void {
    const record = (): void => {
      if (delta === 1) room.presenceWindow.joined(present)
      else room.presenceWindow.left(present)
    }
    if (elsewhere === undefined) {
      record()
      return
    }
    elsewhere.then((there) => {
      if (there) return
      record()
      // The room emptied here meanwhile: its window is no longer flushed by anyone else.
      if (this.rooms.get(room.name) !== room) room.presenceWindow.flush()
    }, () => {})
  }

  /** This node's members of the room: one name per user, one per guest connection. */
  private localNames (room: Room): Iterable<string> {
    return room.users.names(this.membersOf(room))
  }

  private * membersOf (room: Room): Iterable<Member> {
    yield * room.live
    yield * room.catchingUp.keys()
  }
}
