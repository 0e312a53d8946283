// PageState (public/state.js), run in Node: what the page shows, and the
// changes its views redraw from.
import t from 'tap'
import { PageState } from '../../public/state.js'
import type { Change, Entry } from '../../public/state.js'

/** A state that records every change it announces, as short strings. */
function recorded (): { state: PageState, changes: string[] } {
  const state = new PageState()
  const changes: string[] = []
  state.subscribe((change: Change) => {
    switch (change.type) {
      case 'removed': changes.push(`removed ${change.name}`); break
      case 'shown': changes.push(`shown ${change.room?.name ?? '-'}`); break
      case 'entry': changes.push(`entry ${change.room.name}${change.dropped ? ' dropped' : ''}`); break
      default: changes.push(`${change.type} ${change.room.name} unread=${change.room.unread}${change.room.confirmed ? '' : ' pending'}`)
    }
  })
  return { state, changes }
}

const line = (text: string): Entry => ({ kind: 'system', text, ts: 0 })

t.test('rooms are added pending, confirmed once, shown one at a time', async (t) => {
  const { state, changes } = recorded()
  const a = state.add('a')
  state.add('b')
  state.confirm(a)
  state.confirm(a)
  state.show('b')
  state.show('b')
  state.show('missing')
  t.same(changes, ['added a unread=0 pending', 'added b unread=0 pending', 'updated a unread=0',
    'updated b unread=0 pending', 'shown b'], 'confirming twice, showing the shown room or an unknown one change nothing')
  t.equal(state.shown?.name, 'b')
  t.same([...state.rooms()].map((room) => room.name), ['a', 'b'], 'tab order is join order')
})

t.test('a confirmation for a room since left and joined again is ignored', async (t) => {
  const { state } = recorded()
  const first = state.add('a')
  state.remove('a')
  const second = state.add('a')
  state.confirm(first)
  t.equal(second.confirmed, false)
  t.equal(first.confirmed, false)
})

t.test('unread counts: messages from others in rooms not shown, cleared when shown', async (t) => {
  const { state, changes } = recorded()
  state.add('a')
  state.add('b')
  state.show('a')
  changes.length = 0
  state.addEntry('b', line('1'), true)
  state.addEntry('b', line('2'), false)
  state.addEntry('a', line('3'), true)
  state.addEntry('nowhere', line('4'), true)
  t.same(changes, ['entry b', 'updated b unread=1 pending', 'entry b', 'entry a'], 'only the first counts as unread; an unknown room is ignored')
  t.equal(state.unreadTotal(), 1)
  state.show('b')
  t.equal(state.get('b')?.unread, 0)
  t.equal(state.unreadTotal(), 0)
  t.same(state.get('b')?.entries.map((entry) => entry.text), ['1', '2'])
})

t.test('a room keeps its last 500 lines and says when one was dropped', async (t) => {
  const { state, changes } = recorded()
  state.add('a')
  for (let i = 0; i < 501; i++) state.addEntry('a', line(String(i)), false)
  const entries = state.get('a')?.entries ?? []
  t.equal(entries.length, 500)
  t.equal(entries[0]?.text, '1', 'the oldest went')
  t.equal(changes.at(-1), 'entry a dropped')
  t.equal(changes.filter((change) => change.endsWith('dropped')).length, 1, 'only the 501st dropped one')
})

t.test('removing the room shown shows the next tab, else the previous, else none', async (t) => {
  const { state, changes } = recorded()
  for (const name of ['a', 'b', 'c']) state.add(name)
  state.addEntry('c', line('x'), true)
  state.show('b')
  changes.length = 0
  state.remove('b')
  t.same(changes, ['removed b', 'updated c unread=0 pending', 'shown c'], 'the next one, marked read')
  state.remove('c')
  t.equal(state.shown?.name, 'a', 'no next one: the previous')
  state.remove('missing')
  state.remove('a')
  t.equal(state.shown, undefined)
  t.same([...state.rooms()], [])
  changes.length = 0
  state.add('d')
  state.add('e')
  state.show('e')
  state.remove('d')
  t.equal(state.shown?.name, 'e', 'removing another room keeps the shown one')
  t.same(changes, ['added d unread=0 pending', 'added e unread=0 pending', 'updated e unread=0 pending', 'shown e', 'removed d'])
})
