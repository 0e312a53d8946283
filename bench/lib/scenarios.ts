// The bench's scenarios, full size and `--quick` (a smoke test of each).
// Sizes and rate steps are chosen so the full run takes a few minutes.

export interface FanoutScenario {
  id: string
  title: string
  kind: 'fanout'
  /** Two product nodes over Redis (the baseline stays one ws node). */
  cluster: boolean
  /** With `cluster`: over a local Redis Cluster of three masters (one replica each) instead of one redis-server. */
  redisCluster?: boolean
  rooms: number
  subscribersPerRoom: number
  /** The same subscribers are in every room (`subscribersPerRoom` clients in all), instead of their own per room. */
  subscribersInEveryRoom: boolean
  /** Total messages per second over all rooms. */
  steps: number[]
  warmupMs: number
  measureMs: number
  drainMs: number
  pauseMs: number
}

export interface MemoryScenario {
  id: string
  title: string
  kind: 'memory'
  rooms: number
  connections: number
  settleMs: number
}

export interface JoinStormScenario {
  id: string
  title: string
  kind: 'join-storm'
  clients: number
  timeoutMs: number
}

export type Scenario = FanoutScenario | MemoryScenario | JoinStormScenario

const FULL_TIMING = { warmupMs: 1000, measureMs: 3000, drainMs: 10_000, pauseMs: 500 }
const QUICK_TIMING = { warmupMs: 300, measureMs: 700, drainMs: 3000, pauseMs: 100 }

export function scenarios (quick: boolean): Scenario[] {
  const timing = quick ? QUICK_TIMING : FULL_TIMING
  return [
    {
      id: 'a',
      title: quick ? '1 room x 50 subscribers, 1 publisher' : '1 room x 1000 subscribers, 1 publisher',
      kind: 'fanout',
      cluster: false,
      subscribersInEveryRoom: false,
      rooms: 1,
      subscribersPerRoom: quick ? 50 : 1000,
      steps: quick ? [50] : [20, 50, 100],
      ...timing
    },
    {
      id: 'b',
      title: quick ? '10 rooms x 5 subscribers, a publisher per room' : '100 rooms x 20 subscribers, a publisher per room',
      kind: 'fanout',
      cluster: false,
      subscribersInEveryRoom: false,
      rooms: quick ? 10 : 100,
      subscribersPerRoom: quick ? 5 : 20,
      steps: quick ? [200] : [500, 1000, 2000],
      ...timing
    },
    {
      id: 'c',
      title: quick
        ? 'cluster: 2 nodes + Redis, 1 room x 50 subscribers split, publisher on node 1'
        : 'cluster: 2 nodes + Redis, 1 room x 1000 subscribers split, publisher on node 1',
      kind: 'fanout',
      cluster: true,
      subscribersInEveryRoom: false,
      rooms: 1,
      subscribersPerRoom: quick ? 50 : 1000,
      steps: quick ? [50] : [20, 50, 100],
      ...timing
    },
    {
      id: 'g',
      title: quick
        ? 'cluster: 2 nodes + a 3-master Redis Cluster, 3 rooms x 20 subscribers split, publisher on node 1'
        : 'cluster: 2 nodes + a 3-master Redis Cluster, 3 rooms x 300 subscribers split, publisher on node 1',
      kind: 'fanout',
      cluster: true,
      redisCluster: true,
      subscribersInEveryRoom: false,
      rooms: 3,
      subscribersPerRoom: quick ? 20 : 300,
      steps: quick ? [50] : [20, 50, 100],
      ...timing
    },
    {
      id: 'f',
      title: quick
        ? 'clients in many busy rooms: 10 subscribers each in all of 5 rooms, a publisher per room'
        : 'clients in many busy rooms: 50 subscribers each in all of 20 rooms, a publisher per room',
      kind: 'fanout',
      cluster: false,
      subscribersInEveryRoom: true,
      rooms: quick ? 5 : 20,
      subscribersPerRoom: quick ? 10 : 50,
      // Each subscriber gets the whole rate: 500 to 2000 messages a second per connection.
      steps: quick ? [200] : [500, 1000, 1500, 2000],
      ...timing
    },
    {
      id: 'd',
      title: quick ? 'memory: 200 idle connections over 10 rooms' : 'memory: 5000 idle connections over 100 rooms',
      kind: 'memory',
      rooms: quick ? 10 : 100,
      connections: quick ? 200 : 5000,
      settleMs: quick ? 300 : 2000
    },
    {
      id: 'e',
      title: quick ? 'join storm: 100 clients join one room' : 'join storm: 1000 clients join one room',
      kind: 'join-storm',
      clients: quick ? 100 : 1000,
      timeoutMs: 60_000
    }
  ]
}

/** Most connections one process holds in a scenario (for the open-files check). */
export function connectionsNeeded (scenario: Scenario): number {
  switch (scenario.kind) {
    case 'fanout': return scenario.subscribersInEveryRoom ? scenario.subscribersPerRoom + scenario.rooms : scenario.rooms * (scenario.subscribersPerRoom + 1)
    case 'memory': return scenario.connections
    case 'join-storm': return scenario.clients
  }
}
