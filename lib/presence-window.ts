// One room's presence window: gathers the joins and leaves of
// PRESENCE_BATCH_MS and sends their net change as one `presence` frame.
import { encodePresence } from './frames.js'
import { systemTimer, type Timer, type TimerHandle } from './timer.js'
import { textFrame } from './ws-frame.js'

/** A member as the window sees it: a name to report and a socket to tell. */
export interface PresenceMember {
  readonly name: string
  write (frame: Buffer): void
}

export interface PresenceWindowOptions<M extends PresenceMember> {
  room: string
  /** PRESENCE_BATCH_MS: how long changes are gathered; 0 sends each one at once. */
  batchMs: number
  /** The members told of each window's change (the room's live members), read at every flush. */
  audience: Iterable<M>
  /** Told of each non-empty net change before the audience is (the hub tells the other nodes). */
  onChange: (joined: string[], left: string[]) => void
  timer?: Timer
}

interface Change<M> {
  member: M
  delta: 1 | -1
}

export class PresenceWindow<M extends PresenceMember> {
  private readonly timer: Timer
  /** The changes of the current window, in order. */
  private pending: Array<Change<M>> = []
  /** Changes of earlier windows; with `pending`, it numbers every change of the room. */
  private changesBefore = 0
  /** Members that went live inside this window, with the number of changes their `joined` list reflected. */
  private readonly liveSince = new Map<M, number>()
  private handle: TimerHandle | undefined
  private closed = false

  constructor (private readonly options: PresenceWindowOptions<M>) {
    this.timer = options.timer ?? systemTimer
  }

  joined (member: M): void {
    this.queue(member, 1)
  }

  left (member: M): void {
    // Its mark, if any, is left in place: a member back in the same window
    // gets a new one from `wentLive`, and one that is not is not in the audience.
    this.queue(member, -1)
  }

  /**
   * `member` just got its `joined` list, which already reflects every change
   * so far (its own join included): it will be told only of later ones.
   */
  wentLive (member: M): void {
    if (this.pending.length > 0) this.liveSince.set(member, this.changesBefore + this.pending.length)
  }

  /**
   * Sends the window's net change now: to `onChange` and, as one shared
   * frame, to the audience. A member that went live inside the window gets
   * the net change of what came after its `joined` list, or nothing.
   */
  flush (): void {
    if (this.handle !== undefined) {
      this.timer.clear(this.handle)
      this.handle = undefined
    }
    const pending = this.pending
    if (pending.length === 0) return
    this.pending = []
    const shared = netChange(pending, 0)
    if (shared !== undefined) {
      const { room, onChange, audience } = this.options
      onChange(shared.joined, shared.left)
      let sharedFrame: Buffer | undefined
      // Members live since the same change get the same frame (null: nothing to tell).
      const laterFrames = new Map<number, Buffer | null>()
      for (const member of audience) {
        const mark = this.liveSince.get(member)
        let frame: Buffer | null | undefined
        if (mark === undefined) {
          frame = sharedFrame ??= textFrame(encodePresence(room, shared.joined, shared.left))
        } else {
          frame = laterFrames.get(mark)
          if (frame === undefined) {
            const later = netChange(pending, mark - this.changesBefore)
            frame = later === undefined ? null : textFrame(encodePresence(room, later.joined, later.left))
            laterFrames.set(mark, frame)
          }
        }
        if (frame !== null) member.write(frame)
      }
    }
    this.changesBefore += pending.length
    this.liveSince.clear()
  }

  /** Cancels the pending timer and starts no other; an explicit `flush`, or a window of 0, still sends. */
  close (): void {
    this.closed = true
    if (this.handle !== undefined) {
      this.timer.clear(this.handle)
      this.handle = undefined
    }
  }

  private queue (member: M, delta: 1 | -1): void {
    this.pending.push({ member, delta })
    if (this.options.batchMs === 0) {
      this.flush()
    } else if (this.handle === undefined && !this.closed) {
      this.handle = this.timer.set(() => {
        this.handle = undefined
        this.flush()
      }, this.options.batchMs)
    }
  }
}

/** Net change of `changes[from..]`, undefined when nothing is left: a join and a leave of one member cancel out. */
function netChange<M extends PresenceMember> (changes: Array<Change<M>>, from: number): { joined: string[], left: string[] } | undefined {
  const net = new Map<M, number>()
  for (let i = from; i < changes.length; i++) {
    const change = changes[i] as Change<M>
    net.set(change.member, (net.get(change.member) ?? 0) + change.delta)
  }
  const joined: string[] = []
  const left: string[] = []
  for (const [member, delta] of net) {
    if (delta > 0) joined.push(member.name)
    else if (delta < 0) left.push(member.name)
  }
  return joined.length > 0 || left.length > 0 ? { joined, left } : undefined
}
