// What every client saw, counted against the room's log. Pure: the traffic
// modules record, this file judges.
//
// The log of a room is what its history holds after the run, in its order,
// plus any acknowledged id the history lacks (those are the worst finding).
// Per member and room: `lost` = ids of the log never received; `duplicated`
// = receipts of an id already received; `reordered` = receipts of a logged
// id that comes before one received earlier; `phantom` = receipts of an id
// that is neither logged nor acknowledged. A message is identified by its id
// and the label its text starts with (clients.ts messageKey), so a reused id
// shows as a phantom and a loss.

export interface SenderRecord {
  room: string
  sent: number
  /** Messages acknowledged (`ack`), in the order the acks came. */
  acked: string[]
  /** `unavailable` answers: nothing was published. */
  refused: number
  /** `timeout` answers, or no answer at all: may or may not have been published. */
  unknown: number
}

export interface ReceiverRecord {
  member: string
  /** Messages received per room, in arrival order, across reconnects. */
  received: Map<string, string[]>
}

export interface Counts {
  sent: number
  acked: number
  refused: number
  unknown: number
  lost: number
  duplicated: number
  reordered: number
  ackedThenMissing: number
  phantom: number
}

export function emptyCounts (): Counts {
  return { sent: 0, acked: 0, refused: 0, unknown: 0, lost: 0, duplicated: 0, reordered: 0, ackedThenMissing: 0, phantom: 0 }
}

/** Counts one run: `history` is each room's stored ids, oldest first, read after the traffic settled. */
export function tally (senders: SenderRecord[], receivers: ReceiverRecord[], history: Map<string, string[]>): Counts {
  const counts = emptyCounts()
  const ackedByRoom = new Map<string, Set<string>>()
  for (const sender of senders) {
    counts.sent += sender.sent
    counts.acked += sender.acked.length
    counts.refused += sender.refused
    counts.unknown += sender.unknown
    const acked = ackedByRoom.get(sender.room) ?? new Set<string>()
    for (const id of sender.acked) acked.add(id)
    ackedByRoom.set(sender.room, acked)
  }
  for (const [room, acked] of ackedByRoom) {
    const stored = new Set(history.get(room) ?? [])
    for (const id of acked) if (!stored.has(id)) counts.ackedThenMissing++
  }
  for (const [room, acked] of ackedByRoom) {
    const stored = history.get(room) ?? []
    const position = new Map(stored.map((id, index) => [id, index]))
    const log = new Set([...stored, ...acked])
    for (const receiver of receivers) {
      const got = receiver.received.get(room) ?? []
      const seen = new Set<string>()
      let latest = -1
      for (const id of got) {
        if (seen.has(id)) {
          counts.duplicated++
          continue
        }
        seen.add(id)
        if (!log.has(id)) counts.phantom++
        const at = position.get(id)
        if (at === undefined) continue
        if (at < latest) counts.reordered++
        else latest = at
      }
      for (const id of log) {
        if (seen.has(id)) continue
        counts.lost++
        if (acked.has(id)) counts.ackedThenMissing++
      }
    }
  }
  return counts
}

export function addCounts (total: Counts, more: Counts): Counts {
  const sum = emptyCounts()
  for (const key of Object.keys(sum) as Array<keyof Counts>) sum[key] = total[key] + more[key]
  return sum
}
