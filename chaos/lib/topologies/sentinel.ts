// A Sentinel set (REDIS_SENTINELS + REDIS_SENTINEL_MASTER): a master, one
// replica and three sentinels, from test/helpers/redis-sentinel.ts. Its
// failover kills the master, waits for the sentinels to promote the replica,
// then starts the old master again (the sentinels make it a replica of the
// new one), so acknowledgements with REDIS_WAIT_REPLICAS=1 resume.
import { spawnSync } from 'node:child_process'
import { SENTINEL_MASTER, SentinelSet } from '../../../test/helpers/redis-sentinel.js'
import type { RedisServer } from '../../../test/helpers/redis-server.js'
import type { Scope } from '../scope.js'
import type { RunningTopology, Topology } from '../topology.js'

async function killPubsub (server: RedisServer): Promise<number> {
  try {
    return Number(await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub'))
  } catch {
    return 0
  }
}

export const sentinel: Topology = {
  name: 'sentinel',
  description: 'a master, a replica and three sentinels (REDIS_SENTINELS, REDIS_SENTINEL_MASTER), appendonly',
  offers: ['killPubsub', 'failover'],
  unavailable: () => spawnSync('redis-server', ['--version']).status === 0 ? undefined : 'redis-server is not installed',
  async start (scope: Scope): Promise<RunningTopology> {
    const set = await SentinelSet.start(scope.asTest)
    return {
      nodeEnv: () => ({ REDIS_SENTINELS: set.addresses, REDIS_SENTINEL_MASTER: SENTINEL_MASTER }),
      faults: {
        killPubsub: async () => await killPubsub(set.master) + await killPubsub(set.replica),
        async failover () {
          const from = await set.masterPort()
          const startedAt = Date.now()
          await set.failover()
          const promotedMs = Date.now() - startedAt
          await set.master.restart()
          return `master :${from} SIGKILLed, replica :${set.replica.port} promoted after ${promotedMs} ms, old master back as a replica`
        }
      }
    }
  }
}
