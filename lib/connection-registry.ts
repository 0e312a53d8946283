// The open connections of this node and everything done to all of them at
// once: the connection caps, one heartbeat timer, close-all, and the batched
// shutdown drain.
import { isIPv4, isIPv6 } from 'node:net'
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
  /** MAX_CONNECTIONS: admitted connections of this node at most. */
  maxConnections: number
  /** MAX_CONNECTIONS_PER_IP: admitted connections per client address (addressKey) at most. */
  maxConnectionsPerAddress: number
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

/** A place under the caps, held by one connection from its admitted upgrade until its socket closes. */
export interface Slot {
  /** Gives the place back; idempotent, so every way a socket can end may call it. */
  release (): void
}

/** Why an upgrade was refused: the node is full (503), or the client's address is (429). */
export type Refusal = 'node-full' | 'address-full'

export type Admission = { ok: true, slot: Slot } | { ok: false, refusal: Refusal }

/** The key under which a client address is counted when none is known (a request injected in tests). */
const UNKNOWN_ADDRESS = 'unknown'

/**
 * The client a caps count belongs to: an IPv4 address as it is (also when
 * written IPv4-mapped, `::ffff:a.b.c.d`, as a dual-stack listener reports
 * it); an IPv6 address by its /64, since whoever holds one /64 can use any of
 * its 2^64 addresses.
 */
export function addressKey (address: string | undefined): string {
  if (address === undefined) return UNKNOWN_ADDRESS
  const bare = address.split('%')[0] ?? ''
  if (isIPv4(bare)) return bare
  if (!isIPv6(bare)) return UNKNOWN_ADDRESS
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)
  if (mapped?.[1] !== undefined) return mapped[1]
  return `${ipv6Groups(bare).slice(0, 4).join(':')}::/64`
}

/** The eight groups of a valid IPv6 address, each as lowercase hex without leading zeros. */
function ipv6Groups (address: string): string[] {
  const [head = '', tail] = address.split('::')
  const split = (part: string | undefined) => part === undefined || part === '' ? [] : part.split(':')
  const left = split(head)
  const right = split(tail)
  // An IPv4 tail (64:ff9b::192.0.2.1) stands for the last two groups.
  const last = tail === undefined ? left : right
  const dotted = last.at(-1)
  if (dotted?.includes('.') === true) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted.split('.').map(Number)
    last.splice(-1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16))
  }
  const zeros = Array.from({ length: 8 - left.length - right.length }, () => '0')
  return [...left, ...zeros, ...right].map((group) => parseInt(group, 16).toString(16))
}

/** Spreads `connections` closes over the first half of the grace period (PROTOCOL §5). */
export function drainPlan (connections: number, shutdownGraceMs: number, drainTickMs: number): DrainPlan {
  const ticks = Math.max(1, Math.floor(shutdownGraceMs / 2 / drainTickMs))
  return { connections, ticks, perTick: Math.max(1, Math.ceil(connections / ticks)) }
}

export class ConnectionRegistry<C extends Tracked = Tracked> implements Iterable<C> {
  /** Each connection with the place it holds under the caps, if it was admitted through them. */
  private readonly connections = new Map<C, Slot | undefined>()
  private readonly clock: Clock
  private cancelHeartbeat: (() => void) | undefined
  private drained: Promise<DrainReport> | undefined
  /** Places held, whether or not the upgrade has completed yet. */
  private held = 0
  /** Places held per addressKey; an address with none is deleted, so the map is bounded by `held`. */
  private readonly perAddress = new Map<string, number>()
  /** Upgrades refused by the caps, for the metrics. */
  readonly refusals = { nodeFull: 0, addressFull: 0 }

  constructor (private readonly options: ConnectionRegistryOptions) {
    this.clock = options.clock ?? systemClock
  }

  /**
   * Checks the caps for a client at `address` (PROTOCOL §1: node full before
   * the address cap) and takes a place for it. The check and the taking are
   * one synchronous step, so concurrent upgrades cannot all slip under a cap.
   */
  admit (address: string | undefined): Admission {
    if (this.held >= this.options.maxConnections) {
      this.refusals.nodeFull++
      return { ok: false, refusal: 'node-full' }
    }
    const key = addressKey(address)
    const count = this.perAddress.get(key) ?? 0
    if (count >= this.options.maxConnectionsPerAddress) {
      this.refusals.addressFull++
      return { ok: false, refusal: 'address-full' }
    }
    this.held++
    this.perAddress.set(key, count + 1)
    let released = false
    return {
      ok: true,
      slot: {
        release: () => {
          if (released) return
          released = true
          this.held--
          const left = (this.perAddress.get(key) ?? 1) - 1
          if (left === 0) this.perAddress.delete(key)
          else this.perAddress.set(key, left)
        }
      }
    }
  }

  /** Places held under MAX_CONNECTIONS (upgrades admitted and not yet closed). */
  get admitted (): number {
    return this.held
  }

  /** Client addresses holding at least one place. */
  get addresses (): number {
    return this.perAddress.size
  }

  /** A connection, with the place `admit` gave its upgrade (released when it is deleted). */
  add (connection: C, slot?: Slot): void {
    this.connections.set(connection, slot)
  }

  /** The connection's socket is gone. */
  delete (connection: C): boolean {
    if (!this.connections.has(connection)) return false
    this.connections.get(connection)?.release()
    return this.connections.delete(connection)
  }

  get size (): number {
    return this.connections.size
  }

  [Symbol.iterator] (): Iterator<C> {
    return this.connections.keys()
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
    for (const connection of this.connections.keys()) {
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
    for (const connection of this.connections.keys()) connection.close(CloseCode.GOING_AWAY, SHUTDOWN_REASON)
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
      for (const connection of this.connections.keys()) {
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
    for (const connection of this.connections.keys()) connection.terminate()
    return { ...plan, terminated }
  }
}
