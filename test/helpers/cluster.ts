// Cluster nodes for a test: in-process app instances sharing one redis-server,
// each waited on until its readiness probe has come back through Redis.
import type { Test } from 'tap'
import { RedisServer } from './redis-server.js'
import { startServer, type RunningServer } from './server.js'
import type { Frame } from './ws-client.js'
import { waitFor } from './wait.js'

/** Short probe period so readiness reacts within a test; limits out of the way of load loops. */
export const CLUSTER_ENV = { READY_PROBE_MS: '100', RATE_LIMIT_PER_SEC: '1000', RATE_LIMIT_BURST: '1000', FRAME_RATE_PER_SEC: '1000', FRAME_BURST: '1000', PRESENCE_BATCH_MS: '0' }

export async function readiness (url: string): Promise<number> {
  return (await fetch(`${url}/health/ready`)).status
}

export async function startNode (t: Test, redis: { url: string }, nodeId: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const server = await startServer(t, { ...CLUSTER_ENV, REDIS_URL: redis.url, NODE_ID: nodeId, ...env })
  await waitFor(async () => await readiness(server.url) === 200, `node ${nodeId} ready`)
  return server
}

/** A redis-server of the test's own and two ready nodes on it, `a` and `b`. */
export async function startCluster (t: Test): Promise<{ redis: RedisServer, a: RunningServer, b: RunningServer }> {
  const redis = await RedisServer.start(t)
  const a = await startNode(t, redis, 'a')
  const b = await startNode(t, redis, 'b')
  return { redis, a, b }
}

export const ids = (frames: Frame[]) => frames.map((f) => f.id)
