// One scenario on one topology: start Redis and the nodes, connect members
// and publishers, run the traffic with the fault injected meanwhile, let it
// settle, read every room's log back, count. Whatever happens, everything
// started is stopped.
import { waitFor } from '../../test/helpers/wait.js'
import { BroadcastPublisher, Member, Publisher, sleep } from './clients.js'
import type { ChaosNode } from './nodes.js'
import { startNodes } from './nodes.js'
import type { Plan } from './plan.js'
import type { Evidence, Scenario } from './scenarios.js'
import { Scope } from './scope.js'
import { emptyCounts, tally, type Counts } from './tally.js'
import type { Topology } from './topology.js'

/** Sends still unanswered this long after the last one stay unknown. */
const ANSWER_TIMEOUT_MS = 20_000
/** Members that have not received the whole log this long after the answers are counted as they are. */
const SETTLE_TIMEOUT_MS = 30_000
/** The fault injector must be done this long after the traffic. */
const FAULT_TIMEOUT_MS = 60_000

export interface Result {
  scenario: string
  topology: string
  counts: Counts
  evidence: Evidence
  /** Messages received but absent from the log are reported, not failed (a failover's lost tail). */
  tailMayVanish: boolean
  /** Set when the run itself failed (a node did not start, …): the verdict is a failure. */
  error: string | undefined
  durationMs: number
}

export type Log = (message: string) => void

/** Reading a long log back may hit the command timeout on a busy machine: a few tries. */
const HISTORY_ATTEMPTS = 5

async function readHistory (node: ChaosNode, room: string): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await node.history(room)
    } catch (error) {
      if (attempt >= HISTORY_ATTEMPTS) throw error
      await sleep(1000)
    }
  }
}

/** Receipts this close after a resume count as the resume's. */
const RESUME_WINDOW = 50

/** Who received a message twice, and whether it came right after one of its resumes: a clue for whoever reads a failing row. */
function whereDuplicated (members: Member[]): string[] {
  const found: string[] = []
  for (const member of members) {
    for (const [room, got] of member.received) {
      const seen = new Set<string>()
      let afterResume = 0
      let elsewhere = 0
      got.forEach((key, index) => {
        if (!seen.has(key)) {
          seen.add(key)
          return
        }
        const marks = member.resumeMarks.get(room) ?? []
        if (marks.some((mark) => index >= mark && index < mark + RESUME_WINDOW)) afterResume++
        else elsewhere++
      })
      if (afterResume > 0) found.push(`${member.member} in ${room}: ${afterResume} right after a resume with since`)
      if (elsewhere > 0) found.push(`${member.member} in ${room}: ${elsewhere}`)
    }
  }
  return found
}

function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms) })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export async function runScenario (scenario: Scenario, topology: Topology, basePlan: Plan, log: Log): Promise<Result> {
  const plan = { ...basePlan, ...scenario.traffic }
  const startedAt = Date.now()
  const scope = new Scope()
  const result: Result = { scenario: scenario.id, topology: topology.name, counts: emptyCounts(), evidence: { ok: false, note: '' }, tailMayVanish: scenario.tailMayVanish === true, error: undefined, durationMs: 0 }
  let members: Member[] = []
  let publishers: Array<Publisher | BroadcastPublisher> = []
  try {
    const running = await topology.start(scope)
    const nodes = await startNodes(scope, running, scenario.proxied ?? [], scenario.nodeEnv ?? {})
    // A member whose node is gone finds the next one: a dead node refuses the connection.
    const urls = nodes.map((node) => node.wsUrl)
    const rooms = Array.from({ length: plan.rooms }, (_, index) => `chaos.${scenario.id}.${topology.name}.r${index}`)
    if (scenario.movesFirstRoom === true && topology.movableRoom !== undefined) rooms[0] = topology.movableRoom(rooms[0] as string)
    members = nodes.flatMap((node, index) => Array.from({ length: plan.membersPerNode }, (_, n) =>
      new Member(`member-${node.id}${n}`, rooms, urls, index)))
    if (scenario.slowMember) {
      const home = nodes[0] as ChaosNode
      const released = async () => await home.metric('chat_slow_consumer_closes_total') > 0
      members.push(new Member('slow-member', rooms, urls, 0, { stallMs: scenario.slowMember.stallMs, released }))
    }
    await Promise.all(members.map((member) => member.start()))
    publishers = rooms.map((room, index) => {
      const node = nodes[(scenario.publisherNode ?? ((r: number, n: number) => r % n))(index, nodes.length)] as ChaosNode
      return scenario.publishOverHttp === true
        ? new BroadcastPublisher(`publisher-${index}`, room, node.url, scenario.textBytes ?? 64)
        : new Publisher(`publisher-${index}`, room, node.wsUrl, scenario.textBytes ?? 64)
    })
    await Promise.all(publishers.map((publisher) => publisher.start()))
    log(`${scenario.id}/${topology.name}: ${nodes.length} nodes ready, ${members.length} members, ${publishers.length} publishers; traffic starts`)

    const total = plan.messagesPerRoom * publishers.length
    const progress = () => publishers.reduce((sum, publisher) => sum + publisher.sent, 0) / total
    let trafficDone = false
    const traffic = Promise.all(publishers.map((publisher) => publisher.run(plan.messagesPerRoom, plan.ratePerRoom))).finally(() => { trafficDone = true })
    const injected = scenario.inject({
      faults: running.faults,
      rooms,
      nodes,
      plan,
      members,
      publishers,
      progress,
      done: () => trafficDone,
      reached: (fraction) => waitFor(() => progress() >= fraction || trafficDone, `${Math.round(fraction * 100)} % of the traffic sent`, FAULT_TIMEOUT_MS, 20)
    })
    // A fault that could not be injected fails the run, but what the clients saw is still counted.
    const evidence = withTimeout(injected, FAULT_TIMEOUT_MS, 'the fault injector')
      .catch((error: Error): Evidence => ({ ok: false, note: `the fault injection failed: ${error.message.split('\n')[0] ?? ''}` }))
    await traffic
    result.evidence = await evidence
    await waitFor(() => publishers.every((publisher) => publisher.answered), 'every send answered', ANSWER_TIMEOUT_MS, 50).catch(() => {})

    const reader = nodes.find((node) => !node.killed) as ChaosNode
    const history = new Map<string, string[]>()
    for (const room of rooms) history.set(room, await readHistory(reader, room))
    const expected = new Map<string, Set<string>>()
    for (const publisher of publishers) expected.set(publisher.room, new Set([...(history.get(publisher.room) ?? []), ...publisher.acked]))
    await waitFor(() => members.every((member) => member.gaveUp !== undefined || (member.connected && member.has(expected))), 'every member has the whole log', SETTLE_TIMEOUT_MS, 50).catch(() => {})
    // Nothing more is on its way: what is missing now is missing.
    await Promise.all(members.map((member) => member.barrier().catch(() => {})))
    await sleep(100)
    result.counts = tally(publishers, members, history)
    if (result.counts.phantom > 0) result.evidence.note += `; ${result.counts.phantom} receipts of messages absent from the log`
    if (result.counts.duplicated > 0) result.evidence.note += `; duplicates: ${whereDuplicated(members).join(', ')}`
    const problems = [
      ...members.filter((member) => member.gaveUp !== undefined).map((member) => `${member.member} ${member.gaveUp as string}`),
      ...publishers.filter((publisher) => publisher.closedWith !== undefined).map((publisher) => `${publisher.name} was closed with ${publisher.closedWith as string}`),
      ...publishers.flatMap((publisher) => publisher.otherErrors.slice(0, 3).map((error) => `${publisher.name}: ${error}`))
    ]
    if (problems.length > 0) result.evidence = { ok: false, note: `${result.evidence.note}; ${problems.join('; ')}` }
  } catch (error) {
    result.error = (error as Error).message.split('\n')[0] ?? 'unknown error'
  } finally {
    for (const member of members) member.stop()
    for (const publisher of publishers) publisher.stop()
    await scope.close()
  }
  result.durationMs = Date.now() - startedAt
  return result
}
