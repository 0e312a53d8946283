// The failover scenario of failover-sigkill.test.ts and failover-sigterm.test.ts
// (one file each, so each gets its own time budget): the chat page in a real
// browser against a two-node cluster (a real redis-server, both nodes as child
// processes) behind a loopback proxy that keeps the page's origin while the
// node behind it changes. The node the page is on is stopped; the page must
// show "reconnecting", land on the other node and show what was broadcast
// meanwhile exactly once.
import type { Test } from 'tap'
import { BrowserSession } from '../helpers/browser.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { broadcast } from '../helpers/http.js'
import { waitFor } from '../helpers/wait.js'
import { NodeProcess } from '../helpers/node-process.js'
import { RedisServer } from '../helpers/redis-server.js'

// LOG_LEVEL info: if a node does not come up in time, NodeProcess's error then
// shows how far it got (at warn it shows nothing).
const NODE_ENV = { LOG_LEVEL: 'info', READY_PROBE_MS: '100', SHUTDOWN_GRACE_MS: '1000', PRESENCE_BATCH_MS: '0' }
/** Chromium reports each refused WebSocket handshake on the console; those are expected here. */
const EXPECTED_CONSOLE_ERRORS = [/WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws[^']*' failed/]
const ROOM = 'failover'

async function startNode (t: Test, redis: RedisServer, nodeId: string): Promise<NodeProcess> {
  const node = await NodeProcess.start(t, { ...NODE_ENV, REDIS_URL: redis.url, NODE_ID: nodeId })
  await waitFor(async () => (await fetch(`${node.url}/health/ready`)).status === 200, `node ${nodeId} ready`, 15_000)
  return node
}

/** Runs the scenario, stopping the page's node with `signal` (by the pid of its child process). */
export async function failover (t: Test, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const redis = await RedisServer.start(t)
  // One after the other: on a busy machine two cold starts at once can outlast NodeProcess's start timeout.
  const a = await startNode(t, redis, 'node-a')
  const b = await startNode(t, redis, 'node-b')
  const proxy = await TcpProxy.start(t, a.port)

  const browser = await BrowserSession.launch(t)
  const page = await browser.open(proxy.url)
  await page.setName('roamer')
  await page.join(ROOM)
  t.ok(proxy.openTo(a.port) >= 1, 'the page is connected through the proxy to node A')
  t.same(page.welcomes().map((welcome) => welcome.node), ['node-a', 'node-a'], 'both connections so far (guest, then named) were welcomed by node A')
  t.equal(proxy.forwarded.get(b.port), undefined, 'nothing went to node B yet')

  const before = ['typed on A', 'broadcast on A', 'broadcast on B']
  await page.send(before[0] as string)
  await page.waitForMessages(before.slice(0, 1))
  await broadcast(a.url, ROOM, before[1] as string, 'ops')
  await page.waitForMessages(before.slice(0, 2))
  await broadcast(b.url, ROOM, before[2] as string, 'ops')
  await page.waitForMessages(before)
  t.same(await page.messageTexts(), before, 'before the failover: each message once, in order')

  // Node A goes away; until the proxy is pointed at B the page cannot connect anywhere.
  proxy.target = undefined
  t.ok(a.child.pid !== undefined && a.child.pid > 0, 'node A has a pid')
  a.kill(signal)
  let banner = { state: '', label: '', retryShown: false }
  await waitFor(async () => {
    banner = await page.banner()
    return banner.state === 'reconnecting'
  }, 'the page to notice node A is gone', 10_000)
  t.equal(banner.label, 'reconnecting', 'the banner says "reconnecting"')
  t.equal(banner.retryShown, true, 'with a "Retry now" button')
  const exit = await Promise.race([a.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 10_000))])
  if (signal === 'SIGTERM') t.same(exit, { code: 0, signal: null }, 'node A drained and exited 0')
  else t.same(exit, { code: null, signal: 'SIGKILL' }, 'node A was killed')

  const missed = ['missed 1', 'missed 2', 'missed 3', 'missed 4', 'missed 5']
  for (const text of missed) await broadcast(b.url, ROOM, text, 'ops')
  t.not(await page.connectionState(), 'online', 'the page is still disconnected after the broadcasts')
  t.same(await page.messageTexts(), before, 'nothing new shown while disconnected')

  proxy.target = b.port
  await page.waitForConnectionState('online', 30_000)
  await page.waitForMessages(missed)
  t.ok(proxy.openTo(b.port) >= 1, 'the page is now connected to node B')
  t.equal(proxy.openTo(a.port), 0, 'nothing is left open to node A')

  // A live message after the recovery: anything repeated would have come before it.
  await broadcast(b.url, ROOM, 'after the failover', 'ops')
  await page.waitForMessages(['after the failover'])
  const expected = [...before, ...missed, 'after the failover']
  const shown = await page.messageTexts()
  for (const text of expected) t.equal(shown.filter((x) => x === text).length, 1, `"${text}" shown exactly once`)
  t.same(shown, expected, 'every message once, in room order, nothing else')
  t.equal(await page.page.getByTestId('recovery-note').count(), 0, 'no "could not be recovered" note: the resume was complete')
  t.same(await page.page.locator('#identity').textContent(), 'as roamer', 'same name on the new node')
  const history = await page.connectionHistory()
  const lastOnline = history.lastIndexOf('online')
  t.ok(history.indexOf('reconnecting') > history.indexOf('online') && lastOnline > history.indexOf('reconnecting'),
    `online → reconnecting → online (${history.join(' → ')})`)

  // The page can still talk: a message typed now goes through node B.
  await page.send('typed on B')
  await page.waitForMessages(['typed on B'])
  t.equal(await page.countMessages('typed on B'), 1, 'the new message is shown once')

  // On the wire: the new connection was welcomed by node B, resumed the room,
  // and the server itself sent each message once (not only the page's dedupe).
  const welcomes = page.welcomes()
  const last = welcomes.at(-1)
  t.equal(welcomes.length, 3, 'three connections welcomed: guest and named on A, then one on B')
  t.equal(last?.node, 'node-b', 'the page landed on node B')
  t.equal(last?.name, 'roamer', 'under the same name')
  const onB = last?.socket ?? -1
  t.match(page.framesOn(onB, 'joined'), [{ room: ROOM, recovered: true }], 'the room was resumed with since: recovered')
  t.same(page.framesOn(onB, 'message').map((frame) => frame.text), [...missed, 'after the failover', 'typed on B'],
    'node B sent exactly the missed messages, then the live ones, each once')
  await page.assertHealthy(t, EXPECTED_CONSOLE_ERRORS)
}
