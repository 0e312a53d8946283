// The hub alone owns rooms and their members. Its methods are synchronous:
// membership changes happen at once, and only the reply to a join (members
// and history, which the broker may have to fetch) completes later.
import { BrokerUnavailableError, type Broker } from './broker.js'
import { CloseCode } from './close-codes.js'
import {
  encodeError, encodeJoined, encodeMessage, encodePresence,
  type StoredMessage
} from './frames.js'
import { CATCH_UP_BUFFER_MAX } from './limits.js'
import type { Presence } from './presence.js'
import type { Stats } from './stats.js'
import { textFrame } from './ws-frame.js'

/** A connection as the hub sees it. */
export interface Member {
  readonly id: string
  readonly name: string
  /** Writes a complete WebSocket frame (`textFrame`); one buffer is shared by every member. */
  write (frame: Buffer): void
  /** Closes the connection (used when it cannot keep up). */
  close (code: number, reason: string): void
}

export interface HubOptions {
  broker: Broker
  presence: Presence
  stats: Stats
  historyOnJoin: number
  historySize: number
  presenceBatchMs: number
  maxRoomsPerConnection: number
}

interface PresenceChange {
  member: Member
  delta: 1 | -1
}

interface Room {
  readonly name: string
  /** Members that receive live messages. */
  readonly live: Set<Member>
  /** Members whose join history is being read; live messages wait in their buffer. */
  readonly catchingUp: Map<Member, StoredMessage[]>
  /** Presence changes of the current window. */
  pending: PresenceChange[]
  /** Changes sent in earlier windows; with `pending` it numbers every change. */
  changesBefore: number
  /** Members that went live during this window, with the change count their `joined` list reflected. */
  readonly joinedInWindow: Map<Member, number>
  presenceTimer: NodeJS.Timeout | undefined
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
  private closed = false

  constructor (private readonly options: HubOptions) {
    this.broker = options.broker
    this.presence = options.presence
    this.stats = options.stats
  }

  /** Connects the hub to its broker and presence; call once before use. */
  async start (): Promise<void> {
    await this.broker.start((message) => this.deliver(message))
    await this.presence.start((room, joined, left) => this.deliverRemotePresence(room, joined, left))
  }

  get roomCount (): number {
    return this.rooms.size
  }

  get maxRoomsPerConnection (): number {
    return this.options.maxRoomsPerConnection
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
    const buffer: StoredMessage[] = []
    target.catchingUp.set(member, buffer)
    this.presence.memberJoined(room, member)
    this.queuePresence(target, member, 1)

    const read = since === undefined
      ? this.broker.read(room, { limit: this.options.historyOnJoin })
      : this.broker.read(room, { since, limit: this.options.historySize, fallbackLimit: this.options.historyOnJoin })
    Promise.all([read, this.presence.remoteMembers(room)]).then(([history, remote]) => {
      // The member left (or re-joined) while the history was being read.
      if (target.catchingUp.get(member) !== buffer) return
      const members = [...this.localNames(target), ...remote]
      member.write(textFrame(encodeJoined(room, members, history.recovered)))
      let last = 0
      for (const message of history.messages) {
        member.write(frameOf(message))
        last = message.seq
      }
      let replayed = history.messages.length
      for (const message of buffer) {
        if (message.seq > last) {
          member.write(frameOf(message))
          replayed++
        }
      }
      this.stats.messagesOut += replayed
      target.catchingUp.delete(member)
      target.live.add(member)
      if (target.pending.length > 0) target.joinedInWindow.set(member, target.changesBefore + target.pending.length)
    }, (error: unknown) => {
      if (target.catchingUp.get(member) !== buffer) return
      this.removeMember(member, target)
      const reason = error instanceof BrokerUnavailableError ? error.message : 'could not read the room history'
      this.stats.errors.unavailable++
      member.write(textFrame(encodeError('unavailable', `could not join "${room}": ${reason}`, ref)))
    })
    return 'joined'
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

  /** Stores and publishes a message from a member; the caller checked it joined. */
  publish (member: Member, room: string, text: string): Promise<StoredMessage> {
    this.stats.messagesIn++
    return this.broker.publish(room, member.name, text)
  }

  /** Stores and publishes a message from the HTTP API; no membership needed. */
  broadcast (room: string, from: string, text: string): Promise<StoredMessage> {
    this.stats.messagesIn++
    return this.broker.publish(room, from, text)
  }

  close (): void {
    this.closed = true
    for (const room of this.rooms.values()) clearTimeout(room.presenceTimer)
  }

  /** Fan-out: one buffer, written to every live member; joiners get it after their history. */
  private deliver (message: StoredMessage): void {
    const room = this.rooms.get(message.room)
    if (!room) return
    if (room.catchingUp.size > 0) {
      for (const [member, buffer] of room.catchingUp) {
        if (buffer.length >= CATCH_UP_BUFFER_MAX) {
          member.close(CloseCode.TRY_AGAIN_LATER, 'too many messages arrived while the history was read')
          continue
        }
        buffer.push(message)
      }
    }
    if (room.live.size === 0) return
    const frame = frameOf(message)
    for (const member of room.live) member.write(frame)
    this.stats.messagesOut += room.live.size
  }

  private deliverRemotePresence (roomName: string, joined: string[], left: string[]): void {
    const room = this.rooms.get(roomName)
    if (!room || room.live.size === 0) return
    const frame = textFrame(encodePresence(roomName, joined, left))
    for (const member of room.live) member.write(frame)
  }

  private roomFor (name: string): Room {
    let room = this.rooms.get(name)
    if (!room) {
      room = {
        name,
        live: new Set(),
        catchingUp: new Map(),
        pending: [],
        changesBefore: 0,
        joinedInWindow: new Map(),
        presenceTimer: undefined
      }
      this.rooms.set(name, room)
      this.broker.subscribe(name)
    }
    return room
  }

  private removeMember (member: Member, room: Room): void {
    room.live.delete(member)
    room.catchingUp.delete(member)
    room.joinedInWindow.delete(member)
    this.memberships.get(member)?.delete(room)
    this.presence.memberLeft(room.name, member)
    this.queuePresence(room, member, -1)
    if (room.live.size === 0 && room.catchingUp.size === 0) {
      // Other nodes still need this node's last changes.
      this.flushPresence(room)
      clearTimeout(room.presenceTimer)
      this.rooms.delete(room.name)
      this.broker.unsubscribe(room.name)
    }
  }

  private * localNames (room: Room): Iterable<string> {
    for (const member of room.live) yield member.name
    for (const member of room.catchingUp.keys()) yield member.name
  }

  private queuePresence (room: Room, member: Member, delta: 1 | -1): void {
    room.pending.push({ member, delta })
    if (this.options.presenceBatchMs === 0) {
      this.flushPresence(room)
    } else if (room.presenceTimer === undefined && !this.closed) {
      room.presenceTimer = setTimeout(() => this.flushPresence(room), this.options.presenceBatchMs)
      room.presenceTimer.unref()
    }
  }

  /**
   * Sends the window's net presence change. Members that went live inside the
   * window already saw part of it in their `joined` list (their own join
   * included), so they get only what came after.
   */
  private flushPresence (room: Room): void {
    clearTimeout(room.presenceTimer)
    room.presenceTimer = undefined
    const pending = room.pending
    if (pending.length === 0) return
    room.pending = []
    const shared = netPresence(pending, 0)
    if (shared.joined.length > 0 || shared.left.length > 0) {
      this.presence.publishPresence(room.name, shared.joined, shared.left)
      let sharedFrame: Buffer | undefined
      const suffixFrames = new Map<number, Buffer | null>()
      for (const member of room.live) {
        const mark = room.joinedInWindow.get(member)
        let frame: Buffer | null | undefined
        if (mark === undefined) {
          frame = sharedFrame ??= textFrame(encodePresence(room.name, shared.joined, shared.left))
        } else {
          frame = suffixFrames.get(mark)
          if (frame === undefined) {
            const change = netPresence(pending, mark - room.changesBefore)
            frame = change.joined.length > 0 || change.left.length > 0
              ? textFrame(encodePresence(room.name, change.joined, change.left))
              : null
            suffixFrames.set(mark, frame)
          }
        }
        if (frame) member.write(frame)
      }
    }
    room.changesBefore += pending.length
    room.joinedInWindow.clear()
  }
}

/** Net change of `changes[from..]`: a join and a leave of one connection cancel out. */
function netPresence (changes: PresenceChange[], from: number): { joined: string[], left: string[] } {
  const net = new Map<Member, number>()
  for (let i = from; i < changes.length; i++) {
    const change = changes[i] as PresenceChange
    net.set(change.member, (net.get(change.member) ?? 0) + change.delta)
  }
  const joined: string[] = []
  const left: string[] = []
  for (const [member, delta] of net) {
    if (delta > 0) joined.push(member.name)
    else if (delta < 0) left.push(member.name)
  }
  return { joined, left }
}
