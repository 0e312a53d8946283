// Unit tests of lib/heartbeat.ts with fake peers and a short real interval.
import t from 'tap'
import { type Pingable, startHeartbeat } from '../../lib/heartbeat.js'
import { waitFor } from '../helpers/wait.js'

const INTERVAL_MS = 20

class FakePeer implements Pingable {
  alive = true
  readonly events: string[] = []

  constructor (public answers: boolean, private readonly peers: Set<FakePeer>) {}

  ping (): void {
    this.events.push('ping')
    // A peer that answers: its pong arrives before the next tick.
    if (this.answers) setImmediate(() => { this.alive = true })
  }

  terminate (): void {
    this.events.push('terminate')
    this.peers.delete(this)
  }
}

t.test('an unanswered peer is terminated at the next tick; an answering one is kept', async (t) => {
  const peers = new Set<FakePeer>()
  const silent = new FakePeer(false, peers)
  const answering = new FakePeer(true, peers)
  peers.add(silent).add(answering)
  const terminated: Pingable[] = []
  const stop = startHeartbeat(peers, INTERVAL_MS, (peer) => terminated.push(peer))
  t.teardown(stop)

  await waitFor(() => answering.events.length >= 5, 'five pings to the answering peer')
  t.same(silent.events, ['ping', 'terminate'], 'pinged once, terminated at the tick after')
  t.same(terminated, [silent], 'onTerminate was told, once')
  t.ok(answering.events.every((event) => event === 'ping'), 'the answering peer was never terminated')
  t.ok(peers.has(answering))
})

t.test('a peer that stops answering is terminated', async (t) => {
  const peers = new Set<FakePeer>()
  const peer = new FakePeer(true, peers)
  peers.add(peer)
  const stop = startHeartbeat(peers, INTERVAL_MS, () => {})
  t.teardown(stop)
  await waitFor(() => peer.events.length >= 2, 'two pings')
  peer.answers = false
  await waitFor(() => peer.events.includes('terminate'), 'termination')
  const pings = peer.events.filter((event) => event === 'ping').length
  t.ok(pings >= 2)
  t.equal(peer.events.at(-1), 'terminate')
  t.equal(peer.events.at(-2), 'ping', 'exactly one unanswered ping before the cut')
})

t.test('peers added later are pinged; stop ends the ticks', async (t) => {
  const peers = new Set<FakePeer>()
  const stop = startHeartbeat(peers, INTERVAL_MS, () => {})
  const late = new FakePeer(true, peers)
  peers.add(late)
  await waitFor(() => late.events.length >= 1, 'a ping to a peer added after the start')
  stop()
  const count = late.events.length
  await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS * 4))
  t.equal(late.events.length, count, 'no ping after stop')
})
