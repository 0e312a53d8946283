// Text that carries bidi controls is shown isolated: a right-to-left override
// in a message cannot reorder the sender's name or anything around it
// (issue 10, finding 7), and names that would impersonate never get in.
import t from 'tap'
import { openChatAs } from '../helpers/browser.js'
import { broadcast } from '../helpers/http.js'
import { startServer } from '../helpers/server.js'

/** How the page isolates one element: its tag, its dir attribute and the computed unicode-bidi. */
interface Isolation {
  tag: string
  dir: string | null
  unicodeBidi: string
}

t.test('a message text with an RLO renders isolated; names are <bdi>', async (t) => {
  const server = await startServer(t)
  const alice = await openChatAs(t, server.url, 'alice', 'open')
  // U+202E RIGHT-TO-LEFT OVERRIDE: unisolated, "nimda" would show as "admin"
  // and pull the text after it (the time, the next name) into its run.
  const text = 'see \u202Enimda'
  await alice.send(text)
  await broadcast(server.url, 'open', '\u202Ereversed? fdp.exe', 'ops')
  await alice.waitForMessages([text, '\u202Ereversed? fdp.exe'])

  // No named functions inside evaluate: tsx would wrap them in a helper the page lacks.
  const [from, shown] = await alice.page.locator('[data-testid=message]').first().evaluate((item): Isolation[] =>
    ['[data-testid=message-from]', '[data-testid=message-text]'].map((selector) => {
      const element = item.querySelector(selector)
      return {
        tag: element?.tagName.toLowerCase() ?? 'missing',
        dir: element?.getAttribute('dir') ?? null,
        unicodeBidi: element === null ? '' : getComputedStyle(element).unicodeBidi
      }
    }))
  const isolation = { from, text: shown }
  t.ok(isolation.from?.tag === 'bdi' || isolation.from?.dir === 'auto', `the name element is a bdi or has dir=auto (${JSON.stringify(isolation.from)})`)
  t.equal(isolation.from?.unicodeBidi, 'isolate', 'the browser isolates the name')
  t.equal(isolation.text?.dir, 'auto', 'the text takes its direction from its own content')
  t.match(isolation.text?.unicodeBidi, /^(isolate|plaintext)$/, 'the browser isolates the text')
  t.same(await alice.messages(), [{ from: 'alice', text }, { from: 'ops', text: '\u202Ereversed? fdp.exe' }], 'shown as sent')

  const member = await alice.page.locator('[data-testid=member] .member-name').first().evaluate((element) => ({
    tag: element.tagName.toLowerCase(), unicodeBidi: getComputedStyle(element).unicodeBidi
  }))
  t.same(member, { tag: 'bdi', unicodeBidi: 'isolate' }, 'member names are isolated too')
  t.equal(await alice.page.locator('#identity bdi').textContent(), 'alice', 'and the "as <name>" line')

  // A name that would impersonate is refused by the page before it connects.
  await alice.page.getByTestId('name-input').fill('\u202Enimda')
  await alice.page.getByTestId('name-button').click()
  t.match(await alice.page.getByTestId('name-error').textContent(), /formatting characters/, 'the page refuses an RLO name')
  await alice.assertHealthy(t)
})
