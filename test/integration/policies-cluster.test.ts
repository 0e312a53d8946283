// Room policies in cluster mode (PROTOCOL §8): two nodes on a real
// redis-server. Each room's stream is capped at its namespace's historySize;
// a historySize 0 room stores nothing yet delivers each message once on both
// nodes, keeps its ids unique, answers a resume with recovered: false, and
// keeps flowing after the subscriptions are killed (at most once, no stall);
// a presence-off room sends no presence frame across nodes.
import t from 'tap'
import { broadcast } from '../helpers/http.js'
import { startNode } from '../helpers/cluster.js'
import { RedisServer } from '../helpers/redis-server.js'
import { sleep } from '../helpers/wait.js'
import { TestClient } from '../helpers/ws-client.js'
import { policyFile } from '../helpers/policies.js'

t.test('cluster: per-namespace history, a room that keeps nothing, presence off', async (t) => {
  const redis = await RedisServer.start(t)
  const env = { NAMESPACES_FILE: policyFile() }
  const a = await startNode(t, redis, 'a', env)
  const b = await startNode(t, redis, 'b', env)

  t.test('historySize caps the room\'s stream; historyOnJoin is what a plain join replays', async (t) => {
    const writer = await TestClient.open(t, a.wsUrl, 'w')
    await writer.join('short:c')
    const ids: string[] = []
    for (let i = 1; i <= 6; i++) ids.push(await writer.sendAndAck('short:c', `m${i}`))
    t.equal(await redis.command('XLEN', 'chat:{short:c}:log'), 3, 'the stream holds historySize (3) entries')
    t.equal(await redis.command('XLEN', 'chat:{lobby-c}:log'), 0, 'an untouched default room has none')
    const reader = await TestClient.open(t, b.wsUrl, 'r')
    await reader.join('short:c')
    await reader.barrier()
    t.same(reader.messages('short:c').map((frame) => frame.text), ['m5', 'm6'], 'historyOnJoin (2) on the other node')
    const late = await TestClient.open(t, b.wsUrl, 'l')
    t.equal((await late.join('short:c', ids[0])).recovered, false, 'trimmed: not recovered')
    const resume = await TestClient.open(t, b.wsUrl, 'q')
    t.equal((await resume.join('short:c', ids[3])).recovered, true)
    await resume.barrier()
    t.same(resume.messages('short:c').map((frame) => frame.text), ['m5', 'm6'])
  })

  t.test('historyOnJoin 0: a plain join replays nothing, a resume still recovers', async (t) => {
    const writer = await TestClient.open(t, a.wsUrl, 'w0')
    await writer.join('nojoin:c')
    const first = await writer.sendAndAck('nojoin:c', 'one')
    await writer.sendAndAck('nojoin:c', 'two')
    const plain = await TestClient.open(t, b.wsUrl, 'p0')
    t.equal((await plain.join('nojoin:c')).recovered, true)
    const resume = await TestClient.open(t, b.wsUrl, 'r0')
    t.equal((await resume.join('nojoin:c', first)).recovered, true)
    await plain.barrier()
    await resume.barrier()
    t.same(plain.messages('nojoin:c'), [], 'nothing on a plain join')
    t.same(resume.messages('nojoin:c').map((frame) => frame.text), ['two'], 'what was missed on a resume')
  })

  t.test('historySize 0: nothing stored, each message delivered once on both nodes, a resume gets recovered: false', async (t) => {
    const onA = await TestClient.open(t, a.wsUrl, 'x')
    const onB = await TestClient.open(t, b.wsUrl, 'y')
    await onA.join('nohist:c')
    await onB.join('nohist:c')
    const sent: string[] = []
    for (let i = 1; i <= 5; i++) sent.push(await onA.sendAndAck('nohist:c', `n${i}`))
    sent.push((await broadcast(b.url, 'nohist:c', 'from the API')).id)
    t.equal(new Set(sent).size, 6, 'ids stay unique')
    t.equal(await redis.command('XLEN', 'chat:{nohist:c}:log'), 0, 'the stream keeps nothing')
    for (const client of [onA, onB]) {
      await client.until((frames) => frames.filter((frame) => frame.type === 'message').length >= 6, 'six messages')
      await client.barrier()
      t.same(client.messages('nohist:c').map((frame) => frame.id), sent, 'each once, in order')
    }
    const resumer = await TestClient.open(t, b.wsUrl, 'z')
    const joined = await resumer.join('nohist:c', sent[2])
    t.equal(joined.recovered, false, 'a resume gets recovered: false')
    await resumer.barrier()
    t.same(resumer.messages('nohist:c'), [], 'and no history')
  })

  t.test('historySize 0 after the subscriptions are killed: no stall, no loop — later messages still arrive', async (t) => {
    const onA = await TestClient.open(t, a.wsUrl, 'k1')
    const onB = await TestClient.open(t, b.wsUrl, 'k2')
    await onA.join('nohist:k')
    await onB.join('nohist:k')
    await onA.sendAndAck('nohist:k', 'before')
    await onB.next((frame) => frame.type === 'message' && frame.text === 'before', 'before')
    await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
    // Published while node b may be resubscribing: delivered at most once.
    for (let i = 0; i < 5; i++) await onA.sendAndAck('nohist:k', `during ${i}`)
    await sleep(500)
    const afterIds: string[] = []
    for (let i = 0; i < 5; i++) afterIds.push(await onA.sendAndAck('nohist:k', `after ${i}`))
    for (const client of [onA, onB]) {
      await client.until((frames) => frames.some((frame) => frame.type === 'message' && frame.text === 'after 4'), 'the last message')
      const got = client.messages('nohist:k').map((frame) => frame.id as string)
      t.same(got.filter((id) => afterIds.includes(id)), afterIds, 'every message after the outage, in order')
      t.equal(new Set(got).size, got.length, 'none twice')
    }
    const statsBefore = await redis.command('XLEN', 'chat:{nohist:k}:log')
    t.equal(statsBefore, 0)
  })

  t.test('presence: false across nodes: members [] and no presence frame', async (t) => {
    const first = await TestClient.open(t, a.wsUrl, 'p1')
    t.same((await first.join('quiet:c')).members, [])
    const second = await TestClient.open(t, b.wsUrl, 'p2')
    t.same((await second.join('quiet:c')).members, [], 'the other node lists nobody either')
    second.close()
    await second.waitClosed()
    const third = await TestClient.open(t, b.wsUrl, 'p3')
    await third.join('quiet:c')
    await sleep(200)
    await first.barrier()
    await third.barrier()
    t.same([...first.ofType('presence'), ...third.ofType('presence')], [], 'no presence frame on either node')
    const members = await redis.command('HLEN', 'chat:{quiet:c}:members')
    t.equal(members, 2, 'the members are still recorded (GET /rooms/:id/members answers)')
  })
})
