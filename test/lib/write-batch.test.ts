// Unit tests of lib/write-batch.ts: when corked streams are released, and
// that frames held together leave a real socket in one write.
import t from 'tap'
import { once } from 'node:events'
import { createServer, connect, type Socket } from 'node:net'
import { WriteBatch, type Corkable } from '../../lib/write-batch.js'
import { waitFor } from '../helpers/wait.js'

class CountingStream implements Corkable {
  corks = 0
  uncorks = 0
  cork (): void { this.corks++ }
  uncork (): void { this.uncorks++ }
}

t.test('a held stream stays corked through nextTicks and microtasks, and is released in the check phase', async (t) => {
  const batch = new WriteBatch()
  const stream = new CountingStream()
  batch.hold(stream)
  t.equal(stream.corks, 1)
  await new Promise<void>((resolve) => process.nextTick(resolve))
  await Promise.resolve()
  t.equal(stream.uncorks, 0, 'still corked after the nextTick queue ran (a nextTick flush would release after every I/O callback)')
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.equal(stream.uncorks, 1, 'released once, in the check phase')
})

t.test('every stream held in one turn is released once, in the order held', async (t) => {
  const batch = new WriteBatch()
  const order: string[] = []
  const streams = ['a', 'b', 'c'].map((name) => ({ cork () {}, uncork () { order.push(name) } }))
  for (const stream of streams) batch.hold(stream)
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.same(order, ['a', 'b', 'c'])
  // A new turn starts a new batch.
  batch.hold(streams[0] as Corkable)
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.same(order, ['a', 'b', 'c', 'a'])
})

t.test('frames written from two separate callbacks of one turn leave a real socket in one write', async (t) => {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address() as { port: number }
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect(address.port, '127.0.0.1')
  const [serverSide] = await accepted
  t.teardown(() => {
    client.destroy()
    serverSide.destroy()
    server.close()
  })

  // Count the writes that reach the socket's handle: corked chunks go out together through _writev.
  const internals = serverSide as unknown as { _writev: (...args: unknown[]) => unknown, _write: (...args: unknown[]) => unknown }
  let handleWrites = 0
  for (const method of ['_writev', '_write'] as const) {
    const original = internals[method].bind(serverSide)
    internals[method] = (...args: unknown[]) => {
      handleWrites++
      return original(...args)
    }
  }

  const batch = new WriteBatch()
  let held = false
  const write = (frame: string) => {
    if (!held) {
      held = true
      batch.hold(serverSide)
    }
    serverSide.write(frame)
  }
  // Two callbacks of the same turn (as two sockets' reads in one poll), each
  // followed by its own nextTick and microtask queues.
  await new Promise<void>((resolve) => {
    setImmediate(() => {
      write('one;')
      process.nextTick(() => write('two;'))
    })
    setImmediate(() => {
      Promise.resolve().then(() => write('three;')).then(resolve)
    })
  })
  t.equal(handleWrites, 0, 'nothing written while the turn runs')
  let received = ''
  client.setEncoding('utf8')
  client.on('data', (chunk: string) => { received += chunk })
  await waitFor(() => received.length >= 'one;two;three;'.length, 'the three frames')
  t.equal(received, 'one;two;three;', 'all three frames, in order')
  t.equal(handleWrites, 1, 'one write to the socket for the three frames')
})

t.test('a burst queued in one turn is counted while corked, and gone once the flush hands it to a reading peer', async (t) => {
  // The premise of the slow-consumer check in Connection.uncork: measured at
  // the flush, a reader that keeps up has nothing left, however large the turn.
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address() as { port: number }
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect(address.port, '127.0.0.1')
  const [serverSide] = await accepted
  t.teardown(() => {
    client.destroy()
    serverSide.destroy()
    server.close()
  })
  let received = 0
  client.on('data', (chunk: Buffer) => { received += chunk.length })

  const burst = 256 * 1024
  const seen: number[] = []
  const stream = {
    cork: () => serverSide.cork(),
    uncork: () => {
      serverSide.uncork()
      seen.push(serverSide.writableLength)
    }
  }
  const batch = new WriteBatch()
  batch.hold(stream)
  for (let i = 0; i < burst / 16384; i++) serverSide.write(Buffer.alloc(16384))
  t.equal(serverSide.writableLength, burst, 'the whole burst is queued while the turn runs')
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.same(seen, [0], 'after the flush the kernel has taken all of it')
  await waitFor(() => received === burst, 'the burst at the peer')
})
