// Process entry point: reads the configuration, listens, and shuts down
// gracefully on a signal or an unexpected error (PROTOCOL §5).
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { buildApp, buildInternalApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './lib/config.js'
import { SHUTDOWN_SAFETY_MARGIN_MS } from './lib/limits.js'

function readConfig (): Config {
  try {
    return loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`invalid configuration: ${problem}\n`)
      process.exit(1)
    }
    throw error
  }
}

async function build (config: Config): Promise<FastifyInstance> {
  try {
    return await buildApp(config, {
      logger: { level: config.logLevel },
      // Upgraded sockets are closed by the drain; plain HTTP keep-alives may linger.
      forceCloseConnections: true
    })
  } catch (error) {
    process.stderr.write(`cannot start: ${(error as Error).message}\n`)
    process.exit(1)
  }
}

const config = readConfig()
const app = await build(config)
// INTERNAL_PORT: /metrics moves to a listener of its own (PROTOCOL §4).
const internal = config.internalPort === undefined
  ? undefined
  : await buildInternalApp(app, { logger: { level: config.logLevel } })

// Signals (SIGTERM, SIGINT…) and unexpected errors (uncaughtException,
// unhandledRejection) end the process the same way (PROTOCOL §5): every
// connection is drained with 1001, then the app is closed; a signal exits 0,
// an error is logged and exits 1.
closeWithGrace({
  // Safety net: never outlive the grace period by much.
  delay: config.shutdownGraceMs + SHUTDOWN_SAFETY_MARGIN_MS,
  logger: app.log,
  onTimeout: () => app.log.error('shutdown took too long; exiting')
}, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'unexpected error; draining connections, then exiting with 1')
  else app.log.info({ signal }, 'shutting down')
  // The drain comes before app.close(): once closing begins, Fastify answers
  // 503 to every request, and /health/live must keep answering (and readiness
  // keep saying why it is 503) while connections are closed in batches.
  app.log.info({ connections: app.connections.size }, 'draining connections')
  const report = await app.connections.drain()
  app.log.info(report, 'drain complete')
  await app.close()
  // Last, so the metrics can be scraped while the node drains.
  await internal?.close()
  app.log.info('stopped')
})

try {
  await app.listen({ port: config.port, host: config.host })
  await internal?.listen({ port: config.internalPort, host: config.host })
} catch (error) {
  app.log.error(error)
  process.exit(1)
}
