// One cluster node's Redis side for tests of lib/redis-*.ts: its two
// connections (with the production options), a RedisBroker and a
// RedisPresence on them, and everything they report or deliver.
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import type { StoredMessage } from '../../lib/frames.js'
import { RedisBroker } from '../../lib/redis-broker.js'
import { RedisPresence } from '../../lib/redis-presence.js'
import { connectionOptions } from '../../lib/redis-topology.js'
import type { RedisServer } from './redis-server.js'

export interface Reported {
  error: unknown
  context: string
}

export interface RemoteChange {
  room: string
  joined: string[]
  left: string[]
}

export interface RedisNode {
  broker: RedisBroker
  presence: RedisPresence
  command: Redis
  delivered: StoredMessage[]
  remoteChanges: RemoteChange[]
  reported: Reported[]
}

/** Bounds of the nodes' room logs, small enough for tests to reach. */
export const TEST_LOG_BOUNDS = { historySize: 100, historyMaxBytes: 64 * 1024, historyTtlS: 3600 }

/**
 * A node on `server` (a RedisServer, or anything with its `url`, such as a
 * proxy in front of one); `options` overrides TEST_LOG_BOUNDS and may set
 * `waitReplicas`.
 */
export async function startRedisNode (
  t: Test, server: Pick<RedisServer, 'url'>, nodeId: string, options: Partial<typeof TEST_LOG_BOUNDS> & { waitReplicas?: number } = {}
): Promise<RedisNode> {
  const command = new Redis(server.url, connectionOptions(`test:${nodeId}:command`))
  const subscriber = new Redis(server.url, connectionOptions(`test:${nodeId}:subscriber`))
  // With waitReplicas, publishes and their WAITs go on a connection of their own, as in plugins/broker.ts.
  const publisher = (options.waitReplicas ?? 0) > 0 ? new Redis(server.url, connectionOptions(`test:${nodeId}:publisher`)) : undefined
  const clients = publisher === undefined ? [command, subscriber] : [command, subscriber, publisher]
  for (const client of clients) client.on('error', () => {})
  await Promise.all(clients.map((client) => client.connect()))
  const reported: Reported[] = []
  const onError = (error: unknown, context: string) => reported.push({ error, context })
  const broker = new RedisBroker({ command, subscriber, replicatedPublisher: publisher, nodeId, ...TEST_LOG_BOUNDS, ...options, readyProbeMs: 100, onError })
  const presence = new RedisPresence({ command, channel: broker, nodeId, presenceTtlMs: 3000, onError })
  const delivered: StoredMessage[] = []
  const remoteChanges: RemoteChange[] = []
  await broker.start((message) => delivered.push(message))
  await presence.start((room, joined, left) => remoteChanges.push({ room, joined, left }))
  t.teardown(async () => {
    await Promise.all([presence.close(), broker.close()])
    for (const client of clients) client.disconnect()
  })
  return { broker, presence, command, delivered, remoteChanges, reported }
}
