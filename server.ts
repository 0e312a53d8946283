// Process entry point: reads the configuration, listens, and shuts down
// gracefully on SIGTERM/SIGINT (PROTOCOL §5).
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './lib/config.js'

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

let stopping = false
async function shutdown (signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  app.log.info({ signal }, 'shutting down')
  // Safety net: never outlive the grace period by much.
  setTimeout(() => {
    app.log.error('shutdown took too long; exiting')
    process.exit(1)
  }, config.shutdownGraceMs + 5000).unref()
  await app.lifecycle.drain()
  await app.close()
  app.log.info('stopped')
}

process.once('SIGTERM', () => { shutdown('SIGTERM').catch((error) => { app.log.error(error); process.exit(1) }) })
process.once('SIGINT', () => { shutdown('SIGINT').catch((error) => { app.log.error(error); process.exit(1) }) })

try {
  await app.listen({ port: config.port, host: config.host })
} catch (error) {
  app.log.error(error)
  process.exit(1)
}
