// Service nodes of a chaos run: real `server.ts` processes (NodeProcess),
// each pointed at the topology, some through its proxy.
import { CLUSTER_ENV, readiness } from '../../test/helpers/cluster.js'
import { metric } from '../../test/helpers/http.js'
import { NodeProcess } from '../../test/helpers/node-process.js'
import { TEST_TOKEN } from '../../test/helpers/server.js'
import { waitFor } from '../../test/helpers/wait.js'
import { messageKey } from './clients.js'
import type { Scope } from './scope.js'
import type { RunningTopology } from './topology.js'

/** Node ids, in order: scenarios name nodes by index. */
export const NODE_IDS = ['a', 'b']
/** A node that starts on a busy machine: tsx compiles the server first. */
const READY_TIMEOUT_MS = 60_000
/** Every stored message of a room fits in one history page (the API's maximum). */
export const HISTORY_PAGE_MAX = 1000

export const NODE_ENV: Record<string, string> = {
  ...CLUSTER_ENV,
  HISTORY_SIZE: String(HISTORY_PAGE_MAX),
  // Slow-client messages are large; the log must keep every one of them.
  HISTORY_MAX_BYTES: String(256 * 1024 * 1024),
  MAX_TEXT_LENGTH: String(64 * 1024)
}

export class ChaosNode {
  killed = false

  constructor (readonly id: string, readonly process: NodeProcess) {}

  get url (): string {
    return this.process.url
  }

  get wsUrl (): string {
    return this.process.wsUrl
  }

  readiness (): Promise<number> {
    return readiness(this.url).catch(() => 0)
  }

  metric (name: string): Promise<number> {
    return metric(this.url, name).then((value) => value ?? 0, () => 0)
  }

  async kill (): Promise<void> {
    this.killed = true
    this.process.kill('SIGKILL')
    await this.process.exited
  }

  /** The room's stored messages (their tally keys), oldest first (GET /rooms/:id/messages). */
  async history (room: string): Promise<string[]> {
    const response = await fetch(`${this.url}/rooms/${encodeURIComponent(room)}/messages?limit=${HISTORY_PAGE_MAX}`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` }
    })
    if (response.status !== 200) throw new Error(`history of ${room} on node ${this.id} answered ${response.status} ${(await response.text()).slice(0, 200)}`)
    return ((await response.json()) as { messages: Array<{ id: string, text: string }> }).messages.map((message) => messageKey(message.id, message.text))
  }
}

/** Starts the nodes in parallel and waits until every one is ready (its probe came back through Redis). */
export async function startNodes (scope: Scope, topology: RunningTopology, proxied: number[], env: Record<string, string>): Promise<ChaosNode[]> {
  const nodes = await Promise.all(NODE_IDS.map(async (id, index) => {
    const process = await NodeProcess.start(scope.asTest, { ...NODE_ENV, ...env, ...topology.nodeEnv(id, proxied.includes(index)), NODE_ID: id })
    return new ChaosNode(id, process)
  }))
  for (const node of nodes) await waitFor(async () => await node.readiness() === 200, `node ${node.id} ready`, READY_TIMEOUT_MS, 100)
  return nodes
}
