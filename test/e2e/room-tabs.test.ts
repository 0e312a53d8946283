// The room tabs: an unread message updates its tab in place (the list is not
// rebuilt), showing a room marks it read, and leaving the room on screen
// shows its neighbour and keeps the keyboard focus in the list.
import t from 'tap'
import { openChatAs } from '../helpers/browser.js'
import { broadcast } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'

t.test('tabs update in place; leaving the shown room shows its neighbour', async (t) => {
  const server = await startServer(t)
  const page = await openChatAs(t, server.url, 'tabby', 'one')
  await page.join('two')
  await page.join('three')
  const tab = (room: string) => page.page.locator(`[data-testid=room-tab][data-room="${room}"]`)
  t.equal(await tab('three').getAttribute('aria-current'), 'true', 'the room joined last is shown')

  // Mark the elements: a rebuilt list would lose the marks.
  await page.page.locator('[data-testid=room-tab]').evaluateAll((tabs) => {
    for (const element of tabs) (element as HTMLElement & { mark?: string }).mark = (element as HTMLElement).dataset.room
  })
  await broadcast(server.url, 'one', 'while away 1')
  await broadcast(server.url, 'one', 'while away 2')
  const unread = tab('one').getByTestId('unread-count')
  await unread.filter({ hasText: '2' }).waitFor()
  t.equal(await tab('one').getAttribute('aria-label'), 'one (2 unread)', 'the tab says so to screen readers')
  t.equal(await page.page.title(), '(2) Chat', 'and the page title')
  t.same(await page.page.locator('[data-testid=room-tab]').evaluateAll((tabs) => tabs.map((element) => (element as HTMLElement & { mark?: string }).mark)),
    ['one', 'two', 'three'], 'the same tab elements, in join order: updated in place')
  t.same(await page.messageTexts(), [], 'the shown room is untouched')

  await tab('one').click()
  await page.waitForMessages(['while away 1', 'while away 2'])
  t.equal(await tab('one').getAttribute('aria-current'), 'true', 'clicking a tab shows its room')
  t.equal(await tab('three').getAttribute('aria-current'), null, 'and no other')
  t.equal(await unread.isHidden(), true, 'its unread count is cleared')
  t.equal(await tab('one').getAttribute('aria-label'), null)
  t.equal(await page.page.title(), 'Chat')

  await tab('two').click()
  await page.page.locator('[data-testid=leave-room][data-room=two]').click()
  t.equal(await tab('two').count(), 0, 'the left room\'s tab is gone')
  t.equal(await tab('three').getAttribute('aria-current'), 'true', 'the next tab takes its place')
  t.equal(await page.page.locator('#room-title').textContent(), 'three')
  t.equal(await page.page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.room), 'three', 'focus moves to the tab shown')

  await page.page.locator('[data-testid=leave-room][data-room=three]').click()
  t.equal(await tab('one').getAttribute('aria-current'), 'true', 'with no next tab, the previous one')
  await page.page.locator('[data-testid=leave-room][data-room=one]').click()
  t.equal(await page.page.locator('#no-rooms').isVisible(), true, 'no rooms left')
  t.equal(await page.page.locator('#room-title').textContent(), 'No room selected')
  t.equal(await page.page.getByTestId('composer').isDisabled(), true, 'nothing to write to')
  t.equal(await page.page.evaluate(() => document.activeElement?.id), 'room-input', 'focus goes to the join field')
  await page.assertHealthy(t)
})
