// A loopback TCP proxy that can silently black-hole chosen connections: the
// sockets stay open, but nothing passes. This is the failure a TCP-level
// health check cannot see, and the one the readiness probe must catch.
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { Test } from 'tap'

interface Link {
  client: Socket
  upstream: Socket
  /** Everything the client sent first, to recognise it (e.g. CLIENT SETNAME). */
  hello: string
  holed: boolean
}

export class TcpProxy {
  private readonly links = new Set<Link>()

  private constructor (private readonly server: Server, readonly port: number) {}

  static async start (t: Test, targetPort: number): Promise<TcpProxy> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('proxy has no port')
    const proxy = new TcpProxy(server, address.port)
    server.on('connection', (client) => proxy.accept(client, targetPort))
    t.teardown(() => proxy.close())
    return proxy
  }

  /** Stops forwarding, in both directions, on every open connection whose first bytes contain `marker`. */
  blackHole (marker: string): number {
    let count = 0
    for (const link of this.links) {
      if (link.hello.includes(marker) && !link.holed) {
        link.holed = true
        count++
      }
    }
    return count
  }

  close (): void {
    for (const link of this.links) {
      link.client.destroy()
      link.upstream.destroy()
    }
    this.server.close()
  }

  private accept (client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1')
    const link: Link = { client, upstream, hello: '', holed: false }
    this.links.add(link)
    client.on('data', (chunk) => {
      if (link.hello.length < 4096) link.hello += chunk.toString('latin1')
      if (!link.holed) upstream.write(chunk)
    })
    upstream.on('data', (chunk) => { if (!link.holed) client.write(chunk) })
    const drop = () => {
      this.links.delete(link)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', drop)
    upstream.on('close', drop)
    client.on('error', drop)
    upstream.on('error', drop)
  }
}
