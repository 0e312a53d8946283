// A loopback TCP proxy for fault tests. It forwards each new connection to the
// port in `target` (or drops it at once while `target` is undefined, like a
// load balancer with no healthy backend); open connections stay on the backend
// they were made to. It can also silently black-hole chosen connections: the
// sockets stay open, but nothing passes, the failure a TCP-level health check
// cannot see and the readiness probe must catch. Or it can hold back what the
// backend answers on chosen connections (a Redis whose replies come late).
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
  /** Backend → client data is held this long; 0: passed on at once. */
  replyDelayMs: number
  /** Set replyDelayMs to `ms` once the client sends something containing `trigger`. */
  armed: { trigger: string, ms: number } | undefined
  /** Chunks held back, in order, each with when it may go. */
  held: Array<{ chunk: Buffer, at: number }>
  timer: NodeJS.Timeout | undefined
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

  /**
   * Holds back, by `ms`, what the backend answers on every open connection
   * whose first bytes contain `marker` (0: no delay for what arrives from now
   * on; what is held still goes in order). With `after`, the delay starts
   * only once the client sends bytes containing that string (one command's
   * reply and those after it, not the commands before). Returns how many connections.
   */
  delayReplies (marker: string, ms: number, after?: string): number {
    let count = 0
    for (const link of this.links) {
      if (link.hello.includes(marker)) {
        if (after === undefined) link.replyDelayMs = ms
        else link.armed = { trigger: after, ms }
        count++
      }
    }
    return count
  }

  close (): Promise<void> {
    this.target = undefined
    for (const link of this.links) {
      clearTimeout(link.timer)
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
    const link: Link = { client, upstream, backend, hello: '', holed: false, replyDelayMs: 0, armed: undefined, held: [], timer: undefined }
    this.links.add(link)
    client.on('data', (chunk) => {
      if (link.hello.length < HELLO_BYTES) link.hello += chunk.toString('latin1')
      if (link.armed && chunk.toString('latin1').includes(link.armed.trigger)) {
        link.replyDelayMs = link.armed.ms
        link.armed = undefined
      }
      if (!link.holed) upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (link.holed) return
      if (link.replyDelayMs === 0 && link.held.length === 0) client.write(chunk)
      else this.hold(link, chunk)
    })
    const drop = () => {
      clearTimeout(link.timer)
      this.links.delete(link)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', drop)
    upstream.on('close', drop)
    client.on('error', drop)
    upstream.on('error', drop)
  }

  /** Queues a reply chunk behind those already held; one timer releases them in order. */
  private hold (link: Link, chunk: Buffer): void {
    link.held.push({ chunk, at: Date.now() + link.replyDelayMs })
    if (link.timer === undefined) this.release(link)
  }

  private release (link: Link): void {
    link.timer = undefined
    const now = Date.now()
    while (link.held.length > 0 && (link.held[0] as { at: number }).at <= now) {
      link.client.write((link.held.shift() as { chunk: Buffer }).chunk)
    }
    const next = link.held[0]
    if (next) link.timer = setTimeout(() => this.release(link), next.at - now)
  }
}
