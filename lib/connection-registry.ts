// The open connections of this node and everything done to all of them at
// once: one heartbeat timer, close-all, and the batched shutdown drain.
import { setTimeout as sleep } from 'node:timers/promises'
import { CloseCode } from './close-codes.js'

/** What the registry needs of a connection; `Connection` is one. */
export interface Tracked {
  /** Cleared by each heartbeat ping, set again by the pong. */
  alive: boolean
  readonly isClosing: boolean
  ping (): void
  close (code: number, reason: string): void
  terminate (): void
}

/** Time as the registry sees it: injected so the heartbeat and the drain are tested without real waits. */
export interface Clock {
  now (): number
  sleep (ms: number): Promise<void>
  /** Calls `tick` every `ms` until the returned function is called. */
  every (ms: number, tick: () => void): () => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  // Kept referenced: a drain in progress must hold the process open.
  sleep: (ms) => sleep(ms),
  every (ms, tick) {
    const timer = setInterval(tick, ms)
    // The heartbeat alone must not keep the process alive.
    timer.unref()
    return () => clearInterval(timer)
  }
}

/** The reason sent with every shutdown close. */
export const SHUTDOWN_REASON = 'server shutting down'

export interface ConnectionRegistryOptions {
  /** Heartbeat period: a connection that has not answered one ping by the next tick is terminated. */
  pingIntervalMs: number
  /** Shutdown closes connections over the first half of this, and cuts off the rest when it runs out. */
  shutdownGraceMs: number
  /** Length of one drain tick (closes are batched per tick). */
  drainTickMs: number
  /** Told of each heartbeat termination (for the metrics). */
  onHeartbeatTermination?: () => void
  clock?: Clock
}

/** How a drain spreads its closes: `perTick` connections every tick, for at most `ticks` ticks. */
export interface DrainPlan {
  connections: number
  ticks: number
  perTick: number
}

/** What a drain did: its plan, and how many connections were still there at the deadline. */
export interface DrainReport extends DrainPlan {
  terminated: number
}

/** Spreads `connections` closes over the first half of the grace period (PROTOCOL §5). */
export function drainPlan (connections: number, shutdownGraceMs: number, drainTickMs: number): DrainPlan {
  const ticks = Math.max(1, Math.floor(shutdownGraceMs / 2 / drainTickMs))
  return { connections, ticks, perTick: Math.max(1, Math.ceil(connections / ticks)) }
}

export class ConnectionRegistry<C extends Tracked = Tracked> implements Iterable<C> {
  private readonly connections = new Set<C>()
  private readonly clock: Clock
  private cancelHeartbeat: (() => void) | undefined
  private drained: Promise<DrainReport> | undefined

  constructor (private readonly options: ConnectionRegistryOptions) {
    this.clock = options.clock ?? systemClock
  }

  add (connection: C): void {
    this.connections.add(connection)
  }

  /** The connection's socket is gone. */
  delete (connection: C): boolean {
    return this.connections.delete(connection)
  }

  get size (): number {
    return this.connections.size
  }

  [Symbol.iterator] (): Iterator<C> {
    return this.connections.values()
  }

  /** True from the moment the drain begins: readiness fails and upgrades are refused. */
  get draining (): boolean {
    return this.drained !== undefined
  }

  /** One timer for every connection, not one per socket. */
  startHeartbeat (): void {
    this.cancelHeartbeat ??= this.clock.every(this.options.pingIntervalMs, () => this.heartbeat())
  }

  /** The connections stay as they are. */
  stopHeartbeat (): void {
    this.cancelHeartbeat?.()
    this.cancelHeartbeat = undefined
  }

  /** Terminates the connections that did not answer the previous ping and pings the rest. */
  heartbeat (): void {
    for (const connection of this.connections) {
      if (!connection.alive) {
        this.options.onHeartbeatTermination?.()
        connection.terminate()
        continue
      }
      connection.alive = false
      connection.ping()
    }
  }

  /** Closes every connection with 1001 at once (an app closed without a drain, as in tests). */
  closeAll (): void {
    for (const connection of this.connections) connection.close(CloseCode.GOING_AWAY, SHUTDOWN_REASON)
  }

  /**
   * Closes every connection with 1001 in batches spread over the first half
   * of the grace period, so clients do not all reconnect at the same instant;
   * then waits for the close handshakes, and terminates whoever is left at the
   * deadline. Resolves when none is left or the rest were terminated.
   * Idempotent: a second call returns the first drain.
   */
  drain (): Promise<DrainReport> {
    this.drained ??= this.runDrain()
    return this.drained
  }

  private async runDrain (): Promise<DrainReport> {
    const { shutdownGraceMs, drainTickMs } = this.options
    const deadline = this.clock.now() + shutdownGraceMs
    const plan = drainPlan(this.connections.size, shutdownGraceMs, drainTickMs)
    for (let tick = 0; tick < plan.ticks; tick++) {
      let closed = 0
      for (const connection of this.connections) {
        if (closed === plan.perTick) break
        if (connection.isClosing) continue
        connection.close(CloseCode.GOING_AWAY, SHUTDOWN_REASON)
        closed++
      }
      if (closed === 0) break
      if (tick < plan.ticks - 1) await this.clock.sleep(drainTickMs)
    }
    // Close handshakes finish by themselves; whoever is left at the deadline is cut off.
    while (this.connections.size > 0 && this.clock.now() < deadline) await this.clock.sleep(drainTickMs / 2)
    const terminated = this.connections.size
    for (const connection of this.connections) connection.terminate()
    return { ...plan, terminated }
  }
}
