// RoomUsers (lib/auth/room-users.ts): a user counts once in a room's presence.
import t from 'tap'
import { RoomUsers, type RoomMember } from '../../../lib/auth/room-users.js'

t.test('joined on the first connection, left on the last; guests one by one', async (t) => {
  const users = new RoomUsers<RoomMember>((member) => ({ id: `user:${member.user ?? ''}`, name: member.name, user: member.user }))
  const a1 = { id: 'c1', name: 'Alice', user: 'alice' }
  const a2 = { id: 'c2', name: 'Alice (phone)', user: 'alice' }
  const guest = { id: 'c3', name: 'Alice' }
  const stand = users.joined(a1)
  t.match(stand, { id: 'user:alice', name: 'Alice' })
  t.equal(users.joined(a2), undefined, 'a second connection is no change')
  t.equal(users.joined(guest), guest, 'a guest is itself')
  t.same([...users.names([a1, a2, guest])], ['Alice', 'Alice'], 'one name per user (its first), one per guest')
  t.same([...users.names([a2])], ['Alice'], 'the first connection\'s name even when it is not listed')
  t.equal(users.left(a1), undefined, 'not the last')
  t.equal(users.left(a1), undefined, 'twice is harmless')
  t.equal(users.left(a2), stand, 'the last: the same stand-in leaves')
  t.equal(users.left(a2), undefined)
  t.equal(users.left(guest), guest)
})
