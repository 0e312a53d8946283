// `npm run bench:redis-cost [-- --messages=N --rooms=R --subscribers=S --concurrency=C --aof=no|everysec|always --only=…]`:
// what one stored message costs Redis. Starts its own redis-server on a free
// loopback port, drives the publish script three ways and reads Redis's own
// accounting before and after each: CPU (INFO cpu, used_cpu_user +
// used_cpu_sys of the whole server), commands (INFO commandstats) and socket
// reads (INFO stats total_reads_processed), each divided by the messages.
//
//   script-pipelined  the script sent in pipelines of PIPELINE_DEPTH: the floor for a stored message
//   broker            RedisBroker driven as the service drives it: CONCURRENCY senders, each awaiting
//                     its receipt before the next send, on the production connection options
//   broker-unbatched  the same with ioredis auto-pipelining off (how nodes drove Redis before issue 14)
//   node              the real service (server.ts, one process) under CONCURRENCY WebSocket clients,
//                     each sending its next message once the previous one is acknowledged
//   publish           a plain PUBLISH of the same wire payload, pipelined: the floor for pub/sub alone
//
// `--cluster` runs the script pipelined on a local 3-master Redis Cluster
// (test/helpers/redis-cluster.ts) and reports the CPU of every master and
// replica per message.
//
// `--resubscribe=10000,50000,100000` measures something else: how long a node
// holding that many rooms takes to subscribe again after CLIENT KILL TYPE
// pubsub, and to repair every room.
//
// Every scenario has SUBSCRIBERS subscribed nodes on every room (for the
// broker ones the sending node is one of them, as a node with members is).
// Redis's CPU per call is much less sensitive to other load on the machine
// than wall time is, but not immune (cache misses, a descheduled Redis
// reads more per wake-up): run it on a quiet machine and compare runs of one
// sitting. See docs/scaling.md.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster, Redis } from 'ioredis'
import type { Test } from 'tap'
import WebSocket from 'ws'
import { integerOption, readCommandLine, refuse } from './lib/args.js'
import { Child, type Placement, PRODUCT_ENV, RedisProcess } from './lib/servers.js'
import { RedisBroker } from '../lib/redis-broker.js'
import { defineScripts, roomKeys } from '../lib/redis-scripts.js'
import { IDEMPOTENCY_TTL_MS } from '../lib/limits.js'
import { connectionOptions } from '../lib/redis-topology.js'
import { freePort } from '../test/helpers/free-port.js'
import { RedisCluster } from '../test/helpers/redis-cluster.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

const USAGE = 'usage: npm run bench:redis-cost [-- --messages=N] [--rooms=R] [--subscribers=S] [--concurrency=C] [--text-bytes=B] [--reps=N] [--history-size=N] [--full] ' +
  '[--aof=no|everysec|always] [--only=script-pipelined,broker,broker-unbatched,node,publish] [--json] [--resubscribe=10000,50000,100000] [--cluster]'

const SCENARIOS = ['script-pipelined', 'broker', 'broker-unbatched', 'node', 'publish'] as const
type ScenarioName = typeof SCENARIOS[number]

/** The epoch the bench's own writes propose for a new log, shaped like newEpoch()'s (8 hex digits). */
const BENCH_EPOCH = '8f2a1c3e'
/** Commands per pipeline in the pipelined scenarios (deep enough that Redis reads many per wake-up). */
const PIPELINE_DEPTH = 100
/** Messages sent before measuring (script loaded, rooms created, subscriptions settled). */
const WARM_UP_MESSAGES = 500
/** A scenario that has not finished by then stops the bench (a stuck Redis, a lost reply). */
const SCENARIO_TIMEOUT_MS = 120_000
/** The service's defaults (HISTORY_MAX_BYTES, HISTORY_TTL_S, READY_PROBE_MS); HISTORY_SIZE is --history-size. */
const HISTORY_MAX_BYTES = 1024 * 1024
const HISTORY_TTL_S = 604_800
const READY_PROBE_MS = 2000

interface Options {
  messages: number
  rooms: number
  subscribers: number
  concurrency: number
  textBytes: number
  /** Each scenario runs this many times, interleaved with the others; the median run is reported. */
  reps: number
  /** HISTORY_SIZE of the rooms (default: the service's, 1000). */
  historySize: number
  /** Every room's log is filled to its HISTORY_SIZE first: each measured message then trims one (a busy room's steady state). */
  full: boolean
  aof: 'no' | 'everysec' | 'always'
  only: ScenarioName[]
  json: boolean
  /** Instead of the cost: how long a node holding this many rooms takes to subscribe again and repair them all. */
  resubscribe: number[]
  /** Instead of one server: the script pipelined on a local 3-master Redis Cluster, CPU per master. */
  cluster: boolean
}

function readOptions (argv: string[]): Options {
  const values = readCommandLine(argv, {
    messages: { type: 'string' },
    rooms: { type: 'string' },
    subscribers: { type: 'string' },
    concurrency: { type: 'string' },
    'text-bytes': { type: 'string' },
    reps: { type: 'string' },
    'history-size': { type: 'string' },
    full: { type: 'boolean', default: false },
    aof: { type: 'string' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    resubscribe: { type: 'string' },
    cluster: { type: 'boolean', default: false }
  }, USAGE)
  const aof = values.aof ?? 'no'
  if (aof !== 'no' && aof !== 'everysec' && aof !== 'always') refuse('--aof must be no, everysec or always', USAGE)
  const only = values.only === undefined ? [...SCENARIOS] : values.only.split(',').map((name) => name.trim())
  for (const name of only) if (!(SCENARIOS as readonly string[]).includes(name)) refuse(`unknown scenario ${name}`, USAGE)
  return {
    messages: integerOption(values.messages, 'messages', 20_000, 1000, 1_000_000, USAGE),
    rooms: integerOption(values.rooms, 'rooms', 100, 1, 100_000, USAGE),
    subscribers: integerOption(values.subscribers, 'subscribers', 2, 0, 16, USAGE),
    concurrency: integerOption(values.concurrency, 'concurrency', 50, 1, 10_000, USAGE),
    textBytes: integerOption(values['text-bytes'], 'text-bytes', 64, 1, 64 * 1024, USAGE),
    reps: integerOption(values.reps, 'reps', 3, 1, 9, USAGE),
    historySize: integerOption(values['history-size'], 'history-size', 1000, 1, 100_000, USAGE),
    full: values.full === true,
    aof,
    only: only as ScenarioName[],
    json: values.json === true,
    cluster: values.cluster === true,
    resubscribe: values.resubscribe === undefined
      ? []
      : values.resubscribe.split(',').map((count) => integerOption(count.trim(), 'resubscribe', 0, 1, 1_000_000, USAGE))
  }
}

/** What Redis says it has done so far. */
interface RedisCounters {
  cpuUs: number
  reads: number
  /** calls per command name (script-internal calls included, as Redis counts them). */
  calls: Map<string, number>
  /** microseconds per command name. */
  usec: Map<string, number>
}

async function counters (admin: Redis): Promise<RedisCounters> {
  const info = await admin.info('cpu') + await admin.info('stats') + await admin.info('commandstats')
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN)
  const calls = new Map<string, number>()
  const usec = new Map<string, number>()
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    calls.set(match[1] as string, Number(match[2]))
    usec.set(match[1] as string, Number(match[3]))
  }
  return { cpuUs: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6, reads: field('total_reads_processed'), calls, usec }
}

export interface CostResult {
  scenario: ScenarioName
  messages: number
  wallMs: number
  /** Redis CPU (user + system, whole server) per message, µs. */
  cpuUsPerMessage: number
  /** Time Redis spent inside the script (or PUBLISH) per message, µs (commandstats usec). */
  commandUsPerMessage: number
  /** Commands sent by clients per message (scripts count once, their inner calls not at all). */
  commandsPerMessage: number
  /** Socket reads Redis made per message: below 1, several commands arrived per read. */
  readsPerMessage: number
  /** Calls per message by command name, as Redis counts them (script inner calls included). */
  callsPerMessage: Record<string, number>
}

/** Commands only a script issues here: counted by Redis, but not sent by a client. */
function scriptInnerCalls (calls: Map<string, number>, scripts: number): number {
  let inner = 0
  for (const [name, count] of calls) {
    if (name === 'evalsha' || name === 'eval' || name === 'info') continue
    // Scripts publish once each (SPUBLISH since the channel is a key); any other (S)PUBLISH came from a client.
    if (name === 'publish' || name === 'spublish') inner += Math.min(count, scripts)
    else if (INNER_COMMANDS.has(name)) inner += count
  }
  return inner
}

/** What PUBLISH_SCRIPT calls inside Redis (a client of this bench sends none of them itself). */
const INNER_COMMANDS = new Set(['hsetnx', 'hget', 'hmget', 'hincrby', 'hset', 'xadd', 'xlen', 'xrange', 'xtrim', 'expire', 'get', 'set'])

function difference (before: RedisCounters, after: RedisCounters, scenario: ScenarioName, messages: number, wallMs: number): CostResult {
  const calls = new Map<string, number>()
  let usec = 0
  for (const [name, count] of after.calls) {
    const delta = count - (before.calls.get(name) ?? 0)
    if (delta > 0 && name !== 'info') calls.set(name, delta)
  }
  for (const name of ['evalsha', 'eval']) usec += (after.usec.get(name) ?? 0) - (before.usec.get(name) ?? 0)
  const scripts = (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0)
  if (scripts === 0) usec = (after.usec.get('publish') ?? 0) - (before.usec.get('publish') ?? 0)
  let total = 0
  for (const count of calls.values()) total += count
  const callsPerMessage: Record<string, number> = {}
  for (const [name, count] of [...calls].sort((a, b) => b[1] - a[1])) callsPerMessage[name] = round(count / messages, 3)
  return {
    scenario,
    messages,
    wallMs: Math.round(wallMs),
    cpuUsPerMessage: round((after.cpuUs - before.cpuUs) / messages, 2),
    commandUsPerMessage: round(usec / messages, 2),
    commandsPerMessage: round((total - scriptInnerCalls(calls, scripts)) / messages, 3),
    readsPerMessage: round((after.reads - before.reads) / messages, 3),
    callsPerMessage
  }
}

function round (value: number, digits: number): number {
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}

/** A wire payload like PUBLISH_SCRIPT's, for the plain PUBLISH floor. */
function wirePayload (room: string, seq: number, text: string): string {
  return JSON.stringify({ k: 'm', r: room, e: BENCH_EPOCH, s: seq, f: 'alice', x: text, t: Date.now() })
}

async function connect (url: string, name: string, overrides: Partial<ReturnType<typeof connectionOptions>> = {}): Promise<Redis> {
  const client = new Redis(url, { ...connectionOptions(name), ...overrides })
  client.on('error', () => {})
  await client.connect()
  return client
}

class Bench {
  private readonly clients: Redis[] = []
  private readonly brokers: RedisBroker[] = []
  private readonly nodes: Child[] = []
  private readonly sockets: WebSocket[] = []
  private readonly rooms: string[]
  private readonly text: string

  private readonly bounds: { historySize: number, historyMaxBytes: number, historyTtlS: number }

  constructor (private readonly url: string, private readonly admin: Redis, private readonly options: Options) {
    this.bounds = { historySize: options.historySize, historyMaxBytes: HISTORY_MAX_BYTES, historyTtlS: HISTORY_TTL_S }
    this.rooms = Array.from({ length: options.rooms }, (_, i) => `cost-${i}`)
    this.text = 'x'.repeat(options.textBytes)
  }

  async run (scenario: ScenarioName): Promise<CostResult> {
    await this.admin.flushall()
    try {
      if (this.options.full) await this.fillLogs()
      const send = await this.prepare(scenario)
      await send(WARM_UP_MESSAGES)
      const before = await counters(this.admin)
      const started = performance.now()
      await withTimeout(send(this.options.messages), SCENARIO_TIMEOUT_MS, scenario)
      const wallMs = performance.now() - started
      // Let the last fan-out writes finish before reading the CPU.
      await new Promise((resolve) => setTimeout(resolve, 50))
      return difference(before, await counters(this.admin), scenario, this.options.messages, wallMs)
    } finally {
      await this.cleanUp()
    }
  }

  /** Fills every room's log to its HISTORY_SIZE, pipelined, on a connection of its own (--full). */
  private async fillLogs (): Promise<void> {
    const filler = await connect(this.url, 'bench:filler', { enableAutoPipelining: false })
    defineScripts(filler)
    try {
      for (const room of this.rooms) {
        const keys = roomKeys(room)
        for (let sent = 0; sent < this.bounds.historySize; sent += PIPELINE_DEPTH) {
          const pipeline = filler.pipeline()
          for (let i = sent; i < Math.min(this.bounds.historySize, sent + PIPELINE_DEPTH); i++) {
            pipeline.chatPublish(keys.meta, keys.log, keys.channel, BENCH_EPOCH, this.bounds.historySize, this.bounds.historyMaxBytes,
              'alice', this.text, Date.now(), room, this.bounds.historyTtlS, IDEMPOTENCY_TTL_MS, '', '', '')
          }
          await pipeline.exec()
        }
      }
    } finally {
      filler.disconnect()
    }
  }

  /** Sets the scenario up; returns what sends `count` messages. */
  private async prepare (scenario: ScenarioName): Promise<(count: number) => Promise<void>> {
    const channels = this.rooms.map((room) => roomKeys(room).channel)
    if (scenario === 'broker' || scenario === 'broker-unbatched') {
      const overrides = scenario === 'broker-unbatched' ? { enableAutoPipelining: false } : {}
      for (let i = 0; i < Math.max(1, this.options.subscribers); i++) {
        const command = await this.client(`bench:${i}:command`, overrides)
        const subscriber = await this.client(`bench:${i}:subscriber`)
        const onError = (error: unknown, context: string) => process.stderr.write(`unexpected Redis error ${context}: ${(error as Error).message}\n`)
        const broker = new RedisBroker({ command, subscriber, nodeId: `bench-${i}`, ...this.bounds, readyProbeMs: READY_PROBE_MS, onError })
        await broker.start(() => {})
        if (i < this.options.subscribers) {
          for (const room of this.rooms) broker.subscribe(room)
          for (const room of this.rooms) await broker.read(room, { limit: 1 })
        }
        this.brokers.push(broker)
      }
      const sender = this.brokers[0] as RedisBroker
      return async (count) => {
        let next = 0
        const worker = async () => {
          while (next < count) {
            const room = this.rooms[next++ % this.rooms.length] as string
            await sender.publish(room, 'alice', this.text)
          }
        }
        await Promise.all(Array.from({ length: this.options.concurrency }, worker))
      }
    }
    if (scenario === 'node') return this.prepareNodes()
    for (let i = 0; i < this.options.subscribers; i++) {
      const subscriber = await this.client(`bench:${i}:subscriber`)
      await subscriber.subscribe(...channels)
    }
    const command = await this.client('bench:command', { enableAutoPipelining: false })
    defineScripts(command)
    const sendBatch = scenario === 'publish'
      ? (first: number, size: number) => {
          const pipeline = command.pipeline()
          for (let i = first; i < first + size; i++) {
            const room = this.rooms[i % this.rooms.length] as string
            pipeline.publish(roomKeys(room).channel, wirePayload(room, i, this.text))
          }
          return pipeline.exec()
        }
      : (first: number, size: number) => {
          const pipeline = command.pipeline()
          for (let i = first; i < first + size; i++) {
            const room = this.rooms[i % this.rooms.length] as string
            const keys = roomKeys(room)
            pipeline.chatPublish(keys.meta, keys.log, keys.channel, BENCH_EPOCH, this.bounds.historySize, this.bounds.historyMaxBytes,
              'alice', this.text, Date.now(), room, this.bounds.historyTtlS, IDEMPOTENCY_TTL_MS, '', '', '')
          }
          return pipeline.exec()
        }
    return async (count) => {
      for (let sent = 0; sent < count; sent += PIPELINE_DEPTH) {
        const results = await sendBatch(sent, Math.min(PIPELINE_DEPTH, count - sent))
        const failed = results?.find(([error]) => error !== null)
        if (failed) throw failed[0] instanceof Error ? failed[0] : new Error(String(failed[0]))
      }
    }
  }

  /**
   * SUBSCRIBERS service nodes (at least one); CONCURRENCY clients on the
   * first, each in one of the rooms, and one listener per room on each other
   * node, so every node is subscribed to every room.
   */
  private async prepareNodes (): Promise<(count: number) => Promise<void>> {
    for (let i = 0; i < Math.max(1, this.options.subscribers); i++) this.nodes.push(await startNode(this.url, `bench-node-${i}`, this.options.historySize))
    const [sender, ...others] = this.nodes as [Child, ...Child[]]
    for (const node of others) {
      for (const room of this.rooms) await this.socket(node, room)
    }
    const senders: Array<{ socket: WebSocket, room: string }> = []
    for (let i = 0; i < this.options.concurrency; i++) {
      const room = this.rooms[i % this.rooms.length] as string
      senders.push({ socket: await this.socket(sender, room), room })
    }
    return async (count) => {
      let next = 0
      await Promise.all(senders.map(async ({ socket, room }) => {
        while (next < count) {
          const ref = String(next++)
          await new Promise<void>((resolve, reject) => {
            const onFrame = (data: WebSocket.RawData) => {
              const frame = JSON.parse(data.toString()) as { type: string, ref?: string, code?: string }
              if (frame.ref !== ref) return
              socket.off('message', onFrame)
              if (frame.type === 'ack') resolve()
              else reject(new Error(`send ${ref} got ${frame.type} ${frame.code ?? ''}`))
            }
            socket.on('message', onFrame)
            socket.send(JSON.stringify({ type: 'send', room, text: this.text, ref }))
          })
        }
      }))
    }
  }

  /** A WebSocket client on `node` that has joined `room`. */
  private async socket (node: Child, room: string): Promise<WebSocket> {
    const socket = new WebSocket(node.wsUrl)
    this.sockets.push(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string, room?: string }
        if (frame.type === 'welcome') socket.send(JSON.stringify({ type: 'join', room }))
        else if (frame.type === 'joined' && frame.room === room) resolve()
      })
    })
    return socket
  }

  private async client (name: string, overrides: Parameters<typeof connect>[2] = {}): Promise<Redis> {
    const client = await connect(this.url, name, overrides)
    this.clients.push(client)
    return client
  }

  private async cleanUp (): Promise<void> {
    await Promise.all(this.brokers.map((broker) => broker.close()))
    this.brokers.length = 0
    for (const socket of this.sockets) socket.terminate()
    this.sockets.length = 0
    await Promise.all(this.nodes.map((node) => node.stop()))
    this.nodes.length = 0
    for (const client of this.clients) client.disconnect()
    this.clients.length = 0
  }
}

async function withTimeout<T> (work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([work, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

/** A service node on `redisUrl`, under tsx (the bench's own process runs that way too). */
async function startNode (redisUrl: string, nodeId: string, historySize: number): Promise<Child> {
  const port = await freePort()
  const env = {
    ...process.env, NODE_OPTIONS: '', ...PRODUCT_ENV, HOST: '127.0.0.1', PORT: String(port), REDIS_URL: redisUrl, NODE_ID: nodeId, HISTORY_SIZE: String(historySize)
  }
  const node = new Child(nodeId, spawn(process.execPath, ['--import', 'tsx', 'server.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }), port)
  const deadline = Date.now() + SCENARIO_TIMEOUT_MS
  for (;;) {
    if (!node.running) throw new Error(`${nodeId} exited at start:\n${node.output}`)
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(2000) })).status === 200) return node
    } catch {}
    if (Date.now() > deadline) throw new Error(`${nodeId} was not ready in time:\n${node.output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Rooms of the resubscribe measure that get a message while the node resubscribes: every hundredth. */
const RESUBSCRIBE_SAMPLE_EVERY = 100

export interface ResubscribeResult {
  rooms: number
  /** Joining them all, a thousand per turn of the event loop (a join: subscribe, then read the history). */
  joinMs: number
  /** From CLIENT KILL TYPE pubsub until Redis lists every channel on the new connection. */
  resubscribedMs: number
  /** From the kill until a message stored in every hundredth room meanwhile was delivered (every room's log re-read). */
  repairedMs: number
}

/** A node holding `rooms` rooms loses its subscriber connection: how long until it holds them all again, and has repaired them. */
async function measureResubscribe (url: string, admin: Redis, rooms: number): Promise<ResubscribeResult> {
  await admin.flushall()
  const clients = await Promise.all(['command', 'subscriber', 'writer'].map((role) => connect(url, `resubscribe:${role}`)))
  const [command, subscriber, writer] = clients as [Redis, Redis, Redis]
  const delivered = new Set<string>()
  const onError = (error: unknown, context: string) => process.stderr.write(`unexpected Redis error ${context}: ${(error as Error).message}\n`)
  const bounds = { historySize: 1000, historyMaxBytes: HISTORY_MAX_BYTES, historyTtlS: HISTORY_TTL_S }
  const broker = new RedisBroker({ command, subscriber, nodeId: 'resubscribe', ...bounds, readyProbeMs: READY_PROBE_MS, onError })
  await broker.start((message) => delivered.add(message.room))
  try {
    const joinStarted = performance.now()
    const joins: Array<Promise<unknown>> = []
    for (let i = 0; i < rooms; i++) {
      broker.subscribe(`big-${i}`)
      joins.push(broker.read(`big-${i}`, { limit: 10 }))
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve))
    }
    await withTimeout(Promise.all(joins), SCENARIO_TIMEOUT_MS * 3, `joining ${rooms} rooms`)
    const joinMs = performance.now() - joinStarted
    const killed = performance.now()
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    defineScripts(writer)
    const sample: Array<Promise<unknown>> = []
    for (let i = 0; i < rooms; i += RESUBSCRIBE_SAMPLE_EVERY) {
      const keys = roomKeys(`big-${i}`)
      sample.push(writer.chatPublish(keys.meta, keys.log, keys.channel, BENCH_EPOCH, bounds.historySize, bounds.historyMaxBytes,
        'writer', 'while you were away', Date.now(), `big-${i}`, bounds.historyTtlS, IDEMPOTENCY_TTL_MS, '', '', ''))
    }
    await Promise.all(sample)
    let resubscribedMs: number | undefined
    const deadline = Date.now() + SCENARIO_TIMEOUT_MS * 3
    while (resubscribedMs === undefined || delivered.size < sample.length) {
      if (Date.now() > deadline) throw new Error(`${rooms} rooms: not resubscribed and repaired in time (${delivered.size} of ${sample.length} delivered)`)
      if (resubscribedMs === undefined && new RegExp(`sub=${rooms + 1} `).test(String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')))) {
        resubscribedMs = performance.now() - killed
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return { rooms, joinMs: Math.round(joinMs), resubscribedMs: Math.round(resubscribedMs), repairedMs: Math.round(performance.now() - killed) }
  } finally {
    await broker.close()
    for (const client of clients) client.disconnect()
  }
}

/**
 * The script pipelined on a local Redis Cluster of three masters with a
 * replica each (test/helpers/redis-cluster.ts): Redis CPU per message on
 * each master, and on the replicas (replication). Rooms spread over the
 * slots; every room's messages go to its master only (SPUBLISH).
 */
async function measureCluster (options: Options): Promise<void> {
  const teardowns: Array<() => unknown> = []
  const cluster = await RedisCluster.start({ teardown: (fn: () => unknown) => teardowns.push(fn) } as unknown as Test)
  const clients: Cluster[] = []
  try {
    const seeds = cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }))
    const command = new Cluster(seeds, { enableOfflineQueue: true })
    clients.push(command)
    defineScripts(command as unknown as Redis)
    const rooms = Array.from({ length: options.rooms }, (_, i) => `cost-${i}`)
    for (let i = 0; i < options.subscribers; i++) {
      const subscriber = new Cluster(seeds, { shardedSubscribers: true })
      clients.push(subscriber)
      for (const room of rooms) await subscriber.ssubscribe(roomKeys(room).channel)
    }
    const text = 'x'.repeat(options.textBytes)
    const send = async (count: number) => {
      // ioredis pipelines one slot at a time on a Cluster: a pipeline per room.
      const perRoom = Math.ceil(count / rooms.length)
      for (let sent = 0; sent < perRoom; sent += PIPELINE_DEPTH) {
        await Promise.all(rooms.map(async (room) => {
          const keys = roomKeys(room)
          const pipeline = command.pipeline()
          for (let i = sent; i < Math.min(perRoom, sent + PIPELINE_DEPTH); i++) {
            pipeline.chatPublish(keys.meta, keys.log, keys.channel, BENCH_EPOCH, options.historySize, HISTORY_MAX_BYTES,
              'alice', text, Date.now(), room, HISTORY_TTL_S, IDEMPOTENCY_TTL_MS, '', '', '')
          }
          const results = await pipeline.exec()
          const failed = results?.find(([error]) => error !== null)
          if (failed) throw failed[0] instanceof Error ? failed[0] : new Error(String(failed[0]))
        }))
      }
      return perRoom * rooms.length
    }
    await send(WARM_UP_MESSAGES)
    const masters = new Set((await cluster.masters()).map((node) => node.port))
    const cpu = async () => new Map(await Promise.all(cluster.nodes.map(async (node) => {
      const info = String(await cluster.command(node.port, 'INFO', 'cpu'))
      const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN)
      return [node.port, (field('used_cpu_user') + field('used_cpu_sys')) * 1e6] as const
    })))
    const before = await cpu()
    const started = performance.now()
    const messages = await send(options.messages)
    const wallMs = performance.now() - started
    await new Promise((resolve) => setTimeout(resolve, 50))
    const after = await cpu()
    process.stdout.write(`Redis Cluster, 3 masters with a replica each, ${messages} messages of ${options.textBytes} bytes over ${options.rooms} rooms ` +
      `(HISTORY_SIZE ${options.historySize}), ${options.subscribers} subscribed node(s), the script pipelined, ${Math.round(messages / (wallMs / 1000))} msg/s, ` +
      `${new Date().toISOString()}\n\n| node | role | Redis CPU µs per message of the whole cluster |\n|---|---|---:|\n`)
    let masterTotal = 0
    let replicaTotal = 0
    for (const node of cluster.nodes) {
      const us = ((after.get(node.port) ?? 0) - (before.get(node.port) ?? 0)) / messages
      if (masters.has(node.port)) masterTotal += us
      else replicaTotal += us
      process.stdout.write(`| ${node.port} | ${masters.has(node.port) ? 'master' : 'replica'} | ${round(us, 2)} |\n`)
    }
    process.stdout.write(`| all masters | | ${round(masterTotal, 2)} |\n| all replicas | | ${round(replicaTotal, 2)} |\n`)
  } finally {
    for (const client of clients) client.disconnect()
    for (const teardown of teardowns) await teardown()
  }
}

const PERSISTENCE: Record<Options['aof'], string[]> = {
  no: ['--appendonly', 'no'],
  everysec: ['--appendonly', 'yes', '--appendfsync', 'everysec'],
  always: ['--appendonly', 'yes', '--appendfsync', 'always']
}

async function main (): Promise<void> {
  const options = readOptions(process.argv.slice(2))
  if (options.cluster) {
    await measureCluster(options)
    return
  }
  const placement: Placement = { serverCore: undefined, generatorCore: undefined, fileLimit: undefined }
  const redis = await RedisProcess.start(placement, PERSISTENCE[options.aof])
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
  admin.on('error', () => {})
  const results: CostResult[] = []
  try {
    const version = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1]
    if (options.resubscribe.length > 0) {
      process.stdout.write(`Redis ${version}, one node, ${new Date().toISOString()}\n\n| rooms | join all (ms) | resubscribed (ms) | repaired (ms) |\n|---:|---:|---:|---:|\n`)
      for (const rooms of options.resubscribe) {
        process.stderr.write(`[redis-cost] resubscribe ${rooms} rooms…\n`)
        const result = await measureResubscribe(redis.url, admin, rooms)
        process.stdout.write(`| ${result.rooms} | ${result.joinMs} | ${result.resubscribedMs} | ${result.repairedMs} |\n`)
      }
      return
    }
    const bench = new Bench(redis.url, admin, options)
    const runs = new Map<ScenarioName, CostResult[]>(options.only.map((name) => [name, []]))
    for (let rep = 1; rep <= options.reps; rep++) {
      for (const scenario of options.only) {
        process.stderr.write(`[redis-cost] ${scenario} ${rep}/${options.reps}…\n`)
        const result = await bench.run(scenario)
        process.stderr.write(`[redis-cost]   ${result.cpuUsPerMessage} µs/msg, ${result.readsPerMessage} reads/msg\n`)
        runs.get(scenario)?.push(result)
      }
    }
    // The median by CPU per message: one run disturbed by other work on the machine does not move it.
    for (const scenarioRuns of runs.values()) {
      results.push([...scenarioRuns].sort((a, b) => a.cpuUsPerMessage - b.cpuUsPerMessage)[Math.floor(scenarioRuns.length / 2)] as CostResult)
    }
    if (options.json) {
      process.stdout.write(JSON.stringify({ date: new Date().toISOString(), redis: version, options, results }, null, 2) + '\n')
      return
    }
    process.stdout.write(`Redis ${version}, appendonly ${options.aof}, ${options.messages} messages of ${options.textBytes} bytes over ${options.rooms} rooms ` +
      `(HISTORY_SIZE ${options.historySize}${options.full ? ', every log full: each message trims one' : ''}), ` +
      `${options.subscribers} subscribed node(s), concurrency ${options.concurrency}, median of ${options.reps} runs, ${new Date().toISOString()}\n\n`)
    process.stdout.write('| scenario | Redis CPU µs/msg | script (or PUBLISH) µs/msg | commands/msg | reads/msg | msg/s | calls per message (Redis counts) |\n')
    process.stdout.write('|---|---:|---:|---:|---:|---:|---|\n')
    for (const result of results) {
      const calls = Object.entries(result.callsPerMessage).map(([name, count]) => `${name} ${count}`).join(', ')
      const rate = Math.round(result.messages / (result.wallMs / 1000))
      process.stdout.write(`| ${result.scenario} | ${result.cpuUsPerMessage} | ${result.commandUsPerMessage} | ${result.commandsPerMessage} | ` +
        `${result.readsPerMessage} | ${rate} | ${calls} |\n`)
    }
  } finally {
    admin.disconnect()
    await redis.stop()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`)
  process.exitCode = 1
})
