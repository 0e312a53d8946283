// A Redis Cluster (REDIS_CLUSTER_NODES): three masters with one replica each,
// from test/helpers/redis-cluster.ts. Faults: pub/sub connections killed on
// every master, a master SIGKILLed (its replica promoted), and the slot of a
// room moved to another master with `redis-cli --cluster reshard`.
import { execFile, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import { keySlot } from '../../../lib/key-slot.js'
import { RedisCluster, type ClusterNode } from '../../../test/helpers/redis-cluster.js'
import { waitFor } from '../../../test/helpers/wait.js'
import type { Scope } from '../scope.js'
import type { RunningTopology, Topology } from '../topology.js'

const run = promisify(execFile)

/** Detection (cluster-node-timeout 2 s), election and promotion, on a busy machine. */
const PROMOTION_TIMEOUT_MS = 30_000
const RESHARD_TIMEOUT_MS = 60_000
/** Slots a reshard moves at most: the moved room's slot is kept near the start of its master's range. */
const MOVABLE_SLOTS = 64
/** Names tried for a room whose slot is cheap to move. */
const NAME_ATTEMPTS = 100_000

interface SlotOwner {
  node: ClusterNode
  id: string
  /** Its slots, ascending. */
  slots: number[]
}

async function owners (cluster: RedisCluster): Promise<SlotOwner[]> {
  const masters = await cluster.masters()
  return await Promise.all(masters.map(async (node) => {
    const id = String(await cluster.command(node.port, 'CLUSTER', 'MYID'))
    const shards = await cluster.command(node.port, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number, string]]>
    const slots: number[] = []
    for (const [from, to, [, , ownerId]] of shards) if (ownerId === id) for (let slot = from; slot <= to; slot++) slots.push(slot)
    return { node, id, slots }
  }))
}

/** Whether every live node says `cluster_state:ok` and three masters serve. */
async function healthy (cluster: RedisCluster, dead: Set<number>): Promise<boolean> {
  try {
    for (const node of cluster.nodes) {
      if (dead.has(node.port)) continue
      if (!String(await cluster.command(node.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false
    }
    return (await cluster.masters()).filter((node) => !dead.has(node.port)).length === 3
  } catch {
    return false
  }
}

export const cluster: Topology = {
  name: 'cluster',
  description: 'a Redis Cluster of three masters with one replica each (REDIS_CLUSTER_NODES), cluster-node-timeout 2 s, appendonly',
  offers: ['killPubsub', 'killMaster', 'reshard'],
  unavailable: () => spawnSync('redis-cli', ['--version']).status === 0 ? undefined : 'redis-cli is not installed',
  // Ranges as `redis-cli --cluster create` splits 16384 slots over three masters.
  movableRoom (base: string): string {
    const starts = [0, 5461, 10923]
    for (let attempt = 0; attempt < NAME_ATTEMPTS; attempt++) {
      const room = `${base}.${attempt}`
      const slot = keySlot(room)
      if (starts.some((start) => slot >= start && slot < start + MOVABLE_SLOTS)) return room
    }
    return base
  },
  async start (scope: Scope): Promise<RunningTopology> {
    const redis = await RedisCluster.start(scope.asTest)
    const dead = new Set<number>()
    return {
      nodeEnv: () => ({ REDIS_CLUSTER_NODES: redis.seeds }),
      faults: {
        async killPubsub () {
          let killed = 0
          for (const node of await redis.masters()) {
            if (dead.has(node.port)) continue
            killed += Number(await redis.command(node.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub').catch(() => 0))
          }
          return killed
        },
        async killMaster (room: string) {
          const slot = keySlot(room)
          const victim = (await owners(redis)).find((owner) => owner.slots.includes(slot))?.node
          if (victim === undefined) throw new Error(`no master serves slot ${slot}`)
          const startedAt = Date.now()
          const exited = new Promise((resolve) => victim.process.once('exit', resolve))
          victim.process.kill('SIGKILL')
          await exited
          dead.add(victim.port)
          await waitFor(() => healthy(redis, dead), 'a replica promoted and the cluster ok', PROMOTION_TIMEOUT_MS, 100)
          return `master :${victim.port} (slot ${slot}, room ${room}) SIGKILLed, its replica promoted after ${Date.now() - startedAt} ms`
        },
        async reshard (room: string) {
          const slot = keySlot(room)
          const all = await owners(redis)
          const source = all.find((owner) => owner.slots.includes(slot))
          const target = all.find((owner) => owner !== source)
          if (source === undefined || target === undefined) throw new Error(`no owner for slot ${slot}`)
          const count = source.slots.filter((owned) => owned <= slot).length
          const startedAt = Date.now()
          await run('redis-cli', ['--cluster', 'reshard', source.node.address, '--cluster-from', source.id, '--cluster-to', target.id,
            '--cluster-slots', String(count), '--cluster-yes'], { timeout: RESHARD_TIMEOUT_MS })
          const moved = (await owners(redis)).find((owner) => owner.slots.includes(slot))?.id === target.id
          return `slot ${slot} (room ${room}) ${moved ? 'moved' : 'NOT moved'} from :${source.node.port} to :${target.node.port} with ${count} slots in ${Date.now() - startedAt} ms`
        }
      }
    }
  }
}
