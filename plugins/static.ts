// Serves the chat page and its assets from public/, with a Content-Security-
// Policy that allows no inline script and no other origin.
import fp from 'fastify-plugin'
import fastifyStatic from '@fastify/static'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "script-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** public/ sits at the project root, whether this file runs from source or from dist/. */
function publicDir (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('could not find the project root (package.json) above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
  return join(dir, 'public')
}

export default fp(async function staticPlugin (fastify) {
  await fastify.register(fastifyStatic, {
    root: publicDir(),
    index: 'index.html',
    setHeaders (reply) {
      reply.header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
      reply.header('X-Content-Type-Options', 'nosniff')
      reply.header('Referrer-Policy', 'no-referrer')
    }
  })
}, { name: 'static' })
