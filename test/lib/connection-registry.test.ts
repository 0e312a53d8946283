// Unit tests of lib/connection-registry.ts with fake connections and a fake
// clock: the heartbeat, close-all and the batched shutdown drain, no sockets
// and no real waits.
import t from 'tap'
import { addressKey, type Clock, ConnectionRegistry, type ConnectionRegistryOptions, drainPlan, type Tracked } from '../../lib/connection-registry.js'

/** A clock that moves only when told to; timers fire in time order. */
class FakeClock implements Clock {
  time = 0
  private timers: Array<{ at: number, run: () => void, period?: number }> = []

  now (): number {
    return this.time
  }

  sleep (ms: number): Promise<void> {
    return new Promise((resolve) => this.timers.push({ at: this.time + ms, run: resolve }))
  }

  every (ms: number, tick: () => void): () => void {
    const timer = { at: this.time + ms, run: tick, period: ms }
    this.timers.push(timer)
    return () => { this.timers = this.timers.filter((other) => other !== timer) }
  }

  /** Moves time forward by `ms`, firing every timer due on the way and letting its promise callbacks run. */
  async advance (ms: number): Promise<void> {
    const end = this.time + ms
    await settle()
    for (;;) {
      const next = this.timers.filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at)[0]
      if (next === undefined) break
      this.time = next.at
      if (next.period === undefined) this.timers = this.timers.filter((timer) => timer !== next)
      else next.at += next.period
      next.run()
      await settle()
    }
    this.time = end
  }
}

/** Lets pending promise callbacks run (a turn of the event loop, not a timed wait). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

type Event = 'ping' | 'terminate' | `close ${number} ${string}`

class FakeConnection implements Tracked {
  alive = true
  isClosing = false
  readonly events: Event[] = []
  closedAt: number | undefined

  /**
   * `answers`: whether pings are answered before the next tick.
   * `handshakeMs`: how long the peer takes to finish a close handshake
   * (null: never), after which the socket is gone.
   */
  constructor (
    private readonly registry: ConnectionRegistry<FakeConnection>,
    private readonly clock: FakeClock,
    public answers = true,
    private readonly handshakeMs: number | null = 0
  ) {
    registry.add(this)
  }

  ping (): void {
    this.events.push('ping')
    if (this.answers) this.alive = true
  }

  close (code: number, reason: string): void {
    this.events.push(`close ${code} ${reason}`)
    this.isClosing = true
    this.closedAt = this.clock.now()
    if (this.handshakeMs === null) return
    this.clock.sleep(this.handshakeMs).then(() => this.registry.delete(this), () => {})
  }

  terminate (): void {
    this.events.push('terminate')
    this.isClosing = true
    // The socket's close event follows a termination.
    queueMicrotask(() => this.registry.delete(this))
  }
}

function setup (options: Partial<ConnectionRegistryOptions> = {}) {
  const clock = new FakeClock()
  const terminations = { count: 0 }
  const registry = new ConnectionRegistry<FakeConnection>({
    pingIntervalMs: 1000,
    shutdownGraceMs: 2000,
    drainTickMs: 100,
    maxConnections: 1000,
    maxConnectionsPerAddress: 1000,
    onHeartbeatTermination: () => { terminations.count++ },
    clock,
    ...options
  })
  const connect = (answers = true, handshakeMs: number | null = 0) => new FakeConnection(registry, clock, answers, handshakeMs)
  return { clock, registry, terminations, connect }
}

t.test('add, delete, size and iteration', async (t) => {
  const { registry, connect } = setup()
  const a = connect()
  const b = connect()
  t.equal(registry.size, 2)
  t.same([...registry], [a, b], 'iterates in the order added')
  t.equal(registry.delete(a), true)
  t.equal(registry.delete(a), false, 'a second delete finds nothing')
  t.same([...registry], [b])
  t.equal(registry.draining, false)
})

t.test('heartbeat: an unanswered connection is terminated at the next tick; an answering one is kept', async (t) => {
  const { clock, registry, terminations, connect } = setup()
  const silent = connect(false)
  const answering = connect(true)
  registry.startHeartbeat()
  await clock.advance(999)
  t.same(silent.events, [], 'nothing before the first tick')
  await clock.advance(1)
  t.same(silent.events, ['ping'])
  t.equal(silent.alive, false, 'the ping cleared its alive flag')
  await clock.advance(1000)
  t.same(silent.events, ['ping', 'terminate'], 'terminated at the tick after the unanswered ping')
  t.equal(terminations.count, 1, 'the termination was counted')
  t.notOk([...registry].includes(silent), 'and it is gone once its socket closed')
  await clock.advance(3000)
  t.same(answering.events, ['ping', 'ping', 'ping', 'ping', 'ping'], 'the answering one is pinged every tick, never terminated')
  t.equal(silent.events.length, 2, 'the terminated one is left alone')
  t.equal(terminations.count, 1)
})

t.test('heartbeat: a connection that stops answering gets exactly one unanswered ping before the cut', async (t) => {
  const { clock, registry, connect } = setup()
  const peer = connect(true)
  registry.startHeartbeat()
  await clock.advance(2000)
  peer.answers = false
  await clock.advance(1000)
  t.same(peer.events, ['ping', 'ping', 'ping'])
  await clock.advance(1000)
  t.same(peer.events, ['ping', 'ping', 'ping', 'terminate'])
})

t.test('heartbeat: connections added later are pinged; stopHeartbeat ends the ticks; start twice keeps one timer', async (t) => {
  const { clock, registry, connect } = setup()
  registry.startHeartbeat()
  registry.startHeartbeat()
  await clock.advance(500)
  const late = connect()
  await clock.advance(500)
  t.same(late.events, ['ping'], 'one ping per tick, from one timer')
  registry.stopHeartbeat()
  await clock.advance(5000)
  t.same(late.events, ['ping'], 'no ping after stop')
})

t.test('closeAll closes every connection with 1001 at once', async (t) => {
  const { registry, connect } = setup()
  const connections = [connect(), connect(), connect()]
  registry.closeAll()
  t.same(connections.map((c) => c.events), Array(3).fill(['close 1001 server shutting down']))
})

t.test('drainPlan spreads the closes over the first half of the grace period', async (t) => {
  t.same(drainPlan(10, 2000, 100), { connections: 10, ticks: 10, perTick: 1 })
  t.same(drainPlan(25, 2000, 100), { connections: 25, ticks: 10, perTick: 3 }, 'rounded up: all closed within the ticks')
  t.same(drainPlan(0, 2000, 100), { connections: 0, ticks: 10, perTick: 1 })
  t.same(drainPlan(5, 100, 100), { connections: 5, ticks: 1, perTick: 5 }, 'a grace shorter than two ticks closes everyone at once')
})

t.test('drain: 1001 in batches, one tick apart, over the first half of the grace period', async (t) => {
  const { clock, registry, connect } = setup()
  // Handshakes that take a while, so the spread is the drain's, not the peers'.
  const connections = Array.from({ length: 25 }, () => connect(true, 50))
  let done = false
  const drained = registry.drain().then((report) => { done = true; return report })
  t.equal(registry.draining, true, 'draining from the call on')
  await clock.advance(1000)
  t.ok(connections.every((c) => c.events.length === 1 && c.events[0] === 'close 1001 server shutting down'), 'each closed once, with 1001')
  const byTime = new Map<number, number>()
  for (const c of connections) byTime.set(c.closedAt as number, (byTime.get(c.closedAt as number) ?? 0) + 1)
  t.same([...byTime], [[0, 3], [100, 3], [200, 3], [300, 3], [400, 3], [500, 3], [600, 3], [700, 3], [800, 1]],
    '3 per 100 ms tick (25 over 10 ticks) until everyone is closed')
  await clock.advance(0)
  t.ok(done, 'resolved once the last handshake finished, long before the deadline')
  t.same(await drained, { connections: 25, ticks: 10, perTick: 3, terminated: 0 })
  t.equal(registry.size, 0)
})

t.test('drain: connections that never finish the close are terminated at the deadline, not before', async (t) => {
  const { clock, registry, connect } = setup()
  const stuck = [connect(true, null), connect(true, null)]
  const prompt = connect(true, 10)
  let done = false
  const drained = registry.drain().then((report) => { done = true; return report })
  await clock.advance(1999)
  t.notOk(done, 'still waiting just before the deadline')
  t.ok(stuck.every((c) => !c.events.includes('terminate')), 'nobody terminated before the deadline')
  t.notOk([...registry].includes(prompt), 'the prompt one is gone')
  await clock.advance(50)
  t.ok(done, 'done at the deadline')
  t.same(stuck.map((c) => c.events), Array(2).fill(['close 1001 server shutting down', 'terminate']))
  t.same(await drained, { connections: 3, ticks: 10, perTick: 1, terminated: 2 })
  await settle()
  t.equal(registry.size, 0)
})

t.test('drain: connections already closing (slow consumers) are not closed again', async (t) => {
  const { clock, registry, connect } = setup()
  const closing = connect(true, null)
  closing.close(1013, 'slow consumer')
  const open = connect(true, 0)
  const drained = registry.drain()
  await clock.advance(2000)
  await drained
  t.same(closing.events, ['close 1013 slow consumer', 'terminate'], 'no 1001 on top of its 1013; cut off at the deadline')
  t.same(open.events, ['close 1001 server shutting down'])
})

t.test('drain: nothing to drain resolves at once; a second call returns the same drain', async (t) => {
  const { registry } = setup()
  const first = registry.drain()
  t.equal(registry.drain(), first, 'the same promise')
  t.same(await first, { connections: 0, ticks: 10, perTick: 1, terminated: 0 }, 'no clock advance needed')
  t.equal(registry.draining, true, 'and it stays draining')
})

t.test('addressKey: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 per /64', async (t) => {
  t.equal(addressKey('203.0.113.7'), '203.0.113.7')
  t.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7', 'an IPv4 client of a dual-stack listener is the same client')
  t.equal(addressKey('::FFFF:203.0.113.7'), '203.0.113.7', 'whatever the case')
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8:1:2::9'), '2001:db8:1:2::/64', 'one /64 is one client: it can pick any of 2^64 addresses in it')
  t.equal(addressKey('2001:DB8:0001:0002:ffff::1'), '2001:db8:1:2::/64', 'written differently, the same /64')
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(addressKey('2001:db8:0:1::1'), '2001:db8:0:1::/64', 'the next /64 is another client')
  t.equal(addressKey('::1'), '0:0:0:0::/64')
  t.equal(addressKey('::'), '0:0:0:0::/64')
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'the zone is dropped')
  t.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64', 'an embedded IPv4 tail')
  t.equal(addressKey(undefined), 'unknown', 'no address (an injected request) is one bucket')
  t.equal(addressKey('not an address'), 'unknown')
})

t.test('admit: MAX_CONNECTIONS and MAX_CONNECTIONS_PER_IP, node-full first; a slot counts until released', async (t) => {
  const { registry } = setup({ maxConnections: 4, maxConnectionsPerAddress: 2 })
  const a1 = registry.admit('10.0.0.1')
  const a2 = registry.admit('::ffff:10.0.0.1')
  t.ok(a1.ok && a2.ok, 'two from one address')
  t.same(registry.admit('10.0.0.1'), { ok: false, refusal: 'address-full' }, 'a third from the same address')
  const v6 = registry.admit('2001:db8::1')
  t.ok(v6.ok)
  t.match(registry.admit('2001:db8::2'), { ok: true, slot: { release: Function } }, 'the same /64, second connection')
  t.same(registry.admit('2001:db8::3'), { ok: false, refusal: 'node-full' }, 'the node is full (4): node-full comes before the address cap')
  t.same(registry.admit('10.0.0.9'), { ok: false, refusal: 'node-full' }, 'even for a new address')
  t.equal(registry.admitted, 4)
  t.same(registry.refusals, { nodeFull: 2, addressFull: 1 }, 'refusals are counted by reason')
  if (!a1.ok) throw new Error('unreachable')
  a1.slot.release()
  a1.slot.release()
  t.equal(registry.admitted, 3, 'a release is counted once')
  const again = registry.admit('10.0.0.1')
  t.ok(again.ok, 'a released slot is free again, for the same address')
  t.same(registry.admit('10.0.0.2'), { ok: false, refusal: 'node-full' })
})

t.test('a connection added with its slot gives it back when deleted; the address is forgotten at zero', async (t) => {
  const { registry, clock } = setup({ maxConnections: 10, maxConnectionsPerAddress: 1 })
  const admission = registry.admit('192.0.2.1')
  if (!admission.ok) throw new Error('refused')
  const connection = new FakeConnection(registry, clock)
  registry.delete(connection)
  registry.add(connection, admission.slot)
  t.equal(registry.size, 1)
  t.equal(registry.admit('192.0.2.1').ok, false, 'the slot is taken')
  registry.delete(connection)
  t.equal(registry.admitted, 0, 'deleting the connection released the slot')
  t.equal(registry.addresses, 0, 'no address is kept for nobody')
  t.equal(registry.admit('192.0.2.1').ok, true)
})
