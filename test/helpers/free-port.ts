// A free TCP port on the loopback interface, for servers that must be told
// their port. The one copy for the tests and the bench (bench/lib/servers.ts
// imports it): test helpers stay self-contained, the bench is the dev tool
// that borrows from them, never the other way round.
import { createServer } from 'node:net'

/** Redis's usual port: a local redis-server may hold it a moment after the OS said it was free. */
const AVOIDED_PORT = 6379
const ATTEMPTS = 10

export async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const address = server.address()
        const found = typeof address === 'object' && address !== null ? address.port : 0
        server.close(() => resolve(found))
      })
    })
    if (port !== 0 && port !== AVOIDED_PORT) return port
  }
  throw new Error(`no free port found in ${ATTEMPTS} attempts`)
}
