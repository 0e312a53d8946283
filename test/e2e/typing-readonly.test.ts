// Rooms with rules on the page, in Chromium (issue 12, item 9): "… is
// typing" appears on the other page and clears when that member's message
// arrives or 5 s after their last keystroke signal; a read-only room shows
// that it is read-only instead of an input (and a presence-off room that its
// member list is not shared), and a refused join says why.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ACTION_TIMEOUT_MS, openChatAs, type ChatPage } from '../helpers/browser.js'
import { startServer, TEST_TOKEN } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

/** How long the page shows "… is typing" after the last signal (public/typing.js). */
const TYPING_SHOWN_MS = 5000
/** The page's throttle: at most one typing signal per room this often. */
const TYPING_SIGNAL_INTERVAL_MS = 2000

/** The indicator's text, or undefined while it is hidden. */
function typingLine (page: ChatPage): Promise<string | undefined> {
  return page.page.getByTestId('typing-indicator').evaluate((line) => (line as HTMLElement).hidden ? undefined : line.textContent ?? '')
}

async function waitForTyping (page: ChatPage, text: string | undefined, what: string, timeoutMs = ACTION_TIMEOUT_MS): Promise<void> {
  let shown: string | undefined
  try {
    await waitFor(async () => (shown = await typingLine(page)) === text, what, timeoutMs, 25)
  } catch (error) {
    throw new Error(`${(error as Error).message}; shown: ${JSON.stringify(shown)}`)
  }
}

/** A policy file for the test's server, removed in teardown. */
function policyFile (t: Parameters<typeof startServer>[0], policies: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-e2e-policies-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'namespaces.json')
  writeFileSync(path, JSON.stringify(policies))
  return path
}

t.test('typing shows on the other page, throttled, and clears on the message and after 5 s', async (t) => {
  const server = await startServer(t)
  const alice = await openChatAs(t, server.url, 'alice', 'lobby')
  const bob = await openChatAs(t, server.url, 'bob', 'lobby')
  await alice.waitForMembers(['alice', 'bob'])
  t.equal(await typingLine(bob), undefined, 'nobody is typing at first')

  // Alice types a sentence, a key every 100 ms for about 3 s.
  const composer = alice.page.getByTestId('composer')
  const started = Date.now()
  await composer.pressSequentially('hello bob, how are you', { delay: 100 })
  const typedMs = Date.now() - started
  await waitForTyping(bob, 'alice is typing', 'bob to see alice typing')
  t.equal(await bob.page.locator('[data-testid=typing-indicator] bdi').textContent(), 'alice', 'the name is isolated in a <bdi>')
  const signals = bob.frames.filter(({ frame }) => frame.type === 'signal')
  t.ok(signals.length >= 1 && signals.length <= Math.ceil(typedMs / TYPING_SIGNAL_INTERVAL_MS) + 1,
    `${signals.length} typing signals for ${typedMs} ms of typing (at most one per ${TYPING_SIGNAL_INTERVAL_MS} ms)`)
  t.match(signals[0]?.frame, { type: 'signal', room: 'lobby', event: 'typing', from: 'alice' })
  t.equal(await typingLine(alice), undefined, 'alice is not shown her own typing')
  t.same(alice.frames.filter(({ frame }) => frame.type === 'signal'), [], 'and the server did not echo it')

  // Her message arrives: the line goes at once, well before the 5 s.
  await composer.press('Enter')
  await bob.waitForMessages(['hello bob, how are you'])
  const messageAt = Date.now()
  await waitForTyping(bob, undefined, 'the line to clear with the message', 1000)
  t.ok(Date.now() - messageAt < TYPING_SHOWN_MS, 'cleared by the message, not by the timeout')

  // Both type; then each stops: the line follows, and clears 5 s after the last signal.
  await composer.pressSequentially('one more', { delay: 20 })
  await bob.page.getByTestId('composer').pressSequentially('me too', { delay: 20 })
  await waitForTyping(bob, 'alice is typing', 'bob sees alice again (a sent message restarts the throttle)')
  await waitForTyping(alice, 'bob is typing', 'alice sees bob')
  const lastSignalAt = Date.now()
  await waitForTyping(bob, undefined, 'the line to clear after the timeout', TYPING_SHOWN_MS + 3000)
  const clearedAfter = Date.now() - lastSignalAt
  t.ok(clearedAfter > TYPING_SHOWN_MS - 1500, `cleared ${clearedAfter} ms after the last keystroke: by the timeout`)
  t.equal(await composer.inputValue(), 'one more', 'the draft is untouched')

  t.same(bob.frames.filter(({ frame }) => frame.type === 'error'), [], 'no signal was refused')
  await alice.assertHealthy(t)
  await bob.assertHealthy(t)
})

t.test('two and three people typing', async (t) => {
  const server = await startServer(t)
  const watcher = await openChatAs(t, server.url, 'watcher', 'lobby')
  const typists = [
    await openChatAs(t, server.url, 'ann', 'lobby'),
    await openChatAs(t, server.url, 'ben', 'lobby'),
    await openChatAs(t, server.url, 'cyd', 'lobby')
  ]
  await watcher.waitForMembers(['watcher', 'ann', 'ben', 'cyd'])
  await typists[0]?.page.getByTestId('composer').pressSequentially('a', { delay: 10 })
  await waitForTyping(watcher, 'ann is typing', 'one')
  await typists[1]?.page.getByTestId('composer').pressSequentially('b', { delay: 10 })
  await waitForTyping(watcher, 'ann and ben are typing', 'two, in order of their first signal')
  await typists[2]?.page.getByTestId('composer').pressSequentially('c', { delay: 10 })
  await waitForTyping(watcher, '3 people are typing', 'three')
  await typists[1]?.page.getByTestId('composer').press('Enter')
  await waitForTyping(watcher, 'ann and cyd are typing', 'ben\'s message took him off the line')
  await watcher.assertHealthy(t)
})

t.test('a read-only room shows it is read-only and still gets announcements; a refused join says why', async (t) => {
  const NAMESPACES_FILE = policyFile(t, {
    default: {},
    namespaces: {
      news: { send: 'none', presence: false },
      support: { join: 'granted', send: 'granted' }
    }
  })
  const server = await startServer(t, { NAMESPACES_FILE })
  const reader = await openChatAs(t, server.url, 'reader', 'news:today')
  const note = reader.page.getByTestId('read-only-note')
  await note.waitFor({ state: 'visible' })
  t.equal(await note.textContent(), 'Read-only room: only announcements are posted here.')
  t.notOk(await reader.page.getByTestId('composer').isVisible(), 'no input to type into')
  t.notOk(await reader.page.getByTestId('send-button').isVisible(), 'no send button')
  // Presence off there: the member list says it is not shared rather than show an empty room.
  t.ok(await reader.page.getByTestId('members-hidden').isVisible(), 'the member list is not shared in this room')
  t.equal(await reader.page.getByTestId('member').count(), 0)

  const response = await fetch(`${server.url}/rooms/news:today/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'Maintenance at 22:00 UTC', from: 'ops' })
  })
  t.equal(response.status, 202, 'the back office posts into the read-only room')
  await reader.waitForMessages(['Maintenance at 22:00 UTC'])

  // Another room, open to all: the composer is back.
  await reader.join('lobby')
  await reader.page.getByTestId('composer').waitFor({ state: 'visible' })
  t.notOk(await note.isVisible(), 'the note is only for the read-only room')
  await reader.waitForMembers(['reader'])
  t.notOk(await reader.page.getByTestId('members-hidden').isVisible(), 'members are listed again')
  await reader.page.locator('[data-testid=room-tab][data-room="news:today"]').click()
  await note.waitFor({ state: 'visible' })

  // A guest asking for a room granted per ticket: refused, in plain words.
  await reader.page.getByTestId('room-input').fill('support:42')
  await reader.page.getByTestId('join-button').click()
  const joinError = reader.page.getByTestId('join-error')
  await waitFor(async () => (await joinError.textContent() ?? '') !== '', 'the refusal', ACTION_TIMEOUT_MS)
  t.equal(await joinError.textContent(), 'You are not allowed to join support:42 — it needs a sign-in that grants access to it.')
  t.equal(await reader.page.locator('[data-testid=room-tab][data-room="support:42"]').count(), 0, 'no tab kept for it')
  t.match(reader.frames.find(({ frame }) => frame.type === 'error')?.frame, { code: 'forbidden', ref: String }, 'the server said forbidden, with the join\'s ref')
  await reader.assertHealthy(t)
})
