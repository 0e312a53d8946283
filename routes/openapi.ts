// GET /openapi.json: the OpenAPI 3.1 description of the HTTP API, built once
// from the same zod schemas the routes validate with.
import type { FastifyInstance } from 'fastify'
import { buildOpenApiDocument } from '../lib/openapi.js'

export default async function openApiRoutes (fastify: FastifyInstance) {
  const document = JSON.stringify(buildOpenApiDocument({ maxTextLength: fastify.config.maxTextLength, maxDataBytes: fastify.config.maxDataBytes }))

  fastify.get('/openapi.json', async (_request, reply) => {
    // Revalidated on every load: a redeploy may change MAX_TEXT_LENGTH.
    reply.header('Cache-Control', 'no-cache').type('application/json')
    return document
  })
}
