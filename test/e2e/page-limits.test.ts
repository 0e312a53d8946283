// The page checks what the server will check, with the server's own limits
// from GET /config.json: text and names counted in code points (not UTF-16
// units), room ids against the server's pattern. Without /config.json it
// checks no limits and shows the server's refusals instead.
import t from 'tap'
import { BrowserSession, openChatAs } from '../helpers/browser.js'
import { startServer } from '../helpers/server.js'

interface PageConfig { maxTextLength: number, maxNameLength: number, roomPattern: string, roomRule: string }

/** Chromium's console line for a resource answered 404 (the stubbed /config.json). */
const MISSING_RESOURCE = /Failed to load resource: .*404/

t.test('limits from /config.json: text and names in code points, rooms by the server\'s pattern and rule', async (t) => {
  const server = await startServer(t, { MAX_TEXT_LENGTH: '10' })
  const config = await (await fetch(`${server.url}/config.json`)).json() as PageConfig
  t.equal(config.maxTextLength, 10, 'the server serves its configured text limit')

  // 32 emoji are 32 code points but 64 UTF-16 units: a name the server takes.
  const wideName = '😀'.repeat(config.maxNameLength)
  const page = await openChatAs(t, server.url, wideName, 'limits')
  t.equal(await page.page.locator('#identity').textContent(), `as ${wideName}`, 'a name of maxNameLength code points is accepted whole')

  await page.page.getByTestId('name-input').fill('x'.repeat(config.maxNameLength + 1))
  await page.page.getByTestId('name-button').click()
  t.equal(await page.page.getByTestId('name-error').textContent(), `A name has at most ${config.maxNameLength} characters.`,
    'a name one over the server\'s limit is refused, with the limit')
  t.equal(await page.page.getByTestId('name-input').getAttribute('aria-invalid'), 'true')
  await page.page.getByTestId('name-input').fill(wideName)

  t.equal(await page.page.locator('#room-hint').textContent(), config.roomRule, 'the room hint is the server\'s rule')
  await page.page.getByTestId('room-input').fill('no spaces allowed')
  await page.page.getByTestId('join-button').click()
  t.equal(await page.page.getByTestId('join-error').textContent(), `Not a room name (${config.roomRule}).`, 'a bad room id is refused with the server\'s rule')
  t.equal(await page.page.getByTestId('room-tab').count(), 1, 'no tab was added for it')
  t.ok(new RegExp(config.roomPattern).test('limits'), 'the pattern the page used accepts the joined room')

  // Ten emoji: ten code points (the limit), twenty UTF-16 units.
  const composer = page.page.getByTestId('composer')
  const atLimit = '😀'.repeat(10)
  await composer.fill(atLimit)
  t.equal(await page.page.locator('#char-count').textContent(), '0 characters left', 'the counter counts code points')
  await composer.press('Enter')
  await page.waitForMessages([atLimit])
  t.equal(await page.page.getByTestId('composer-error').textContent(), '', 'accepted by the server')

  const over = '😀'.repeat(11)
  await composer.fill(over)
  t.equal(await page.page.locator('#char-count').textContent(), '1 characters over the limit')
  await composer.press('Enter')
  t.equal(await page.page.getByTestId('composer-error').textContent(), 'Not sent: 1 characters over the limit.', 'refused before sending')
  t.equal(await composer.inputValue(), over, 'the text stays in the composer')
  t.same(page.frames.filter(({ frame }) => frame.type === 'error'), [], 'the server was never asked')
  t.same(await page.messageTexts(), [atLimit], 'nothing more was shown')
  await page.assertHealthy(t)
})

t.test('without /config.json the page checks no limits and shows the server\'s refusals', async (t) => {
  const server = await startServer(t, { MAX_TEXT_LENGTH: '10' })
  const browser = await BrowserSession.launch(t)
  await browser.context.route('**/config.json', (route) => route.fulfill({ status: 404, body: '' }))
  const page = await browser.open(server.url)
  await page.setName('fallback')
  await page.join('fallback')
  t.equal(await page.page.locator('#room-hint').isHidden(), true, 'no room rule is shown')
  t.ok(page.consoleMessages.some((message) => message.type === 'warning' && /Limits unknown/.test(message.text)), 'a warning on the console says why')

  const composer = page.page.getByTestId('composer')
  await composer.fill('x'.repeat(11))
  t.equal(await page.page.locator('#char-count').textContent(), '', 'no counter without a known limit')
  await composer.press('Enter')
  const error = page.page.getByTestId('composer-error')
  await error.filter({ hasText: /^Not sent: / }).waitFor()
  t.match(await error.textContent(), /^Not sent: .*1-10 characters/, 'the server\'s refusal is shown')
  t.equal(await composer.inputValue(), 'x'.repeat(11), 'and the text given back')

  await page.page.getByTestId('room-input').fill('no spaces allowed')
  await page.page.getByTestId('join-button').click()
  await page.page.getByTestId('join-error').filter({ hasText: /^Could not join no spaces allowed\./ }).waitFor()
  t.equal(await page.page.getByTestId('room-tab').count(), 1, 'the refused room\'s tab is gone again')
  await page.assertHealthy(t, [MISSING_RESOURCE])
})
