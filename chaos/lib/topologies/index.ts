// Every topology the harness knows, in the order of the report.
import type { Topology } from '../topology.js'
import { cluster } from './cluster.js'
import { sentinel } from './sentinel.js'
import { single } from './single.js'

export const TOPOLOGIES: Topology[] = [
  single,
  sentinel,
  cluster
]
