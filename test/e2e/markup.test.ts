// User-supplied markup (message text, display names, a broadcast's sender)
// is shown as text: no element is made from it and none of it runs.
import t from 'tap'
import { openChatAs } from '../helpers/browser.js'
import { broadcast } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'

t.test('markup in a message and in a name is shown as text and runs nothing', async (t) => {
  const server = await startServer(t)
  const evilName = '<img src=n onerror=__xss=2>'
  const payload = '<img src=x onerror="window.__xss=1;console.log(\'xss-ran\')"><script>window.__xss=3;console.log(\'xss-ran\')</script>'
  const alice = await openChatAs(t, server.url, 'alice', 'open')
  const mallory = await openChatAs(t, server.url, evilName, 'open')
  await alice.waitForMembers(['alice', evilName])

  await mallory.send(payload)
  await broadcast(server.url, 'open', '<b>bold?</b><iframe src="/"></iframe>', '<i>ops</i>')
  const expected = [
    { from: evilName, text: payload },
    { from: '<i>ops</i>', text: '<b>bold?</b><iframe src="/"></iframe>' }
  ]
  for (const page of [alice, mallory]) {
    await page.waitForMessages([payload, '<b>bold?</b><iframe src="/"></iframe>'])
    t.same(await page.messages(), expected, 'messages and senders shown literally')
    const list = page.page.getByTestId('message-list')
    t.equal(await list.locator('img, script, iframe, b, i').count(), 0, 'no element was made from the markup inside the message list')
    t.equal(await page.page.locator('img, iframe').count(), 0, 'no <img> or <iframe> anywhere in the page')
    t.equal(await page.page.locator('script').count(), 1, 'the only script is app.js')
    t.equal(await page.page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss), undefined, 'window.__xss was never set')
    t.same(page.consoleMessages.filter((message) => message.text.includes('xss-ran')), [], 'no injected console.log ran')
    t.same(page.requests.filter((url) => /\/(x|n)$/.test(url)), [], 'no image request was made from the markup')
    t.ok((await page.memberNames()).includes(evilName), 'the markup name is a member, as text')
    t.same(await page.page.locator('[data-testid=member] .member-name').allTextContents(),
      page === alice ? ['alice', evilName] : [evilName, 'alice'], 'member names shown literally')
    await page.assertHealthy(t)
  }
  t.equal(await mallory.page.locator('#identity').textContent(), `as ${evilName}`, 'the identity line shows the name literally')
  t.ok((await alice.systemTexts()).includes(`${evilName} joined`), 'the presence line shows the name literally')
})
