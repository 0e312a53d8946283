// A short conversation on the chat page, photographed: always as a test
// artifact under test-artifacts/ (gitignored), and as the README's
// docs/screenshot.png (1280x800, light theme) when that file is missing or
// UPDATE_SCREENSHOT=1 is set — every run would otherwise rewrite the committed
// image, since the times shown differ from run to run.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ARTIFACTS_DIR, BrowserSession, pngSize, ROOT } from '../helpers/browser.js'
import { broadcast } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'

const ROOM = 'general'
const DOCS_SCREENSHOT = join(ROOT, 'docs', 'screenshot.png')

/** Relative luminance (0 dark … 1 light) of a CSS `rgb(...)` colour. */
function luminance (color: string): number {
  const [r, g, b] = (color.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number)
  if (r === undefined || g === undefined || b === undefined) throw new Error(`not an rgb colour: ${color}`)
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
}

t.test('a screenshot of a short conversation, light theme at 1280x800 (and dark as an artifact)', async (t) => {
  const server = await startServer(t)
  const aliceBrowser = await BrowserSession.launch(t, { viewport: { width: 1280, height: 800 }, colorScheme: 'light' })
  const bobBrowser = await BrowserSession.launch(t)
  const alice = await aliceBrowser.open(server.url)
  await alice.setName('Alice')
  await alice.join('random')
  await alice.join(ROOM)
  const bob = await bobBrowser.open(server.url)
  await bob.setName('Bob')
  await bob.join(ROOM)
  await alice.waitForMembers(['Alice', 'Bob'])

  const lines: Array<[typeof alice, string]> = [
    [alice, 'Morning! Is the release still on for today?'],
    [bob, 'Yes, the build is green. Deploying after lunch.'],
    [alice, 'Great, I will keep an eye on the dashboards.']
  ]
  for (const [speaker, text] of lines) {
    await speaker.send(text)
    await alice.waitForMessages([text])
  }
  await broadcast(server.url, ROOM, 'Deploy 42 finished: all checks passed.', 'deploy-bot')
  await bob.send('Nice, thanks everyone!')
  const texts = [...lines.map(([, text]) => text), 'Deploy 42 finished: all checks passed.', 'Nice, thanks everyone!']
  await alice.waitForMessages(texts)
  t.same(await alice.messageTexts(), texts, 'the conversation is shown in order, once')
  // A message in the other room: its tab shows an unread count, the shown room is untouched.
  await broadcast(server.url, 'random', 'Lunch at noon?', 'Carol')
  const unread = alice.page.locator('[data-testid=room-tab][data-room=random] [data-testid=unread-count]')
  await unread.waitFor({ state: 'visible' })
  t.equal(await unread.textContent(), '1', 'one unread message in the other room')
  t.same(await alice.messageTexts(), texts, 'the other room\'s message is not shown in this one')
  // Nothing may be focused-and-blinking or half-typed in the picture.
  await alice.page.getByTestId('composer').fill('')
  await alice.page.locator('body').click({ position: { x: 5, y: 795 } })

  const background = await alice.page.evaluate(() => getComputedStyle(document.body).backgroundColor)
  t.ok(luminance(background) > 0.8, `light theme background (${background})`)
  const artifact = join(ARTIFACTS_DIR, 'chat-conversation.png')
  const targets = [artifact]
  const updateDocs = process.env.UPDATE_SCREENSHOT === '1' || !existsSync(DOCS_SCREENSHOT)
  if (updateDocs) targets.push(DOCS_SCREENSHOT)
  const png = await alice.screenshot(...targets)
  t.same(pngSize(png), { width: 1280, height: 800 }, 'the screenshot is 1280x800')
  t.same(readFileSync(artifact), png, `saved as ${artifact}`)
  if (updateDocs) t.same(readFileSync(DOCS_SCREENSHOT), png, `saved as ${DOCS_SCREENSHOT}`)
  else t.comment(`${DOCS_SCREENSHOT} kept; UPDATE_SCREENSHOT=1 rewrites it`)
  t.same(pngSize(readFileSync(DOCS_SCREENSHOT)), { width: 1280, height: 800 }, 'the README screenshot is 1280x800')

  await alice.page.emulateMedia({ colorScheme: 'dark' })
  const darkBackground = await alice.page.evaluate(() => getComputedStyle(document.body).backgroundColor)
  t.ok(luminance(darkBackground) < 0.2, `dark theme background follows the system setting (${darkBackground})`)
  await alice.screenshot(join(ARTIFACTS_DIR, 'chat-conversation-dark.png'))

  await alice.assertHealthy(t)
  await bob.assertHealthy(t)
})
