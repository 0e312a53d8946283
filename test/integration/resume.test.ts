// History on join and resume with `since` (PROTOCOL §3, §5 single node):
// what a (re)joining client gets, in which order, and when `recovered` is false.
import t from 'tap'
import { broadcast } from '../helpers/http.js'
import { sleep } from '../helpers/wait.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

const FAST = { RATE_LIMIT_PER_SEC: '10000', RATE_LIMIT_BURST: '10000', FRAME_RATE_PER_SEC: '10000', FRAME_BURST: '10000' }

/** Broadcasts `count` messages `${prefix}${i}` one after the other; returns their ids. */
async function publish (server: RunningServer, room: string, prefix: string, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 1; i <= count; i++) ids.push((await broadcast(server.url, room, `${prefix}${i}`)).id)
  return ids
}

/** Sends a join and returns `joined` with the messages that followed it, once `count` of them are there. */
async function joinAndCollect (client: TestClient, room: string, since: string | undefined, count: number): Promise<{ joined: Frame, messages: Frame[] }> {
  const from = client.frames.length
  client.send(since === undefined ? { type: 'join', room } : { type: 'join', room, since })
  const joined = await client.next((f) => f.type === 'joined' && f.room === room, `joined ${room}`, from)
  const at = client.frames.indexOf(joined)
  await client.until((frames) => frames.slice(at).filter((f) => f.type === 'message' && f.room === room).length >= count, `${count} messages after joined`)
  // Anything else already on its way arrives before the barrier.
  await client.barrier()
  const before = client.frames.slice(from, at).filter((f) => f.type === 'message' && f.room === room)
  if (before.length > 0) throw new Error(`messages arrived before joined: ${JSON.stringify(before)}`)
  return { joined, messages: client.frames.slice(at).filter((f) => f.type === 'message' && f.room === room) }
}

t.test('resume in the middle of a stream: every message after `since` exactly once, in order', async (t) => {
  const server = await startServer(t, FAST)
  const alice = await TestClient.open(t, server.wsUrl, 'alice')
  const bob = await TestClient.open(t, server.wsUrl, 'bob')
  const carol = await TestClient.open(t, server.wsUrl, 'carol') // stays connected: the room order as a member sees it
  for (const client of [alice, bob, carol]) await client.join('stream')

  for (let i = 0; i < 20; i++) await bob.sendAndAck('stream', `before-${i}`)
  await alice.until((frames) => frames.filter((f) => f.type === 'message').length >= 20, 'alice has the first 20')
  const lastSeen = alice.messages('stream').at(-1)?.id as string
  alice.close()
  await alice.waitClosed()

  // Bob keeps sending, 100 messages about 2 ms apart; at the 30th, alice's
  // join goes out and bob carries straight on, so the join meets live traffic.
  const STREAM = 100
  let reconnected: TestClient | undefined
  for (let i = 0; i < STREAM; i++) {
    bob.send({ type: 'send', room: 'stream', text: `during-${i}`, ref: `d${i}` })
    if (i === 30) {
      reconnected = await TestClient.open(t, server.wsUrl, 'alice')
      reconnected.send({ type: 'join', room: 'stream', since: lastSeen })
    }
    await sleep(2)
  }
  const total = 20 + STREAM
  await carol.until((frames) => frames.filter((f) => f.type === 'message').length >= total, 'carol has everything', 10_000)
  const roomOrder = carol.messages('stream').map((f) => f.id as string)
  t.equal(new Set(roomOrder).size, total, 'the observer has every message once')

  const client = reconnected as TestClient
  const joined = await client.next((f) => f.type === 'joined', 'joined after reconnect')
  t.equal(joined.recovered, true, 'a known `since` is recovered')
  const expected = roomOrder.slice(roomOrder.indexOf(lastSeen) + 1)
  t.equal(expected.length, STREAM, 'everything bob sent after alice left')
  await client.until((frames) => frames.filter((f) => f.type === 'message').length >= expected.length, 'alice caught up', 10_000)
  await client.barrier()
  const got = client.messages('stream').map((f) => f.id as string)
  t.equal(new Set(got).size, got.length, 'no duplicates')
  t.same(got, expected, 'no gaps, no duplicates, room order')
  t.ok(client.frames.indexOf(joined) < client.frames.findIndex((f) => f.type === 'message'), '`joined` comes first')
})

t.test('leave and re-join on the same connection with `since`', async (t) => {
  const server = await startServer(t)
  const alice = await TestClient.open(t, server.wsUrl, 'alice')
  await alice.join('room')
  const first = await publish(server, 'room', 'a', 3)
  await alice.until((frames) => frames.filter((f) => f.type === 'message').length >= 3, 'three messages')
  alice.send({ type: 'leave', room: 'room' })
  await alice.next((f) => f.type === 'left', 'left')
  const missed = await publish(server, 'room', 'b', 4)
  const { joined, messages } = await joinAndCollect(alice, 'room', first.at(-1), 4)
  t.equal(joined.recovered, true)
  t.same(messages.map((f) => f.id), missed, 'exactly the missed messages')
})

t.test('`since` equal to the newest id: recovered, nothing replayed, then live', async (t) => {
  const server = await startServer(t)
  const ids = await publish(server, 'room', 'm', 5)
  const alice = await TestClient.open(t, server.wsUrl, 'alice')
  const from = alice.frames.length
  const joined = await alice.join('room', ids.at(-1))
  t.equal(joined.recovered, true)
  await alice.barrier()
  t.equal(alice.frames.slice(from).filter((f) => f.type === 'message').length, 0, 'nothing replayed')
  const live = await broadcast(server.url, 'room', 'live')
  const message = await alice.next((f) => f.type === 'message', 'live message', from)
  t.equal(message.id, live.id)
})

t.test('unknown `since`: recovered false and the recent history', async (t) => {
  const server = await startServer(t, { HISTORY_ON_JOIN: '5' })
  const ids = await publish(server, 'room', 'm', 12)
  const [epoch] = (ids[0] as string).split('-')
  const unknown = [
    'not-an-id',
    'garbage',
    'deadbeef-3',
    `${epoch}-99`, // this log's epoch, a sequence never issued
    `${epoch}-0`,
    `${epoch}-${'9'.repeat(300)}` // any string is a well-formed since; a long one is just unknown
  ]
  for (const since of unknown) {
    const client = await TestClient.open(t, server.wsUrl, 'alice')
    const { joined, messages } = await joinAndCollect(client, 'room', since, 5)
    t.equal(joined.recovered, false, `since ${since}: recovered false`)
    t.same(messages.map((f) => f.id), ids.slice(-5), `since ${since}: the ${5} most recent, oldest first`)
    client.close()
  }
})

t.test('`since` older than the ring: recovered false; the oldest kept boundary still recovers', async (t) => {
  const server = await startServer(t, { HISTORY_SIZE: '10', HISTORY_ON_JOIN: '5' })
  const ids = await publish(server, 'room', 'm', 30) // the ring keeps 21..30

  const trimmed = await TestClient.open(t, server.wsUrl, 'trimmed')
  const old = await joinAndCollect(trimmed, 'room', ids[18], 5) // message 19: 20 is gone
  t.equal(old.joined.recovered, false, 'a since whose successors were trimmed is not recovered')
  t.same(old.messages.map((f) => f.id), ids.slice(-5), 'the recent history instead')

  const boundary = await TestClient.open(t, server.wsUrl, 'boundary')
  const edge = await joinAndCollect(boundary, 'room', ids[19], 10) // message 20: 21..30 are all kept
  t.equal(edge.joined.recovered, true, 'a since just before the oldest kept message is recovered')
  t.same(edge.messages.map((f) => f.id), ids.slice(20), 'every message after it')
})

t.test('plain join: up to HISTORY_ON_JOIN recent messages, oldest first, then live', async (t) => {
  const server = await startServer(t, { HISTORY_ON_JOIN: '5' })
  const empty = await TestClient.open(t, server.wsUrl, 'first')
  const fromEmpty = empty.frames.length
  const joinedEmpty = await empty.join('room')
  t.equal(joinedEmpty.recovered, true, 'a plain join is not a failed recovery')
  await empty.barrier()
  t.equal(empty.frames.slice(fromEmpty).filter((f) => f.type === 'message').length, 0, 'an empty room has no history')
  empty.close()

  const few = await publish(server, 'room', 'a', 3)
  const second = await TestClient.open(t, server.wsUrl, 'second')
  const small = await joinAndCollect(second, 'room', undefined, 3)
  t.same(small.messages.map((f) => f.id), few, 'fewer than the limit: all of them')

  const more = await publish(server, 'room', 'b', 9)
  const third = await TestClient.open(t, server.wsUrl, 'third')
  const big = await joinAndCollect(third, 'room', undefined, 5)
  t.same(big.messages.map((f) => f.id), [...few, ...more].slice(-5), 'the five most recent, oldest first')
  t.same(big.messages.map((f) => f.text), ['b5', 'b6', 'b7', 'b8', 'b9'])
  const live = await broadcast(server.url, 'room', 'live')
  const message = await third.next((f) => f.type === 'message' && f.id === live.id, 'live message')
  t.equal(third.messages('room').indexOf(message), 5, 'live messages follow the history')
})

t.test('HISTORY_ON_JOIN=0: a plain join sends no history', async (t) => {
  const server = await startServer(t, { HISTORY_ON_JOIN: '0' })
  await publish(server, 'room', 'm', 3)
  const client = await TestClient.open(t, server.wsUrl, 'alice')
  const from = client.frames.length
  await client.join('room')
  await client.barrier()
  t.equal(client.frames.slice(from).filter((f) => f.type === 'message').length, 0)
})

t.test('a restart loses the history: an id from the previous incarnation is unknown', async (t) => {
  const first = await startServer(t, { HISTORY_ON_JOIN: '5' })
  const oldIds = await publish(first, 'room', 'old', 3)
  await first.app.close()

  const second = await startServer(t, { HISTORY_ON_JOIN: '5' })
  const newIds = await publish(second, 'room', 'new', 3) // same room, same sequence numbers
  const client = await TestClient.open(t, second.wsUrl, 'alice')
  const { joined, messages } = await joinAndCollect(client, 'room', oldIds[0], 3)
  t.equal(joined.recovered, false, 'an old id is not mistaken for a position in the new log')
  t.same(messages.map((f) => f.id), newIds, 'the new history instead')
})
