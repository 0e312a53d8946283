// Two people, each in a browser of their own, in one room: messages go both
// ways once and in order; members and presence lines update on both pages.
import t from 'tap'
import { openChatAs } from '../helpers/browser.js'
import { startServer } from '../helpers/server.js'

t.test('two pages in one room exchange messages; members and presence update on both', async (t) => {
  const server = await startServer(t)
  const alice = await openChatAs(t, server.url, 'alice', 'lobby')
  await alice.waitForMembers(['alice'])

  const bob = await openChatAs(t, server.url, 'bob', 'lobby')
  await bob.waitForMembers(['alice', 'bob'])
  await alice.waitForMembers(['alice', 'bob'])
  t.same(await alice.memberNames(), ['alice', 'bob'], 'alice is listed first on her own page')
  t.same(await bob.memberNames(), ['bob', 'alice'], 'bob is listed first on his own page')
  t.equal(await alice.page.locator('#members-count').textContent(), '2', 'member count on alice\'s page')
  t.equal(await bob.page.locator('#members-count').textContent(), '2', 'member count on bob\'s page')
  t.ok((await alice.systemTexts()).includes('bob joined'), 'alice is told bob joined')
  t.notOk((await bob.systemTexts()).includes('bob joined'), 'bob is not told of his own join')

  await alice.send('hi bob')
  await bob.waitForMessages(['hi bob'])
  await bob.send('hi alice')
  await alice.waitForMessages(['hi bob', 'hi alice'])
  await bob.waitForMessages(['hi bob', 'hi alice'])
  const conversation = [{ from: 'alice', text: 'hi bob' }, { from: 'bob', text: 'hi alice' }]
  t.same(await alice.messages(), conversation, 'alice sees both messages once, in order')
  t.same(await bob.messages(), conversation, 'bob sees both messages once, in order')
  t.same(await alice.page.locator('[data-testid=message].mine [data-testid=message-text]').allTextContents(), ['hi bob'],
    'alice\'s own message is marked as hers')
  t.equal(await alice.page.getByTestId('composer').inputValue(), '', 'the composer is cleared after sending')

  await bob.assertHealthy(t)
  await bob.page.close()
  await alice.waitForMembers(['alice'])
  t.ok((await alice.systemTexts()).includes('bob left'), 'alice is told bob left')
  t.equal(await alice.page.locator('#members-count').textContent(), '1', 'member count back to 1')
  await alice.assertHealthy(t)
})
