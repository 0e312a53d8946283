// Route-test helpers: the app built in-process (no listener) and closed in
// teardown, and WebSocket clients over `injectWS` that record every frame.
import type { FastifyInstance } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Test } from 'tap'
import { buildApp } from '../../app.js'
import { TEST_TOKEN, testConfig } from './server.js'
import { TestClient } from './ws-client.js'

export const AUTH = { authorization: `Bearer ${TEST_TOKEN}` }

/** Builds the app from the contract's defaults plus `env`; closed in the test's teardown. */
export async function buildTestApp (t: Test, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildApp(testConfig(env))
  t.teardown(async () => {
    // An injectWS stream never reports the client's end, so a graceful close
    // would wait for the 5 s cut-off; these tests are not about shutdown.
    for (const connection of app.connections) connection.terminate()
    await app.close()
  })
  await app.ready()
  return app
}

/**
 * Opens `/ws` (or `path`) through `injectWS`. The frame listeners are attached
 * before the upgrade completes, so the `welcome` frame is never missed.
 * Rejects with "Unexpected server response: <status>" when the upgrade is refused.
 */
export async function injectClient (app: FastifyInstance, path = '/ws', headers: IncomingHttpHeaders = {}): Promise<TestClient> {
  let client: TestClient | undefined
  await app.injectWS(path, { headers }, { onInit (socket) { client = new TestClient(socket) } })
  if (client === undefined) throw new Error('injectWS opened no socket')
  return client
}

/** The status code of a refused upgrade, or 101 when it was accepted. */
export async function upgradeStatus (app: FastifyInstance, path: string, headers: IncomingHttpHeaders = {}): Promise<number> {
  try {
    const client = await injectClient(app, path, headers)
    client.close()
    return 101
  } catch (error) {
    const match = /Unexpected server response: (\d+)/.exec((error as Error).message)
    if (match === null) throw error
    return Number(match[1])
  }
}
