// Headers every HTTP answer carries, errors and upgrade refusals included.
import fp from 'fastify-plugin'

export default fp(async function headersPlugin (fastify) {
  // A JSON body (or any other) is never re-read as HTML or script by a browser
  // that guesses types: a reflected field cannot become markup.
  fastify.addHook('onSend', async (_request, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff')
  })
}, { name: 'headers' })
