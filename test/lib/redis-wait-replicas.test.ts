// REDIS_WAIT_REPLICAS in lib/redis-broker.ts against real redis-server
// processes: the publish script and WAIT in one pipeline, an acknowledgement
// only once the replicas hold the message, `timeout` (outcome unknown) when
// too few confirm or the WAIT's answer does not come in time.
import { createHash } from 'node:crypto'
import t from 'tap'
import { BrokerTimeoutError } from '../../lib/broker.js'
import { REDIS_COMMAND_TIMEOUT_MS, REDIS_WAIT_TIMEOUT_MS } from '../../lib/limits.js'
import { PUBLISH_SCRIPT, roomKeys } from '../../lib/redis-scripts.js'
import { startRedisNode } from '../helpers/redis-node.js'
import { startReplica } from '../helpers/redis-sentinel.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'

t.test('with a replica: acknowledged once the replica holds the message, also on a server that did not know the script', async (t) => {
  const master = await RedisServer.start(t)
  const replica = await startReplica(t, master)
  const a = await startRedisNode(t, master, 'a', { waitReplicas: 1 })
  const sha = createHash('sha1').update(PUBLISH_SCRIPT).digest('hex')
  t.same(await master.command('SCRIPT', 'EXISTS', sha), [0], 'the server does not know the publish script yet')
  const message = await a.broker.publish('r', 'alice', 'held twice')
  t.same(await master.command('SCRIPT', 'EXISTS', sha), [1], 'sent in full after NOSCRIPT')
  t.equal(message.seq, 1)
  t.equal(await replica.command('HGET', roomKeys('r').meta, 's'), '1', 'the replica has it when the ack comes')
  const second = await a.broker.publish('r', 'alice', 'again')
  t.equal(await replica.command('HGET', roomKeys('r').meta, 's'), '2')
  t.equal(second.seq, 2)
  t.same(a.reported, [])
})

t.test('no replica: timeout after the wait; the message is stored and delivered; a keyed retry answers the first receipt once confirmed', async (t) => {
  const master = await RedisServer.start(t)
  const a = await startRedisNode(t, master, 'a', { waitReplicas: 1 })
  a.broker.subscribe('r')
  await a.broker.read('r', { limit: 1 })
  const started = Date.now()
  const error = await a.broker.publish('r', 'alice', 'unconfirmed').catch((error: unknown) => error)
  t.type(error, BrokerTimeoutError)
  t.match((error as Error).message, `0 of 1 confirmed within ${REDIS_WAIT_TIMEOUT_MS} ms`)
  t.ok(Date.now() - started >= REDIS_WAIT_TIMEOUT_MS - 50, 'Redis waited for the replica')
  await waitFor(() => a.delivered.length === 1, 'the stored message to be delivered')

  // While a WAIT waits in vain, reads and presence do not queue behind it.
  const order: string[] = []
  const waiting = a.broker.publish('r', 'alice', 'unconfirmed too').then(() => order.push('publish'), () => order.push('publish refused'))
  const read = a.broker.read('r', { limit: 10 }).then(() => order.push('read'))
  await Promise.all([waiting, read])
  t.same(order, ['read', 'publish refused'], 'the read answered before the WAIT timed out (the WAIT has its own connection)')
  await waitFor(() => a.delivered.length === 2, 'the second stored message to be delivered')

  const keyed = { idempotencyKey: 'k1' }
  await t.rejects(a.broker.publish('r', 'api', 'keyed', keyed), BrokerTimeoutError)
  await startReplica(t, master)
  const receipt = await a.broker.publish('r', 'api', 'keyed', keyed)
  t.match(receipt, { room: 'r', id: /-3$/ }, 'the first call\'s receipt, now that a replica confirmed it')
  t.equal(await master.command('HGET', roomKeys('r').meta, 's'), '3', 'published once')
  t.same(a.reported, [])
})

t.test('the WAIT\'s answer later than the command timeout: timeout', async (t) => {
  const master = await RedisServer.start(t)
  const proxy = await TcpProxy.start(t, master.port)
  const a = await startRedisNode(t, { url: `redis://127.0.0.1:${proxy.port}` }, 'a', { waitReplicas: 1 })
  // The script's answer comes in time; WAIT's (1 s, no replica) comes after the command timeout.
  const delay = REDIS_COMMAND_TIMEOUT_MS - REDIS_WAIT_TIMEOUT_MS / 2
  t.equal(proxy.delayReplies('test:a:publisher', delay, 'WAIT'), 1)
  const error = await a.broker.publish('r', 'alice', 'late').catch((error: unknown) => error)
  t.type(error, BrokerTimeoutError)
  t.match((error as Error).message, /too few replicas confirmed it \(Command timed out\)/)
})
