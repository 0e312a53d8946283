// Every topology the harness knows, in the order of the report.
import type { Topology } from '../topology.js'
import { cluster } from './cluster.js'
import { single } from './single.js'

/** A topology whose fixture this tree does not have yet: listed, never run. */
function missing (name: 'sentinel', description: string, reason: string): Topology {
  return {
    name,
    description,
    offers: [],
    unavailable: () => reason,
    start: () => Promise.reject(new Error(reason))
  }
}

export const TOPOLOGIES: Topology[] = [
  single,
  missing('sentinel', 'a master, a replica and three sentinels (REDIS_SENTINELS)', 'no Sentinel fixture in this tree yet (test/helpers/redis-sentinel.ts)'),
  cluster
]
