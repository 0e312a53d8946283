// GET /config.json: the limits the chat page checks input against, taken from
// the server's own rules and configuration so the two cannot drift apart.
import type { FastifyInstance } from 'fastify'
import { pageConfig, type PageConfig } from '../lib/frames.js'
import { pagePolicies } from '../lib/policy.js'

export default async function pageConfigRoutes (fastify: FastifyInstance) {
  const { config } = fastify
  const body = pageConfig(config.maxTextLength, { tokenUrl: config.pageTokenUrl, authRequired: config.authRequired }, pagePolicies(config.namespacesFile))

  fastify.get('/config.json', async (_request, reply): Promise<PageConfig> => {
    // Revalidated on every load: a redeploy may change MAX_TEXT_LENGTH.
    reply.header('Cache-Control', 'no-cache')
    return body
  })
}
