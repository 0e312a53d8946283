// Fast readers are not slow consumers (PROTOCOL §5, issue 10 finding 2): the
// send backlog is measured after the turn's writes are flushed, and history
// replays are paced by the socket draining, so members that read at full
// speed survive a burst of max-size posts and a full-history resume without
// a 1013. Over real sockets on loopback; every count is bounded.
//
// Attack (before the fix): SEND_QUEUE_MAX_BYTES was compared with what one
// event-loop turn queued while the socket was corked, so 30 large posts in
// the same moment, or a join replaying a large history, closed readers that
// had read everything. Rerun: `npx tap test/integration/fast-readers.test.ts`.
import t from 'tap'
import { broadcast, metric } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'
import { TestClient } from '../helpers/ws-client.js'

/** The send limit of these tests; one turn of the burst below is about twice this. */
const SEND_QUEUE_MAX_BYTES = 256 * 1024
/** Messages kept per room: a full history of max-size messages is ~1.6 MB, six times the limit. */
const HISTORY_SIZE = 100
const READERS = 5
const POSTERS = 6
const POSTS_PER_POSTER = 5
/** MAX_TEXT_LENGTH (the default, 4096) code points; astral ones are 4 bytes of UTF-8 each. */
const MAX_TEXT_LENGTH = 4096

const env = {
  SEND_QUEUE_MAX_BYTES: String(SEND_QUEUE_MAX_BYTES),
  HISTORY_SIZE: String(HISTORY_SIZE),
  HISTORY_MAX_BYTES: String(16 * 1024 * 1024),
  HISTORY_ON_JOIN: '50',
  RATE_LIMIT_PER_SEC: '1000',
  RATE_LIMIT_BURST: '1000'
}

/** A max-size text (~16 KiB of UTF-8): an ASCII label, then astral code points. */
function text (label: string): string {
  return `${label}:${'\u{1F600}'.repeat(MAX_TEXT_LENGTH - label.length - 1)}`
}

t.test('five readers survive 30 simultaneous max-size posts', async (t) => {
  const server = await startServer(t, env)
  const readers = await Promise.all(Array.from({ length: READERS }, (_, i) => TestClient.open(t, server.wsUrl, `reader-${i}`)))
  const posters = await Promise.all(Array.from({ length: POSTERS }, (_, i) => TestClient.open(t, server.wsUrl, `poster-${i}`)))
  for (const client of [...readers, ...posters]) await client.join('burst')
  for (const poster of posters) await poster.barrier()

  // Every post leaves at once: they reach the server in the same few reads.
  const total = POSTERS * POSTS_PER_POSTER
  for (const [p, poster] of posters.entries()) {
    for (let k = 0; k < POSTS_PER_POSTER; k++) poster.send({ type: 'send', room: 'burst', text: text(`${p}.${k}`) })
  }
  for (const reader of readers) {
    await reader.until((frames) => frames.filter((f) => f.type === 'message').length >= total || reader.closeCode !== undefined, 'every post', 15_000)
  }
  for (const reader of readers) {
    t.equal(reader.closeCode, undefined, 'the reader is still connected')
    t.equal(reader.messages('burst').length, total, 'and got every post')
  }
  t.equal(await metric(server.url, 'chat_slow_consumer_closes_total'), 0, 'no slow-consumer close')
})

t.test('five readers survive a full-history resume and a plain join of a full room', async (t) => {
  const server = await startServer(t, env)
  // The history is filled over HTTP, so no WebSocket reads it while it grows.
  const ids: string[] = []
  for (let i = 0; i < HISTORY_SIZE + 10; i++) ids.push((await broadcast(server.url, 'full', text(String(i)))).id)
  const readers = await Promise.all(Array.from({ length: READERS }, (_, i) => TestClient.open(t, server.wsUrl, `reader-${i}`)))
  // Resumed from an early id: the server still holds the HISTORY_SIZE messages after it.
  const since = ids[9] as string
  const last = ids.at(-1) as string
  await Promise.all(readers.map((reader) => reader.join('full', since)))
  for (const reader of readers) {
    await reader.until((frames) => frames.some((f) => f.type === 'message' && f.id === last) || reader.closeCode !== undefined, 'the whole history', 20_000)
    t.equal(reader.closeCode, undefined, 'the resuming reader is still connected')
    t.same(reader.messages('full').map((m) => m.id), ids.slice(10), `replayed the ${HISTORY_SIZE} messages after since, in order`)
  }
  const poster = await TestClient.open(t, server.wsUrl, 'poster')
  await poster.join('full')
  // Live messages still flow to them afterwards, once each.
  const after = await poster.sendAndAck('full', 'after the resume')
  for (const reader of readers) {
    await reader.until((frames) => frames.some((f) => f.id === after), 'the live message')
    t.equal(reader.messages('full').filter((m) => m.id === after).length, 1)
  }
  // A plain join of a room "poisoned" with large messages: HISTORY_ON_JOIN of them, ~820 KB.
  const fresh = await TestClient.open(t, server.wsUrl, 'fresh')
  await fresh.join('full')
  await fresh.until((frames) => frames.some((f) => f.id === after) || fresh.closeCode !== undefined, 'the recent history')
  t.equal(fresh.closeCode, undefined, 'a fresh joiner is still connected')
  t.equal(fresh.messages('full').length, 50)
  t.equal(await metric(server.url, 'chat_slow_consumer_closes_total'), 0, 'no slow-consumer close')
})
