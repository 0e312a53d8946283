// The page with a connection token (PROTOCOL §7): it fetches the token from
// the host application's endpoint (PAGE_TOKEN_URL, here a test-only route on
// the same origin), shows the token's name and the badges a reader may trust,
// and stops for good, saying why, when the back office disconnects the user.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../app.js'
import { BrowserSession, type ChatPage } from '../helpers/browser.js'
import { broadcast } from '../helpers/http.js'
import { TEST_TOKEN, testConfig } from '../helpers/server.js'
import { hsToken, TEST_JWT_SECRET } from '../helpers/tokens.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { TestClient } from '../helpers/ws-client.js'

/** Where the page fetches its token: same origin, so the page's CSP (connect-src 'self') lets it. */
const TOKEN_PATH = '/test/chat-token'
/** The host application's session cookie, as a signed-in user's browser would carry it. */
const SESSION_COOKIE = 'host-session'
const USER = { sub: 'user-42', name: 'Alice' }
/** How long the page is watched after the disconnect for any further connection attempt. */
const QUIET_WATCH_MS = 4000

interface TokenHost {
  app: FastifyInstance
  url: string
  wsUrl: string
  /** Calls to the token endpoint so far. */
  tokenFetches: number
  /** WebSocket upgrade requests the server has seen so far (accepted or not). */
  upgrades: number
}

/**
 * The service with HS256 tokens and PAGE_TOKEN_URL, plus the host
 * application's token endpoint registered by this test only: it mints a
 * token for the session cookie's user, and answers 401 without one.
 */
async function startTokenHost (t: Test): Promise<TokenHost> {
  const app = await buildApp(testConfig({ AUTH_JWT_SECRET: TEST_JWT_SECRET, PAGE_TOKEN_URL: TOKEN_PATH }))
  const host = { app, url: '', wsUrl: '', tokenFetches: 0, upgrades: 0 }
  app.get(TOKEN_PATH, async (request, reply) => {
    host.tokenFetches++
    const session = /(?:^|;\s*)host-session=([^;]+)/.exec(request.headers.cookie ?? '')?.[1]
    if (session !== USER.sub) return reply.code(401).send({ error: 'not signed in' })
    return { token: await hsToken({ sub: USER.sub, name: USER.name }) }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  // Every upgrade attempt, counted below the router: a reconnect loop cannot hide from this.
  app.server.on('upgrade', () => { host.upgrades++ })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address')
  host.url = `http://127.0.0.1:${address.port}`
  host.wsUrl = `ws://127.0.0.1:${address.port}/ws`
  return host
}

interface ShownMessage {
  from: string
  text: string
  mine: boolean
  /** The badge's text when it is displayed, null when it is not. */
  badge: string | null
  badgeColor: string | null
  kind: 'api' | 'user' | 'guest'
}

/** The messages on the page with what a reader sees of their origin. */
function shownMessages (page: ChatPage): Promise<ShownMessage[]> {
  return page.page.locator('[data-testid=message]').evaluateAll((items) => items.map((item) => {
    const badge = item.querySelector('[data-testid=message-badge]')
    const displayed = badge instanceof HTMLElement && getComputedStyle(badge).display !== 'none' && badge.offsetWidth > 0
    return {
      from: item.querySelector('[data-testid=message-from]')?.textContent ?? '',
      text: item.querySelector('[data-testid=message-text]')?.textContent ?? '',
      mine: item.classList.contains('mine'),
      badge: displayed ? badge.textContent : null,
      badgeColor: displayed ? getComputedStyle(badge).backgroundColor : null,
      kind: item.classList.contains('from-api') ? 'api' : item.classList.contains('from-user') ? 'user' : 'guest'
    }
  }))
}

t.test('the page signs in with a token from the host, shows who is verified, and stops when the user is disconnected', async (t) => {
  const host = await startTokenHost(t)
  const browser = await BrowserSession.launch(t)
  await browser.context.addCookies([{ name: SESSION_COOKIE, value: USER.sub, url: host.url }])

  const page = await browser.open(host.url)
  await page.waitForIdentity(USER.name)
  t.ok(host.tokenFetches >= 1, 'the page fetched its token from PAGE_TOKEN_URL before connecting')
  t.match(page.welcomes()[0], { socket: 0, name: USER.name }, 'welcomed under the token\'s name')
  t.equal(page.framesOn(0, 'welcome')[0]?.user, USER.sub, 'the welcome carries the token\'s user id')

  // A name typed in the form is ignored for a signed-in user: the token's name stays.
  const socketUrls: string[] = []
  page.page.on('websocket', (socket) => { socketUrls.push(socket.url()) })
  await page.page.getByTestId('name-input').fill('mallory')
  await page.page.getByTestId('name-button').click()
  await waitFor(() => page.welcomes().length === 2, 'the page reconnected after the name change', 10_000)
  await page.waitForIdentity(USER.name)
  t.match(socketUrls, [/[?&]name=mallory(&|$)/], 'the page asked for "mallory"')
  t.same(page.welcomes().map((welcome) => welcome.name), [USER.name, USER.name], 'the server kept the token\'s name')
  t.notOk(socketUrls.some((url) => /token/i.test(url)), 'the token never appears in the WebSocket URL (it goes as a subprotocol)')

  await page.join('support')
  await page.send('hello from a verified user')
  await page.waitForMessages(['hello from a verified user'])

  // The back office, and a guest who calls itself what the back office is called.
  await broadcast(host.url, 'support', 'maintenance at noon')
  const impostor = await TestClient.open(t, host.wsUrl, 'system')
  t.equal(impostor.ofType('welcome')[0]?.name, 'system', 'a guest may be called "system"')
  await impostor.join('support')
  impostor.send({ type: 'send', room: 'support', text: 'please send me your password' })
  await page.waitForMessages(['maintenance at noon', 'please send me your password'])

  const shown = await shownMessages(page)
  t.match(shown, [
    { from: USER.name, text: 'hello from a verified user', mine: true, kind: 'user', badge: '✓' },
    { from: 'system', text: 'maintenance at noon', mine: false, kind: 'api', badge: 'API' },
    { from: 'system', text: 'please send me your password', mine: false, kind: 'guest', badge: null }
  ], 'verified user and API badged; the guest "system" shows no badge')
  t.equal(shown.length, 3, 'each message shown once')
  const [own, api, guest] = shown
  t.not(api?.badgeColor, own?.badgeColor, 'the API badge looks different from a signed-in user\'s')
  t.not(api?.kind, guest?.kind, 'the guest "system" is not rendered as the API')

  // The back office disconnects the user: 4003, no reconnect, and the page says why.
  const fetchesBefore = host.tokenFetches
  const upgradesBefore = host.upgrades
  t.equal(upgradesBefore, 3, 'the counter saw the page\'s two connections and the guest\'s (so it would see a loop)')
  const socketsBefore = socketUrls.length
  const response = await fetch(`${host.url}/users/${USER.sub}/disconnect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'account suspended' })
  })
  t.equal(response.status, 202, 'the back office accepted the disconnect')
  await page.waitForConnectionState('closed')
  const banner = await page.banner()
  t.match(banner.label, /not allowed/i, 'the banner says the user is not allowed in')
  t.match(banner.label, /account suspended/, 'and gives the back office\'s reason')
  t.ok(banner.retryShown, 'reconnecting is left to the user (a button)')
  t.ok(await page.page.locator('#identity').isHidden(), 'the "as Alice" line is gone')

  await sleep(QUIET_WATCH_MS)
  t.equal(host.upgrades, upgradesBefore, `no WebSocket upgrade reached the server in the ${QUIET_WATCH_MS} ms after the 4003`)
  t.equal(socketUrls.length, socketsBefore, 'the browser opened no new WebSocket')
  t.equal(host.tokenFetches, fetchesBefore, 'nor asked the token endpoint again')
  t.equal(await page.connectionState(), 'closed', 'the page stays closed')
  const history = await page.connectionHistory()
  t.equal(history[history.length - 1], 'closed', 'closed is the last state')
  t.notOk(history.slice(history.lastIndexOf('online') + 1).includes('reconnecting'), 'no reconnecting after the disconnect')

  // The page shows only what the API said: the 4003 is a closed connection, not a page error.
  await page.assertHealthy(t)
})
