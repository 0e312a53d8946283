// One redis-server (REDIS_URL), append-only with fsync on every write, with a
// TCP proxy in front for the nodes whose connections a fault must reach.
import { spawnSync } from 'node:child_process'
import { RedisServer } from '../../../test/helpers/redis-server.js'
import { TcpProxy } from '../../../test/helpers/tcp-proxy.js'
import type { Scope } from '../scope.js'
import type { RunningTopology, Topology } from '../topology.js'

export const single: Topology = {
  name: 'single',
  description: 'one redis-server (REDIS_URL, appendonly, appendfsync always)',
  offers: ['killPubsub', 'restart', 'freezeSubscription', 'delayCommands'],
  unavailable: () => spawnSync('redis-server', ['--version']).status === 0 ? undefined : 'redis-server is not installed',
  async start (scope: Scope): Promise<RunningTopology> {
    const redis = await RedisServer.start(scope.asTest)
    const proxy = await TcpProxy.start(scope.asTest, redis.port)
    return {
      nodeEnv: (_nodeId, proxied) => ({ REDIS_URL: `redis://127.0.0.1:${proxied ? proxy.port : redis.port}` }),
      faults: {
        killPubsub: async () => Number(await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')),
        async restart (downMs) {
          await redis.stop()
          await new Promise((resolve) => setTimeout(resolve, downMs))
          await redis.restart()
        },
        freezeSubscription: (nodeId) => proxy.blackHole(`chat:${nodeId}:subscriber`),
        delayCommands: (nodeId, ms) => proxy.delayReplies(`chat:${nodeId}:command`, ms)
      }
    }
  }
}
