// Starts the application in-process on a free loopback port for a test.
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../app.js'
import { loadConfig, type Config } from '../../lib/config.js'

export const TEST_TOKEN = 'test-token-0123456789abcdef'

/** A configuration from the contract's defaults, with overrides in environment-variable form. */
export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({ BROADCAST_TOKEN: TEST_TOKEN, NODE_ID: 'test-node', ...env })
}

export interface RunningServer {
  app: FastifyInstance
  /** http://127.0.0.1:PORT */
  url: string
  /** ws://127.0.0.1:PORT/ws */
  wsUrl: string
}

/** Builds and listens on 127.0.0.1:0; closed in the test's teardown. */
export async function startServer (t: Test, env: Record<string, string> = {}): Promise<RunningServer> {
  const app = await buildApp(testConfig(env))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address')
  const url = `http://127.0.0.1:${address.port}`
  return { app, url, wsUrl: `ws://127.0.0.1:${address.port}/ws` }
}
