// The fault scenarios. Each declares the topologies it applies to and the
// faults it needs from them, and injects its fault while the traffic flows;
// what it returns is the evidence that the fault really happened (a run
// whose fault did not take effect proves nothing and does not pass).
import { REDIS_COMMAND_TIMEOUT_MS } from '../../lib/limits.js'
import { waitFor } from '../../test/helpers/wait.js'
import { sleep, type BroadcastPublisher, type Member, type Publisher } from './clients.js'
import type { ChaosNode } from './nodes.js'
import type { Plan } from './plan.js'
import type { FaultName, Faults, Topology, TopologyName } from './topology.js'

export interface Evidence {
  /** The fault took effect (and the system came back from it). */
  ok: boolean
  /** What happened, for the report. */
  note: string
}

export interface FaultContext {
  faults: Faults
  rooms: string[]
  nodes: ChaosNode[]
  plan: Plan
  members: Member[]
  publishers: Array<Publisher | BroadcastPublisher>
  /** Fraction of all messages sent so far, 0…1. */
  progress: () => number
  /** Whether every publisher is done sending. */
  done: () => boolean
  /** Resolves once that fraction of the messages has been sent (or the traffic is over). */
  reached: (fraction: number) => Promise<void>
}

export interface Scenario {
  id: string
  /** What the scenario does, for the report. */
  title: string
  topologies: TopologyName[]
  needs: FaultName[]
  /** Node indexes that reach Redis through the topology's proxy. */
  proxied?: number[]
  nodeEnv?: Record<string, string>
  /** Which node room `r` of `n` nodes publishes from (default: r mod n). */
  publisherNode?: (room: number, nodes: number) => number
  /** Room 0 is named by the topology's `movableRoom` (the room a reshard moves). */
  movesFirstRoom?: boolean
  /**
   * A failover may take back an unreplicated tail that subscribers already
   * saw (PROTOCOL §5, docs/cluster.md): messages received but absent from the
   * log are reported, not failed. Acknowledged messages must still all be there.
   */
  tailMayVanish?: boolean
  /** Publish through the HTTP broadcast API instead of WebSocket members. */
  publishOverHttp?: boolean
  /** Text length of every message (default 64). */
  textBytes?: number
  /** Traffic of its own, in place of the plan's (the slow client: one room of large messages, whatever the plan). */
  traffic?: Partial<Plan>
  /** One more member on node a that stops reading until the server gives up on it, or for `stallMs`. */
  slowMember?: { stallMs: number }
  inject: (context: FaultContext) => Promise<Evidence>
}

/** Waits for readiness 200 on every live node: the system came back. */
const RECOVERY_TIMEOUT_MS = 30_000
/** How long Redis stays down in the restart scenario. */
const REDIS_DOWN_MS = 1000
/** Replies come this much later than the command timeout, so commands time out. */
const SLOW_REPLY_MS = REDIS_COMMAND_TIMEOUT_MS + 500
/** How long the replies stay slow. */
const SLOW_WINDOW_MS = 1000
/** Between two CLIENT KILL TYPE pubsub. */
const PUBSUB_KILL_EVERY_MS = 300

async function allReady (nodes: ChaosNode[]): Promise<boolean> {
  try {
    await waitFor(async () => {
      for (const node of nodes) if (!node.killed && await node.readiness() !== 200) return false
      return true
    }, 'every live node ready', RECOVERY_TIMEOUT_MS, 100)
    return true
  } catch {
    return false
  }
}

/** The fraction of the traffic at which round `round` of `rounds` strikes: spread over 20 %…70 %. */
function strikeAt (round: number, rounds: number): number {
  return 0.2 + (0.5 * round) / Math.max(1, rounds)
}

function need<K extends FaultName> (faults: Faults, name: K): NonNullable<Faults[K]> {
  const fault = faults[name]
  if (fault === undefined) throw new Error(`the topology offers no ${name}`)
  return fault as NonNullable<Faults[K]>
}

export const SCENARIOS: Scenario[] = [
  {
    id: 'pubsub-killed',
    title: `every pub/sub connection killed (CLIENT KILL TYPE pubsub) every ${PUBSUB_KILL_EVERY_MS} ms`,
    topologies: ['single', 'sentinel', 'cluster'],
    needs: ['killPubsub'],
    async inject ({ faults, nodes, reached, progress, done }) {
      const killPubsub = need(faults, 'killPubsub')
      await reached(0.1)
      let rounds = 0
      let killed = 0
      while (progress() < 0.9 && !done()) {
        killed += await killPubsub()
        rounds++
        await sleep(PUBSUB_KILL_EVERY_MS)
      }
      const ready = await allReady(nodes)
      return { ok: killed >= nodes.length && ready, note: `${killed} connections killed in ${rounds} rounds${ready ? '' : '; nodes not ready again'}` }
    }
  },
  {
    id: 'redis-restarted',
    title: `Redis killed (SIGKILL) and started again ${REDIS_DOWN_MS} ms later`,
    topologies: ['single', 'cluster'],
    needs: ['restart'],
    async inject ({ faults, nodes, plan, reached }) {
      const restart = need(faults, 'restart')
      let ready = true
      for (let round = 0; round < plan.faultRounds; round++) {
        await reached(strikeAt(round, plan.faultRounds))
        await restart(REDIS_DOWN_MS)
        ready &&= await allReady(nodes)
      }
      return { ok: ready, note: `${plan.faultRounds}× down ${REDIS_DOWN_MS} ms${ready ? ', nodes ready again' : '; nodes not ready again'}` }
    }
  },
  {
    id: 'subscription-frozen',
    title: 'node a\'s subscription silenced (proxy stops forwarding, socket stays open)',
    topologies: ['single'],
    needs: ['freezeSubscription'],
    proxied: [0],
    // Publishers on node b: node a only listens, through the silenced subscription.
    publisherNode: () => 1,
    async inject ({ faults, nodes, plan, reached }) {
      const freeze = need(faults, 'freezeSubscription')
      const a = nodes[0] as ChaosNode
      let frozen = 0
      let sawNotReady = 0
      for (let round = 0; round < plan.faultRounds; round++) {
        await reached(strikeAt(round, plan.faultRounds))
        frozen += freeze('a')
        const noticed = await waitFor(async () => await a.readiness() === 503, 'node a notices', RECOVERY_TIMEOUT_MS, 20).then(() => true, () => false)
        if (noticed) sawNotReady++
      }
      const ready = await allReady(nodes)
      const reopened = await a.metric('chat_redis_reconnects_total')
      return {
        ok: frozen >= plan.faultRounds && sawNotReady === plan.faultRounds && reopened >= plan.faultRounds && ready,
        note: `${frozen} subscription(s) silenced; node a went not-ready ${sawNotReady}× and re-opened its subscription ${reopened}×`
      }
    }
  },
  {
    id: 'redis-slow',
    title: `node a's Redis replies held back ${SLOW_REPLY_MS} ms (command timeout ${REDIS_COMMAND_TIMEOUT_MS} ms) for ${SLOW_WINDOW_MS} ms`,
    topologies: ['single'],
    needs: ['delayCommands'],
    proxied: [0],
    // Publishers on node a, whose command replies come late.
    publisherNode: () => 0,
    async inject ({ faults, nodes, plan, publishers, reached }) {
      const delay = need(faults, 'delayCommands')
      let slowed = 0
      for (let round = 0; round < plan.faultRounds; round++) {
        await reached(strikeAt(round, plan.faultRounds))
        slowed += delay('a', SLOW_REPLY_MS)
        await sleep(SLOW_WINDOW_MS)
        delay('a', 0)
      }
      const ready = await allReady(nodes)
      await waitFor(() => publishers.every((publisher) => publisher.answered), 'every send answered', RECOVERY_TIMEOUT_MS, 50).catch(() => {})
      const timedOut = publishers.reduce((sum, publisher) => sum + publisher.timedOut, 0)
      return { ok: slowed >= plan.faultRounds && timedOut > 0 && ready, note: `${timedOut} sends answered \`timeout\` (outcome unknown)${ready ? '' : '; nodes not ready again'}` }
    }
  },
  {
    id: 'sentinel-failover',
    title: 'the master SIGKILLed, the sentinels promote the replica (REDIS_WAIT_REPLICAS=1), the old master comes back as a replica',
    topologies: ['sentinel'],
    needs: ['failover'],
    nodeEnv: { REDIS_WAIT_REPLICAS: '1' },
    tailMayVanish: true,
    async inject ({ faults, nodes, reached }) {
      const failover = need(faults, 'failover')
      await reached(0.3)
      const note = await failover()
      const ready = await allReady(nodes)
      return { ok: ready, note: `${note}${ready ? ', nodes ready again' : '; nodes not ready again'}` }
    }
  },
  {
    id: 'cluster-master-killed',
    title: 'the Cluster master of a busy room SIGKILLed and its replica promoted (REDIS_WAIT_REPLICAS=1)',
    topologies: ['cluster'],
    needs: ['killMaster'],
    nodeEnv: { REDIS_WAIT_REPLICAS: '1' },
    tailMayVanish: true,
    async inject ({ faults, nodes, rooms, reached }) {
      const killMaster = need(faults, 'killMaster')
      await reached(0.3)
      const note = await killMaster(rooms[0] as string)
      const ready = await allReady(nodes)
      return { ok: ready, note: `${note}${ready ? ', nodes ready again' : '; nodes not ready again'}` }
    }
  },
  {
    id: 'slot-resharded',
    title: 'the slot of a busy room moved to another master (`redis-cli --cluster reshard`) while messages flow',
    topologies: ['cluster'],
    needs: ['reshard'],
    movesFirstRoom: true,
    async inject ({ faults, nodes, rooms, reached }) {
      const reshard = need(faults, 'reshard')
      await reached(0.3)
      const note = await reshard(rooms[0] as string)
      const ready = await allReady(nodes)
      return { ok: !note.includes('NOT moved') && ready, note: `${note}${ready ? '' : '; nodes not ready again'}` }
    }
  },
  {
    id: 'node-killed',
    title: 'node b SIGKILLed; its members reconnect to node a and resume with `since`',
    topologies: ['single', 'sentinel', 'cluster'],
    needs: [],
    publisherNode: () => 0,
    async inject ({ nodes, members, reached }) {
      const b = nodes[1] as ChaosNode
      await reached(0.4)
      await b.kill()
      const onB = members.filter((member) => member.member.startsWith('member-b'))
      const back = await waitFor(() => onB.every((member) => member.resumes > 0), 'node b\'s members resumed', RECOVERY_TIMEOUT_MS, 50).then(() => true, () => false)
      const resumed = onB.filter((member) => member.resumes > 0).length
      return { ok: back && onB.length > 0, note: `${resumed} of ${onB.length} members of node b resumed on node a` }
    }
  },
  {
    id: 'slow-client',
    title: 'one room of 32 KB messages at 100/s (HTTP broadcast); one member stops reading (SEND_QUEUE_MAX_BYTES 256 KB) until the server gives up on it, then reads again, is closed, and comes back with `since`',
    topologies: ['single', 'sentinel', 'cluster'],
    needs: [],
    nodeEnv: { SEND_QUEUE_MAX_BYTES: String(256 * 1024) },
    textBytes: 32 * 1024,
    // Publishers that are not members: the harness's own readers stay few.
    publishOverHttp: true,
    // One room: the harness's own clients must keep up with 3.2 MB/s each, on a busy machine too.
    traffic: { rooms: 1, messagesPerRoom: 300, ratePerRoom: 100 },
    slowMember: { stallMs: 20_000 },
    async inject ({ members, nodes, reached }) {
      const slow = members.find((member) => member.member === 'slow-member') as Member
      await reached(1)
      // The server may have closed it long before it reads up to the close frame: wait for that, and for its return.
      const closedByServer = await (nodes[0] as ChaosNode).metric('chat_slow_consumer_closes_total')
      if (closedByServer > 0) await waitFor(() => slow.resumes > 0, 'the slow member back', RECOVERY_TIMEOUT_MS * 2, 50).catch(() => {})
      // 1013 once it reads up to the close frame; 1006 if it read too slowly even for that and was terminated (PROTOCOL §5).
      const closedSlow = slow.closes.filter((code) => code === 1013 || code === 1006)
      const others = slow.closes.filter((code) => code !== 1013 && code !== 1006)
      return {
        ok: others.length === 0 && closedSlow.length === closedByServer && slow.resumes >= closedSlow.length,
        note: (closedSlow.length > 0
          ? `the slow member was closed ${closedSlow.join(', ')} (server counted ${closedByServer} slow-consumer closes) and resumed ${slow.resumes}×`
          : `the slow member kept up (server counted ${closedByServer} slow-consumer closes)`) +
          (others.length > 0 ? `; unexpected closes ${others.join(', ')}` : '')
      }
    }
  }
]

/** Whether `scenario` runs on `topology`: declared for it, and every fault it needs offered. */
export function applies (scenario: Scenario, topology: Topology): boolean {
  return scenario.topologies.includes(topology.name) && scenario.needs.every((fault) => topology.offers.includes(fault))
}

/**
 * The runs of a matrix, topology by topology. In the short form a scenario
 * that injects no Redis fault (a node killed, a slow client) runs on the
 * first topology only: what it tests does not depend on the topology, and CI
 * time does.
 */
export function matrix (scenarios: Scenario[], topologies: Topology[], short: boolean): Array<{ scenario: Scenario, topology: Topology }> {
  const runs: Array<{ scenario: Scenario, topology: Topology }> = []
  topologies.forEach((topology, index) => {
    for (const scenario of scenarios) {
      if (!applies(scenario, topology)) continue
      if (short && index > 0 && scenario.needs.length === 0) continue
      runs.push({ scenario, topology })
    }
  })
  return runs
}
