// The HTTP broadcast reaches the page; the page is served with a Content-
// Security-Policy forbidding inline script, which Chromium enforces.
import t from 'tap'
import { BrowserSession, openChatAs } from '../helpers/browser.js'
import { broadcast } from '../helpers/http.js'
import { waitFor } from '../helpers/wait.js'
import { startServer } from '../helpers/server.js'

t.test('an HTTP broadcast appears on the page', async (t) => {
  const server = await startServer(t)
  const page = await openChatAs(t, server.url, 'reader', 'news')
  const other = await broadcast(server.url, 'elsewhere', 'not for this room', 'deploy-bot')
  t.equal(other.room, 'elsewhere')
  const sent = await broadcast(server.url, 'news', 'deploy 42 finished', 'deploy-bot')
  await page.waitForMessages(['deploy 42 finished'])
  t.same(await page.messages(), [{ from: 'deploy-bot', text: 'deploy 42 finished' }], 'shown once, with its sender; nothing from another room')
  t.equal(await page.page.locator('[data-testid=message]').getAttribute('data-id'), sent.id, 'the element carries the id the API returned')

  // Without `from` the service picks a sender; the text still arrives.
  await broadcast(server.url, 'news', 'second notice')
  await page.waitForMessages(['second notice'])
  t.equal(await page.countMessages('deploy 42 finished'), 1, 'the first broadcast is still shown once')
  await page.assertHealthy(t)
})

t.test('the page is served with a CSP that forbids inline script, and Chromium enforces it', async (t) => {
  const server = await startServer(t)
  const response = await fetch(`${server.url}/`)
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type') ?? '', /^text\/html/)
  const csp = response.headers.get('content-security-policy') ?? ''
  const directives = new Map(csp.split(';').map((part) => part.trim().split(/\s+/)).map(([name, ...values]) => [name, values]))
  t.same(directives.get('script-src'), ["'self'"], 'scripts only from the page\'s own origin')
  t.notMatch(csp, /unsafe-inline|unsafe-eval|unsafe-hashes|\*/, 'no inline script, eval or wildcard anywhere in the policy')
  t.ok(directives.has('default-src'), 'a default-src fallback is set')
  for (const asset of ['/app.js', '/chat-client.js', '/styles.css']) {
    const assetResponse = await fetch(`${server.url}${asset}`)
    t.equal(assetResponse.status, 200, `${asset} is served`)
    t.equal(assetResponse.headers.get('content-security-policy'), csp, `${asset} carries the same policy`)
  }

  const browser = await BrowserSession.launch(t)
  const page = await browser.open(server.url)
  t.equal(page.documentHeaders['content-security-policy'], csp, 'the browser received the policy with the document')
  await page.setName('csp-check')
  await page.join('csp')
  await page.send('the page works under its own policy')
  await page.waitForMessages(['the page works under its own policy'])
  await page.assertHealthy(t)

  // The policy is enforced, and the violation detector used by every test sees it:
  // an inline handler and an inline script added to the DOM both get blocked.
  await page.page.evaluate(() => {
    const scratch = document.createElement('div')
    scratch.innerHTML = '<img src="data:," onerror="window.__inline = 1">'
    document.body.append(scratch)
    const script = document.createElement('script')
    script.textContent = 'window.__inline = 2'
    document.body.append(script)
  })
  await waitFor(async () => (await page.cspViolations()).length >= 2, 'two CSP violations reported', 5000)
  const violations = await page.cspViolations()
  t.same(violations.map((violation) => violation.directive).sort(), ['script-src-attr', 'script-src-elem'], 'both blocked by script-src')
  t.equal(await page.page.evaluate(() => (window as unknown as { __inline?: unknown }).__inline), undefined, 'neither ran')
})
