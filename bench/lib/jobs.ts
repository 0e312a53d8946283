// What bench/run.ts asks of the load generator (over IPC) and what it gets
// back. Plain data only: it crosses a process boundary.

/** Fan-out under load: subscribers in rooms, one publisher per room, rate steps. */
export interface FanoutJob {
  kind: 'fanout'
  /** ws:// URLs of the server nodes; subscriber i of a room goes to urls[i % urls.length]. */
  urls: string[]
  /** Index in `urls` of the node every publisher connects to. */
  publisherNode: number
  roomPrefix: string
  rooms: number
  subscribersPerRoom: number
  /** The same subscribers in every room (a client in many busy rooms), rather than their own subscribers per room. */
  subscribersInEveryRoom: boolean
  /** Total messages per second over all rooms, one step after the other. */
  steps: number[]
  warmupMs: number
  measureMs: number
  /** Longest wait after the last send for the last deliveries (it ends sooner once they stop coming). */
  drainMs: number
  /** Pause between steps, so one step's tail does not fall into the next. */
  pauseMs: number
  /** Processes whose CPU time is the server's (summed). */
  serverPids: number[]
  /** Other processes reported separately (e.g. redis). */
  extraPids: Record<string, number>
  /** Cores the servers and the generator are pinned to, to see what else ran there. */
  cores: PinnedCores
  clkTck: number
}

export interface PinnedCores {
  server: number | undefined
  generator: number | undefined
}

/** Memory per idle connection: RSS of the server before and after. */
export interface MemoryJob {
  kind: 'memory'
  urls: string[]
  roomPrefix: string
  rooms: number
  connections: number
  /** Wait after the last join before reading RSS. */
  settleMs: number
  serverPid: number
}

/** Join storm: many connected clients join one room at once. */
export interface JoinStormJob {
  kind: 'join-storm'
  urls: string[]
  room: string
  clients: number
  timeoutMs: number
  serverPids: number[]
  clkTck: number
}

export type Job = FanoutJob | MemoryJob | JoinStormJob

export interface LatencySummary {
  p50: number
  p99: number
  max: number
  samples: number
}

export interface StepResult {
  /** Offered messages per second (all rooms). */
  rate: number
  /** Messages sent in the whole step (warm-up and measured window). */
  sent: number
  /** Messages every member should have received: sent × members of the room, summed. */
  expected: number
  offeredDeliveriesPerSec: number
  deliveriesPerSec: number
  /** Send time in the payload to receipt, for messages sent inside the measured window. */
  latencyMs: LatencySummary
  /** Expected deliveries that had not arrived when the drain ended. */
  lost: number
  /** How long the step waited after its last send for the last deliveries. */
  drainMs: number
  duplicated: number
  reordered: number
  /** Messages of another step, or with a sequence never sent. */
  stray: number
  serverCpuUsPerDelivery: number
  /** The user-time part of it: the server's own code, where product and baseline differ (the kernel's TCP work is the same). */
  serverUserUsPerDelivery: number
  /**
   * Write system calls of the server per delivery: 1 when every frame leaves
   * in its own call, less when a backlog lets writes coalesce. CPU per
   * delivery falls a lot with it, so compare it before comparing CPU.
   */
  serverWritesPerDelivery: number
  /** Percent of one core, summed over the server processes. */
  serverCpuPct: number
  extraCpuPct: Record<string, number>
  generatorCpuPct: number
  generatorLoopDelayP99Ms: number
  /** Largest delay between when a message was due and when it was sent. */
  sendLagMaxMs: number
  /** CPU of other processes on the server's core (percent of it); NaN when not pinned. */
  serverCoreOtherPct: number
  /** CPU of other processes on the generator's core. */
  generatorCoreOtherPct: number
  /** Hypervisor steal on the server's core. */
  serverCoreStealPct: number
  errorFrames: number
  unexpectedCloses: number
  /** The generator used nearly a whole core: it may be what limited the figures. */
  generatorCpuBound: boolean
  /** The generator sent late or its event loop stalled (it was busy, or descheduled by other work). */
  generatorLagged: boolean
  serverSaturated: boolean
  /** Other processes took a noticeable share of the pinned cores. */
  hostBusy: boolean
  notes: string[]
}

export interface FanoutResult {
  kind: 'fanout'
  connections: number
  connectMs: number
  joinMs: number
  steps: StepResult[]
  /** About the connect and join phase (e.g. joins refused and retried). */
  notes: string[]
}

export interface MemoryResult {
  kind: 'memory'
  connections: number
  rssBeforeKb: number
  rssAfterKb: number
  bytesPerConnection: number
  connectMs: number
  notes: string[]
}

export interface JoinStormResult {
  kind: 'join-storm'
  clients: number
  /** First join sent to last `joined` received. */
  joinStormMs: number
  joinLatencyP50Ms: number
  serverCpuMs: number
  /** Bytes of all frames received from the first join to the last `joined`. */
  bytesReceived: number
  generatorCpuPct: number
  notes: string[]
}

export type JobResult = FanoutResult | MemoryResult | JoinStormResult

export type GeneratorReply =
  | { ready: true }
  | { id: number, ok: true, result: JobResult }
  | { id: number, ok: false, error: string }

export interface GeneratorRequest {
  id: number
  job: Job
}
