// How much traffic one scenario run sends: small and quick for CI (`--short`),
// larger for the published table. Every run is bounded by these counts and
// by the timeouts in runner.ts.
export interface Plan {
  /** Rooms, each with one publisher. */
  rooms: number
  /** Members per node; each joins every room. */
  membersPerNode: number
  /** Messages each publisher sends (at most one history page, so the log can be read back whole). */
  messagesPerRoom: number
  /** Messages a second per publisher. */
  ratePerRoom: number
  /** How many times a one-shot fault is injected during the traffic. */
  faultRounds: number
}

export const PLANS: Record<'short' | 'full', Plan> = {
  short: { rooms: 2, membersPerNode: 1, messagesPerRoom: 100, ratePerRoom: 50, faultRounds: 1 },
  full: { rooms: 3, membersPerNode: 2, messagesPerRoom: 600, ratePerRoom: 80, faultRounds: 2 }
}
