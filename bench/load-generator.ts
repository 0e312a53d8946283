// The bench's load generator: its own process (pinned to its own core by
// bench/run.ts), taking jobs over IPC. Its clients are lean on purpose: a
// message frame is never JSON-parsed; the step, sequence and send time are
// read straight from the bytes of the `text` field (`#<step>:<seq>@<ms>`).
// `seq` numbers the messages of a step over all rooms (1, 2, ...), sent to
// the rooms round-robin, so message `seq` went to room (seq - 1) % rooms.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import type {
  FanoutJob, FanoutResult, GeneratorReply, GeneratorRequest, Job, JobResult,
  JoinStormJob, JoinStormResult, MemoryJob, MemoryResult, StepResult
} from './lib/jobs.js'
import { coreTicks, cpuTicks, cpuTimes, rssKb, writeSyscalls, type CoreTicks } from './lib/proc.js'
import { percentiles } from './lib/stats.js'

/** A client that sees no `welcome` by then counts as failed. */
const CONNECT_TIMEOUT_MS = 15_000
/** Upgrades in flight at once: more only overflows the server's accept backlog. */
const CONNECT_CONCURRENCY = 100
/** Joins and drains are polled this often. */
const POLL_MS = 10
/** A join refused with `unavailable` is sent again after this, as a client would (PROTOCOL §3). */
const JOIN_RETRY_MS = 200
const JOIN_RETRIES_MAX = 10
/** A drain with no new delivery for this long is over: what is missing is lost. */
const DRAIN_IDLE_MS = 1000
/** Above this share of a core, the generator may be what limits the figures. */
const GENERATOR_BUSY_PCT = 90
/** A send this late (or an event-loop stall this long) means the generator fell behind. */
const GENERATOR_LAG_MS = 50
/** Above this share of one core the server side was saturated. */
const SERVER_BUSY_PCT = 95
/** Other processes taking more than this share of a pinned core make the figures suspect. */
const HOST_BUSY_PCT = 10

const CLIENT_OPTIONS: WebSocket.ClientOptions = {
  perMessageDeflate: false,
  // The server's frames are trusted here; validating them would be generator work, not server work.
  skipUTF8Validation: true,
  handshakeTimeout: CONNECT_TIMEOUT_MS
}

// Byte codes for the frame sniffing below.
const MARK = Buffer.from('"text":"#')
const TYPE_AT = 9 // {"type":" is 9 bytes: the first letter of the type follows
const M = 0x6d // message
const W = 0x77 // welcome
const J = 0x6a // joined
const P = 0x70 // presence
const E = 0x65 // error

interface Client {
  readonly ws: WebSocket
  /** Index in the job of the room it joins (or joined last), or -1. */
  room: number
  welcomed: boolean
  joined: boolean
  closed: boolean
  joinedAt: number
  /** The join frame sent and not yet answered with `joined`. */
  pendingJoin: string | undefined
  joinRetries: number
  /** seen[seq] is 1 once message `seq` of the current step arrived. */
  seen: Uint8Array
  /** The last sequence number seen from each room (order is kept per room only). */
  lastSeqByRoom: Uint32Array
  onWelcome: (() => void) | undefined
}

/** Counters shared by every client: the receive path only increments them. */
function freshCounters () {
  return {
    step: 0,
    deliveries: 0,
    unique: 0,
    duplicated: 0,
    reordered: 0,
    stray: 0,
    bytes: 0,
    joined: 0,
    joinRetries: 0,
    presence: 0,
    errors: 0,
    other: 0,
    firstError: '',
    unexpectedCloses: 0,
    closeCodes: new Map<number, number>(),
    closingAll: false,
    /** Latencies of messages sent inside [winStart, winEnd) (absolute ms). */
    latencies: new Float64Array(0),
    latencyCount: 0,
    latencyDropped: 0,
    winStart: Number.POSITIVE_INFINITY,
    winEnd: Number.NEGATIVE_INFINITY
  }
}
const rx = freshCounters()
/** Rooms of the current fan-out job: the room of message `seq` is (seq - 1) % roomCount. */
let roomCount = 1

const nowMs = () => performance.timeOrigin + performance.now()

/** Reads a decimal number (digits, optional '.digits') at `cursor`, leaves `cursor` past its terminator. */
let cursor = 0
function scanNumber (data: Buffer): number {
  let value = 0
  let scale = 0
  let i = cursor
  const end = data.length
  for (; i < end; i++) {
    const ch = data[i] as number
    if (ch >= 0x30 && ch <= 0x39) {
      value = value * 10 + (ch - 0x30)
      if (scale > 0) scale *= 10
    } else if (ch === 0x2e && scale === 0) {
      scale = 1
    } else {
      break
    }
  }
  cursor = i + 1
  return scale > 1 ? value / scale : value
}

function onFrame (client: Client, data: Buffer): void {
  rx.bytes += data.length
  const type = data[TYPE_AT]
  if (type === M) {
    const receivedAt = nowMs()
    const at = data.indexOf(MARK, TYPE_AT)
    if (at === -1) {
      rx.stray++
      return
    }
    cursor = at + MARK.length
    const step = scanNumber(data)
    const seq = scanNumber(data)
    const sentAt = scanNumber(data)
    rx.deliveries++
    if (step !== rx.step || seq < 1 || seq >= client.seen.length) {
      rx.stray++
      return
    }
    if (client.seen[seq] === 1) {
      rx.duplicated++
      return
    }
    client.seen[seq] = 1
    rx.unique++
    const room = (seq - 1) % roomCount
    if (seq < (client.lastSeqByRoom[room] as number)) rx.reordered++
    client.lastSeqByRoom[room] = seq
    if (sentAt >= rx.winStart && sentAt < rx.winEnd) {
      if (rx.latencyCount < rx.latencies.length) rx.latencies[rx.latencyCount++] = receivedAt - sentAt
      else rx.latencyDropped++
    }
    return
  }
  switch (type) {
    case W:
      client.welcomed = true
      client.onWelcome?.()
      return
    case J:
      if (!client.joined) {
        client.joined = true
        client.pendingJoin = undefined
        client.joinedAt = nowMs()
        rx.joined++
      }
      return
    case P:
      rx.presence++
      return
    case E:
      rx.errors++
      if (rx.firstError === '') rx.firstError = data.toString().slice(0, 300)
      if (client.pendingJoin !== undefined && client.joinRetries < JOIN_RETRIES_MAX) retryJoin(client, client.pendingJoin)
      return
    default:
      rx.other++
  }
}

function sendJoin (client: Client, frame: string): void {
  client.pendingJoin = frame
  client.ws.send(frame)
}

function retryJoin (client: Client, frame: string): void {
  client.joinRetries++
  rx.joinRetries++
  setTimeout(() => {
    if (!client.closed && client.pendingJoin === frame) client.ws.send(frame)
  }, JOIN_RETRY_MS).unref()
}

function connect (url: string, name: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?name=${encodeURIComponent(name)}`, CLIENT_OPTIONS)
    const client: Client = {
      ws,
      room: -1,
      welcomed: false,
      joined: false,
      closed: false,
      joinedAt: 0,
      pendingJoin: undefined,
      joinRetries: 0,
      seen: new Uint8Array(0),
      lastSeqByRoom: new Uint32Array(0),
      onWelcome: undefined
    }
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`${name}: no welcome from ${url} within ${CONNECT_TIMEOUT_MS} ms`))
    }, CONNECT_TIMEOUT_MS)
    client.onWelcome = () => {
      clearTimeout(timer)
      client.onWelcome = undefined
      resolve(client)
    }
    ws.on('message', (data) => onFrame(client, data as Buffer))
    ws.on('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`${name}: ${error.message}`))
    })
    ws.on('close', (code) => {
      client.closed = true
      if (!rx.closingAll && client.welcomed) {
        rx.unexpectedCloses++
        rx.closeCodes.set(code, (rx.closeCodes.get(code) ?? 0) + 1)
      }
    })
  })
}

/** Opens `count` connections, a bounded number at a time, each complete once its `welcome` arrives. */
async function connectAll (count: number, urlOf: (i: number) => string, nameOf: (i: number) => string): Promise<Client[]> {
  const clients: Client[] = new Array<Client>(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      clients[i] = await connect(urlOf(i), nameOf(i))
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, count) }, worker))
  } catch (error) {
    // Stop the other workers, and leave no socket open for the next job.
    next = count
    await sleep(CONNECT_TIMEOUT_MS / 10)
    await closeAll(clients.filter(Boolean))
    throw error
  }
  return clients
}

async function waitUntil (done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!done()) {
    if (performance.now() > deadline) return false
    await sleep(POLL_MS)
  }
  return true
}

async function closeAll (clients: Client[]): Promise<void> {
  rx.closingAll = true
  for (const client of clients) if (client !== undefined && !client.closed) client.ws.terminate()
  await waitUntil(() => clients.every((client) => client === undefined || client.closed), 5000)
  rx.closingAll = false
}

function resetCounters (): void {
  Object.assign(rx, freshCounters())
}

function joinFrame (room: string): string {
  return `{"type":"join","room":"${room}"}`
}

/** Says how many joins were refused and retried (the service answers `unavailable` when its broker is slow). */
function joinNotes (): string[] {
  return rx.joinRetries > 0 ? [`${rx.joinRetries} join(s) refused and retried; first error: ${rx.firstError}`] : []
}

/** Sends joins for every client at once and waits for every `joined`. */
async function joinAll (clients: Client[], roomNames: string[], timeoutMs: number): Promise<void> {
  const target = rx.joined + clients.length
  for (const client of clients) sendJoin(client, joinFrame(roomNames[client.room] as string))
  if (!await waitUntil(() => rx.joined >= target, timeoutMs)) {
    throw new Error(`only ${clients.length - (target - rx.joined)} of ${clients.length} joins answered within ${timeoutMs} ms${rx.firstError ? `; first error: ${rx.firstError}` : ''}`)
  }
}

/**
 * Waits after the last send until every expected message arrived, or until
 * nothing new arrived for DRAIN_IDLE_MS (what is missing then is lost, not
 * late), or `capMs` passed. Returns how long it waited.
 */
async function drain (expected: number, capMs: number): Promise<number> {
  const started = performance.now()
  let seen = rx.unique
  let progressAt = started
  while (rx.unique < expected) {
    const now = performance.now()
    if (now - started > capMs || now - progressAt > DRAIN_IDLE_MS) break
    await sleep(POLL_MS)
    if (rx.unique !== seen) {
      seen = rx.unique
      progressAt = performance.now()
    }
  }
  return performance.now() - started
}

interface Snapshot {
  at: number
  deliveries: number
  serverTicks: number
  serverUserTicks: number
  serverWrites: number
  extraTicks: Record<string, number>
  generator: NodeJS.CpuUsage
  cores: CoreTicks[]
}

function snapshot (job: FanoutJob): Snapshot {
  const extraTicks: Record<string, number> = {}
  for (const [name, pid] of Object.entries(job.extraPids)) extraTicks[name] = cpuTicks(pid)
  return {
    at: performance.now(),
    deliveries: rx.deliveries,
    serverTicks: job.serverPids.reduce((sum, pid) => sum + cpuTicks(pid), 0),
    serverUserTicks: job.serverPids.reduce((sum, pid) => sum + cpuTimes(pid).user, 0),
    serverWrites: job.serverPids.reduce((sum, pid) => sum + writeSyscalls(pid), 0),
    extraTicks,
    generator: process.cpuUsage(),
    cores: coreTicks()
  }
}

/**
 * Sends `total` messages at `rate` per second from t0, each when it is due
 * (a timer per batch, no busy loop), and records how late the latest was.
 */
function sendOnSchedule (rate: number, total: number, send: (k: number) => void): Promise<{ sent: number, maxLagMs: number }> {
  const interval = 1000 / rate
  const t0 = performance.now()
  // Bounded in time whatever happens to the timers.
  const giveUpAt = t0 + total * interval + 10_000
  let sent = 0
  let maxLagMs = 0
  return new Promise((resolve) => {
    const tick = () => {
      const now = performance.now()
      const due = Math.min(total, Math.floor((now - t0) / interval) + 1)
      if (sent < due) maxLagMs = Math.max(maxLagMs, now - (t0 + sent * interval))
      while (sent < due) send(sent++)
      if (sent >= total || now > giveUpAt) {
        resolve({ sent, maxLagMs })
        return
      }
      setTimeout(tick, Math.max(0, t0 + sent * interval - performance.now()))
    }
    tick()
  })
}

async function runFanout (job: FanoutJob): Promise<FanoutResult> {
  const roomNames = Array.from({ length: job.rooms }, (_, r) => `${job.roomPrefix}-${r}`)
  roomCount = job.rooms
  // Either every subscriber is in every room, or subscriber i is in room i % rooms alone.
  const subscriberCount = job.subscribersInEveryRoom ? job.subscribersPerRoom : job.rooms * job.subscribersPerRoom
  const started = performance.now()
  // A subscriber's node alternates with its index inside its room.
  const subscribers = await connectAll(
    subscriberCount,
    (i) => job.urls[(job.subscribersInEveryRoom ? i : Math.floor(i / job.rooms)) % job.urls.length] as string,
    (i) => `s${i}`
  )
  const publisherUrl = job.urls[job.publisherNode] as string
  let publishers: Client[]
  try {
    publishers = await connectAll(job.rooms, () => publisherUrl, (r) => `p${r}`)
  } catch (error) {
    await closeAll(subscribers)
    throw error
  }
  const connectMs = performance.now() - started
  publishers.forEach((client, r) => { client.room = r })
  const everyone = [...subscribers, ...publishers]
  const joinStarted = performance.now()
  try {
    if (job.subscribersInEveryRoom) {
      // One room at a time for every subscriber, the publishers with the first.
      for (let r = 0; r < job.rooms; r++) {
        for (const client of subscribers) {
          client.room = r
          client.joined = false
        }
        await joinAll(r === 0 ? everyone : subscribers, roomNames, 60_000)
      }
    } else {
      subscribers.forEach((client, i) => { client.room = i % job.rooms })
      await joinAll(everyone, roomNames, 60_000)
    }
    const joinMs = performance.now() - joinStarted
    const notes = joinNotes()
    // Let the presence windows of the joins close before measuring.
    await sleep(500)
    const membersPerRoom = job.subscribersPerRoom + 1
    const loopDelay = monitorEventLoopDelay({ resolution: 5 })
    loopDelay.enable()
    const steps: StepResult[] = []
    for (let s = 0; s < job.steps.length; s++) {
      const rate = job.steps[s] as number
      const durationMs = job.warmupMs + job.measureMs
      const total = Math.floor((rate * durationMs) / 1000)
      for (const client of everyone) {
        client.seen = new Uint8Array(total + 1)
        client.lastSeqByRoom = new Uint32Array(job.rooms)
      }
      const sentPerRoom = new Uint32Array(job.rooms)
      Object.assign(rx, {
        step: s + 1,
        unique: 0,
        duplicated: 0,
        reordered: 0,
        stray: 0,
        errors: 0,
        firstError: '',
        unexpectedCloses: 0,
        latencies: new Float64Array(Math.ceil(((rate * job.measureMs) / 1000) * membersPerRoom * 1.2) + 1024),
        latencyCount: 0,
        latencyDropped: 0
      })
      const t0 = nowMs()
      rx.winStart = t0 + job.warmupMs
      rx.winEnd = rx.winStart + job.measureMs
      let first: Snapshot | undefined
      let last: Snapshot | undefined
      const startTimer = setTimeout(() => {
        first = snapshot(job)
        loopDelay.reset()
      }, job.warmupMs)
      const endTimer = setTimeout(() => { last = snapshot(job) }, durationMs)
      const stepNumber = s + 1
      const { sent, maxLagMs } = await sendOnSchedule(rate, total, (k) => {
        const r = k % job.rooms
        sentPerRoom[r] = (sentPerRoom[r] as number) + 1
        const publisher = publishers[r] as Client
        publisher.ws.send(`{"type":"send","room":"${roomNames[r] as string}","text":"#${stepNumber}:${k + 1}@${nowMs().toFixed(3)}"}`)
      })
      // The last send may come before the window's end timer; wait for it (bounded).
      await waitUntil(() => last !== undefined, job.measureMs + 5000)
      clearTimeout(startTimer)
      clearTimeout(endTimer)
      const loopP99 = loopDelay.percentile(99) / 1e6
      let expected = 0
      for (let r = 0; r < job.rooms; r++) expected += (sentPerRoom[r] as number) * membersPerRoom
      const drainMs = await drain(expected, job.drainMs)
      steps.push(stepResult(job, rate, sent, expected, membersPerRoom, first, last, maxLagMs, loopP99, drainMs))
      await sleep(job.pauseMs)
    }
    loopDelay.disable()
    return { kind: 'fanout', connections: everyone.length, connectMs, joinMs, steps, notes }
  } finally {
    await closeAll(everyone)
  }
}

function stepResult (
  job: FanoutJob, rate: number, sent: number, expected: number, membersPerRoom: number,
  first: Snapshot | undefined, last: Snapshot | undefined, sendLagMaxMs: number, loopP99: number, drainMs: number
): StepResult {
  const notes: string[] = []
  if (first === undefined || last === undefined) throw new Error('the measured window did not open or close')
  const windowSec = (last.at - first.at) / 1000
  const deliveries = last.deliveries - first.deliveries
  const serverSec = (last.serverTicks - first.serverTicks) / job.clkTck
  const extraCpuPct: Record<string, number> = {}
  for (const name of Object.keys(job.extraPids)) {
    extraCpuPct[name] = (((last.extraTicks[name] ?? 0) - (first.extraTicks[name] ?? 0)) / job.clkTck / windowSec) * 100
  }
  const generatorUs = (last.generator.user - first.generator.user) + (last.generator.system - first.generator.system)
  const generatorCpuPct = (generatorUs / 1e6 / windowSec) * 100
  const serverCpuPct = (serverSec / windowSec) * 100
  const [p50, p99, max] = percentiles(rx.latencies, rx.latencyCount, [50, 99, 100]) as [number, number, number]
  const lost = Math.max(0, expected - rx.unique)
  const extraPct = Object.values(extraCpuPct).reduce((a, b) => a + b, 0)
  const coreDelta = (core: number | undefined, pick: (ticks: CoreTicks) => number) => {
    const before = core === undefined ? undefined : first.cores[core]
    const after = core === undefined ? undefined : last.cores[core]
    return before === undefined || after === undefined ? Number.NaN : ((pick(after) - pick(before)) / job.clkTck / windowSec) * 100
  }
  // Busy time of the pinned core minus what our own processes used there.
  const serverCoreOtherPct = Math.max(0, coreDelta(job.cores.server, (t) => t.busy) - serverCpuPct - extraPct)
  const generatorCoreOtherPct = Math.max(0, coreDelta(job.cores.generator, (t) => t.busy) - generatorCpuPct)
  const serverCoreStealPct = coreDelta(job.cores.server, (t) => t.steal)
  const generatorCpuBound = generatorCpuPct > GENERATOR_BUSY_PCT
  const generatorLagged = sendLagMaxMs > GENERATOR_LAG_MS || loopP99 > GENERATOR_LAG_MS
  const serverSaturated = serverCpuPct + extraPct > SERVER_BUSY_PCT
  const hostBusy = serverCoreOtherPct > HOST_BUSY_PCT || generatorCoreOtherPct > HOST_BUSY_PCT || serverCoreStealPct > HOST_BUSY_PCT
  if (generatorCpuBound) notes.push(`generator CPU-bound: ${generatorCpuPct.toFixed(0)}% of its core`)
  if (generatorLagged) notes.push(`generator fell behind: send lag max ${sendLagMaxMs.toFixed(0)} ms, event-loop delay p99 ${loopP99.toFixed(0)} ms (its CPU ${generatorCpuPct.toFixed(0)}%, other work on its core ${generatorCoreOtherPct.toFixed(0)}%)`)
  if (hostBusy) notes.push(`other processes on the pinned cores: ${serverCoreOtherPct.toFixed(0)}% of the server core, ${generatorCoreOtherPct.toFixed(0)}% of the generator core, steal ${serverCoreStealPct.toFixed(0)}%`)
  if (serverSaturated) notes.push('server core saturated')
  if (rx.latencyDropped > 0) notes.push(`${rx.latencyDropped} latency samples not kept`)
  if (rx.errors > 0) notes.push(`${rx.errors} error frames; first: ${rx.firstError}`)
  if (lost > 0 && drainMs >= job.drainMs) notes.push(`${lost} deliveries still missing when the drain gave up after ${(drainMs / 1000).toFixed(1)} s (they may be late rather than lost)`)
  if (rx.stray > 0) notes.push(`${rx.stray} deliveries of an earlier step arrived during this one`)
  if (rx.unexpectedCloses > 0) notes.push(`${rx.unexpectedCloses} connections closed by the server: ${JSON.stringify(Object.fromEntries(rx.closeCodes))}`)
  if (sent < Math.floor((rate * (job.warmupMs + job.measureMs)) / 1000)) notes.push(`only ${sent} messages sent: the schedule ran out of time`)
  return {
    rate,
    sent,
    expected,
    offeredDeliveriesPerSec: rate * membersPerRoom,
    deliveriesPerSec: deliveries / windowSec,
    latencyMs: { p50, p99, max, samples: rx.latencyCount },
    lost,
    drainMs,
    duplicated: rx.duplicated,
    reordered: rx.reordered,
    stray: rx.stray,
    serverCpuUsPerDelivery: deliveries > 0 ? (serverSec * 1e6) / deliveries : Number.NaN,
    serverUserUsPerDelivery: deliveries > 0 ? ((last.serverUserTicks - first.serverUserTicks) / job.clkTck * 1e6) / deliveries : Number.NaN,
    serverWritesPerDelivery: deliveries > 0 ? (last.serverWrites - first.serverWrites) / deliveries : Number.NaN,
    serverCpuPct,
    extraCpuPct,
    generatorCpuPct,
    generatorLoopDelayP99Ms: loopP99,
    sendLagMaxMs,
    serverCoreOtherPct,
    generatorCoreOtherPct,
    serverCoreStealPct,
    errorFrames: rx.errors,
    unexpectedCloses: rx.unexpectedCloses,
    generatorCpuBound,
    generatorLagged,
    serverSaturated,
    hostBusy,
    notes
  }
}

async function runMemory (job: MemoryJob): Promise<MemoryResult> {
  const notes: string[] = []
  const roomNames = Array.from({ length: job.rooms }, (_, r) => `${job.roomPrefix}-${r}`)
  const rssBeforeKb = rssKb(job.serverPid)
  const started = performance.now()
  const clients = await connectAll(job.connections, () => job.urls[0] as string, (i) => `m${i}`)
  const connectMs = performance.now() - started
  try {
    clients.forEach((client, i) => { client.room = i % job.rooms })
    await joinAll(clients, roomNames, 60_000)
    await sleep(job.settleMs)
    // Three readings a little apart; the median ignores one caught mid-collection.
    const readings: number[] = []
    for (let i = 0; i < 3; i++) {
      readings.push(rssKb(job.serverPid))
      if (i < 2) await sleep(250)
    }
    readings.sort((a, b) => a - b)
    const rssAfterKb = readings[1] as number
    notes.push(...joinNotes())
    return {
      kind: 'memory',
      connections: clients.length,
      rssBeforeKb,
      rssAfterKb,
      bytesPerConnection: ((rssAfterKb - rssBeforeKb) * 1024) / clients.length,
      connectMs,
      notes
    }
  } finally {
    await closeAll(clients)
  }
}

async function runJoinStorm (job: JoinStormJob): Promise<JoinStormResult> {
  const notes: string[] = []
  const clients = await connectAll(job.clients, (i) => job.urls[i % job.urls.length] as string, (i) => `j${i}`)
  try {
    clients.forEach((client) => { client.room = 0 })
    await sleep(300)
    const ticksBefore = job.serverPids.reduce((sum, pid) => sum + cpuTicks(pid), 0)
    const cpuBefore = process.cpuUsage()
    const bytesBefore = rx.bytes
    const target = rx.joined + clients.length
    const frame = joinFrame(job.room)
    const t0 = nowMs()
    for (const client of clients) sendJoin(client, frame)
    const complete = await waitUntil(() => rx.joined >= target, job.timeoutMs)
    const ticksAfter = job.serverPids.reduce((sum, pid) => sum + cpuTicks(pid), 0)
    const cpu = process.cpuUsage(cpuBefore)
    if (!complete) throw new Error(`only ${clients.length - (target - rx.joined)} of ${clients.length} joins answered within ${job.timeoutMs} ms`)
    const joinTimes = new Float64Array(clients.map((client) => client.joinedAt - t0))
    const [p50, max] = percentiles(joinTimes, joinTimes.length, [50, 100]) as [number, number]
    notes.push(...joinNotes())
    return {
      kind: 'join-storm',
      clients: clients.length,
      joinStormMs: max,
      joinLatencyP50Ms: p50,
      serverCpuMs: ((ticksAfter - ticksBefore) / job.clkTck) * 1000,
      bytesReceived: rx.bytes - bytesBefore,
      generatorCpuPct: ((cpu.user + cpu.system) / 1000 / max) * 100,
      notes
    }
  } finally {
    await closeAll(clients)
  }
}

function runJob (job: Job): Promise<JobResult> {
  resetCounters()
  switch (job.kind) {
    case 'fanout': return runFanout(job)
    case 'memory': return runMemory(job)
    case 'join-storm': return runJoinStorm(job)
  }
}

function reply (message: GeneratorReply): void {
  process.send?.(message)
}

if (process.send === undefined) {
  process.stderr.write('bench/load-generator.ts is started by bench/run.ts (it needs an IPC channel)\n')
  process.exit(1)
}
process.on('message', (request: GeneratorRequest) => {
  runJob(request.job).then(
    (result) => reply({ id: request.id, ok: true, result }),
    (error: unknown) => reply({ id: request.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) })
  )
})
// The bench is gone: so is its generator.
process.on('disconnect', () => process.exit(0))
reply({ ready: true })
