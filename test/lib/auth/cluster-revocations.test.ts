// ClusterRevocations.reread against a real redis-server, and
// UserConnections.closeRevoked: what a node applies after its users
// subscription is repaired (PROTOCOL §7).
import t from 'tap'
import { Redis } from 'ioredis'
import { ClusterRevocations, REVOCATION_REREAD_CHUNK, revokedKey } from '../../../lib/auth/cluster-revocations.js'
import { Revocations } from '../../../lib/auth/revocations.js'
import { UserConnections } from '../../../lib/auth/user-connections.js'
import { RedisServer } from '../../helpers/redis-server.js'

t.test('reread learns every revocation Redis holds for the given users, in chunks', async (t) => {
  const redis = await RedisServer.start(t)
  const command = new Redis(redis.port, '127.0.0.1')
  t.teardown(() => command.disconnect())
  const now = 1_000_000_000_000
  const local = new Revocations({ maxTokenTtlS: 3600, now: () => now })
  const cluster = new ClusterRevocations(command, local, 3600)
  const users = Array.from({ length: REVOCATION_REREAD_CHUNK + 2 }, (_, i) => `u${i}`)
  // Revoked by another node: one in the first chunk, one in the last.
  await command.set(revokedKey('u1'), String(now - 1000))
  await command.set(revokedKey(`u${REVOCATION_REREAD_CHUNK + 1}`), String(now - 1000))
  let mgets = 0
  const counting = { get: command.get.bind(command), set: command.set.bind(command), spublish: command.spublish.bind(command), mget: async (keys: string[]) => { mgets++; return await command.mget(keys) } }
  await new ClusterRevocations(counting, local, 3600).reread(users)
  t.equal(mgets, 2, 'one command per chunk')
  t.ok(local.isRevoked('u1', now / 1000 - 10), 'first chunk')
  t.ok(local.isRevoked(`u${REVOCATION_REREAD_CHUNK + 1}`, now / 1000 - 10), 'last chunk')
  t.notOk(local.isRevoked('u2', now / 1000 - 10), 'a user never revoked')
  await cluster.reread([])
})

t.test('closeRevoked closes only the connections whose token is revoked', async (t) => {
  const closed: string[] = []
  const make = (id: string, user: string, tokenIat: number | undefined) => ({ user, tokenIat, close: () => { closed.push(id) } })
  const users = new UserConnections<ReturnType<typeof make>>()
  const old = make('old', 'ann', 10)
  const refreshed = make('refreshed', 'ann', 30)
  users.add(old)
  users.add(refreshed)
  users.add(make('other', 'bea', 10))
  t.same([...users.users()], ['ann', 'bea'])
  t.equal(users.closeRevoked('ann', (iat) => iat === undefined || iat <= 20, 4003, 'revoked'), 1)
  t.same(closed, ['old'])
  t.equal(users.closeRevoked('nobody', () => true, 4003, 'revoked'), 0)
  t.equal(users.closeRevoked('ann', () => true, 4003, 'revoked'), 1, 'the refreshed one remained')
  t.equal(users.userCount, 1, 'ann has no connection left')
})
