// Redis connections for cluster mode (@fastify/redis): one for commands and
// one for subscribing, which can do nothing else. Both must connect at start
// (a clear error otherwise); afterwards they reconnect with backoff forever,
// and commands fail fast while Redis is away so sends get `unavailable`.
import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import { Redis, type RedisOptions } from 'ioredis'
import { REDIS_COMMAND_TIMEOUT_MS, REDIS_RECONNECT_MAX_MS, REDIS_RECONNECT_MIN_MS } from '../lib/limits.js'

/** The URL without its password, for messages and logs. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'an unparsable URL'
  }
}

/** Options of both connections (exported so tests of the Redis code run with the same). */
export function connectionOptions (name: string): RedisOptions {
  return {
    connectionName: name,
    lazyConnect: true,
    // Fail fast while disconnected: the caller answers `unavailable` rather than waiting.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    // The broker resubscribes itself, so it knows when to repair gaps.
    autoResubscribe: false,
    // Commands issued in one turn of the event loop leave in one write, and
    // Redis reads them in one go: what a stored message costs Redis is then
    // close to the pipelined figure (docs/scaling.md). Subscribe commands
    // never wait in such a batch, and neither does PUBLISH: a batch leaves
    // only once the one before it is answered, and the readiness probe must
    // not wait behind a node's burst of reads (nor presence changes).
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: ['publish'],
    retryStrategy: (attempt) => Math.min(REDIS_RECONNECT_MAX_MS, REDIS_RECONNECT_MIN_MS * 2 ** Math.min(attempt, 10))
  }
}

export default fp(async function redisPlugin (fastify) {
  const url = fastify.config.redisUrl
  if (url === undefined) throw new Error('the redis plugin needs REDIS_URL')
  const { nodeId } = fastify.config
  const command = new Redis(url, connectionOptions(`chat:${nodeId}:command`))
  const subscriber = new Redis(url, connectionOptions(`chat:${nodeId}:subscriber`))
  // ioredis rejects connect() with "Connection is closed"; the cause is the last error event.
  let lastError: Error | undefined
  for (const [role, client] of [['command', command], ['subscriber', subscriber]] as const) {
    client.on('error', (error) => {
      lastError = error
      fastify.log.warn({ err: error, role }, 'redis connection error')
    })
    client.on('reconnecting', () => fastify.log.warn({ role }, 'redis reconnecting'))
  }
  try {
    await Promise.all([command.connect(), subscriber.connect()])
  } catch (error) {
    command.disconnect()
    subscriber.disconnect()
    const cause = (lastError ?? error as Error).message.replace(/\.$/, '')
    throw new Error(`cannot connect to Redis at ${redactUrl(url)} (REDIS_URL): ${cause}. Start Redis or fix REDIS_URL; unset it to run a single node in memory`)
  }
  // Namespaces: fastify.redis.store (commands, scripts, publishes; "command"
  // would shadow Redis#command) and fastify.redis.subscriber.
  await fastify.register(fastifyRedis, { client: command, namespace: 'store' })
  await fastify.register(fastifyRedis, { client: subscriber, namespace: 'subscriber' })
  fastify.addHook('onClose', async () => {
    // quit() waits for replies; if Redis is away there is nothing to wait for.
    await Promise.all([command, subscriber].map((client) => client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect()))
  })
}, { name: 'redis', dependencies: ['config'] })
