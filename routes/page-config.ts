// TEMP stub of GET /config.json (the limits the page checks before sending),
// for this branch's browser tests; the integrator replaces it with the real route.
import type { FastifyInstance } from 'fastify'
import { ROOM_PATTERN } from '../lib/frames.js'

export default async function pageConfigRoutes (fastify: FastifyInstance) {
  fastify.get('/config.json', async () => ({
    maxTextLength: fastify.config.maxTextLength,
    maxNameLength: 32,
    roomPattern: ROOM_PATTERN.source,
    roomRule: '1-64 characters of A-Z a-z 0-9 _ - . :'
  }))
}
