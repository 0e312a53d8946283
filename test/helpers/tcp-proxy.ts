// A loopback TCP proxy for fault tests. It forwards each new connection to the
// port in `target` (or drops it at once while `target` is undefined, like a
// load balancer with no healthy backend); open connections stay on the backend
// they were made to. It can also silently black-hole chosen connections: the
// sockets stay open, but nothing passes, the failure a TCP-level health check
// cannot see and the readiness probe must catch.
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { Test } from 'tap'

/** How much of what a client sends first is kept, to recognise it (e.g. CLIENT SETNAME). */
const HELLO_BYTES = 4096

interface Link {
  client: Socket
  upstream: Socket
  /** The backend port this connection went to. */
  backend: number
  /** Everything the client sent first, up to HELLO_BYTES. */
  hello: string
  holed: boolean
}

export class TcpProxy {
  /** The backend port new connections go to; undefined: they are dropped. */
  target: number | undefined
  /** Connections forwarded so far, by backend port. */
  readonly forwarded = new Map<number, number>()
  private readonly links = new Set<Link>()

  private constructor (private readonly server: Server, readonly port: number) {}

  /** Listens on 127.0.0.1 (a free port) in front of `target`; closed in the test's teardown. */
  static async start (t: Test, target: number | undefined): Promise<TcpProxy> {
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address')
    const proxy = new TcpProxy(server, address.port)
    proxy.target = target
    server.on('connection', (client) => proxy.accept(client))
    t.teardown(() => proxy.close())
    return proxy
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Connections open right now to the backend `port`. */
  openTo (port: number): number {
    let count = 0
    for (const link of this.links) if (link.backend === port) count++
    return count
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

  close (): Promise<void> {
    this.target = undefined
    for (const link of this.links) {
      link.client.destroy()
      link.upstream.destroy()
    }
    this.links.clear()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private accept (client: Socket): void {
    const backend = this.target
    if (backend === undefined) {
      client.destroy()
      return
    }
    this.forwarded.set(backend, (this.forwarded.get(backend) ?? 0) + 1)
    const upstream = connect(backend, '127.0.0.1')
    const link: Link = { client, upstream, backend, hello: '', holed: false }
    this.links.add(link)
    client.on('data', (chunk) => {
      if (link.hello.length < HELLO_BYTES) link.hello += chunk.toString('latin1')
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
