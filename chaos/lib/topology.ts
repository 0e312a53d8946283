// A Redis topology as a pluggable fixture: how to start it, what environment
// a service node needs to use it, and which faults it can inject. A scenario
// runs on a topology only where the topology offers the faults it needs.
import type { Scope } from './scope.js'

export type TopologyName = 'single' | 'sentinel' | 'cluster'

export const TOPOLOGY_NAMES: readonly TopologyName[] = ['single', 'sentinel', 'cluster']

/** Faults a running topology can inject; a missing one does not apply to it. */
export interface Faults {
  /** `CLIENT KILL TYPE pubsub` on every server that carries pub/sub; returns how many connections were killed. */
  killPubsub?: () => Promise<number>
  /** Every Redis server killed (SIGKILL) and started again on the same port and data after `downMs`. */
  restart?: (downMs: number) => Promise<void>
  /** The subscription of node `nodeId` silenced (socket open, nothing passes); returns how many connections. Needs the node proxied. */
  freezeSubscription?: (nodeId: string) => number
  /** Replies on node `nodeId`'s command connection held back by `ms` (0: no longer); returns how many connections. Needs the node proxied. */
  delayCommands?: (nodeId: string, ms: number) => number
  /** Sentinel: the master killed and a replica promoted; returns what happened, for the report. */
  failover?: () => Promise<string>
  /** Cluster: the master that serves `room` killed and its replica promoted; returns what happened. */
  killMaster?: (room: string) => Promise<string>
  /** Cluster: the slot of `room` moved to another master while traffic flows; returns what happened. */
  reshard?: (room: string) => Promise<string>
}

export type FaultName = keyof Faults

export interface RunningTopology {
  /**
   * The environment a service node needs to reach this topology. With
   * `proxied`, the node reaches Redis through a TCP proxy of the topology's
   * own, so freezeSubscription / delayCommands can act on its connections.
   */
  nodeEnv: (nodeId: string, proxied: boolean) => Record<string, string>
  faults: Faults
}

export interface Topology {
  name: TopologyName
  /** One line for the report: what runs. */
  description: string
  /** The faults its running form offers (known before it starts, to pick the scenarios). */
  offers: FaultName[]
  /**
   * A room name near `base` that is cheap for `reshard` to move (Cluster: a
   * slot near the start of its master's range, as `redis-cli --cluster
   * reshard` moves a master's slots lowest first).
   */
  movableRoom?: (base: string) => string
  /** Why this topology cannot run on this machine or branch, or undefined when it can. */
  unavailable: () => string | undefined
  /** Starts the Redis side; everything it starts is stopped by `scope`. */
  start: (scope: Scope) => Promise<RunningTopology>
}
