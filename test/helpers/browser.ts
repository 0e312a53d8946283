// Browser end-to-end helpers: the system Chromium driven by playwright-core
// (never a downloaded browser), a chat page wrapper built on the page's
// data-testid hooks that records page errors, console output and CSP
// violations, and a loopback TCP proxy whose target can be switched (so a page
// keeps one origin while the node behind it changes).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core'
import type { Test } from 'tap'
import { waitFor } from './wait.js'

export const CHROMIUM_PATH = '/usr/bin/chromium'
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const ARTIFACTS_DIR = join(ROOT, 'test-artifacts')

/** Every Playwright action and wait of these tests gives up after this long. */
export const ACTION_TIMEOUT_MS = 10_000
/** Between two looks at the page while waiting (each look is a round trip to the browser). */
const POLL_MS = 50
const LAUNCH_TIMEOUT_MS = 30_000

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-gpu'
]

export interface BrowserOptions {
  viewport?: { width: number, height: number }
  colorScheme?: 'light' | 'dark'
}

/** A CSP violation as the page's `securitypolicyviolation` event reported it. */
export interface CspViolation {
  directive: string
  blockedURI: string
  sample: string
}

// Runs in the page before its own scripts (injected over CDP, so the CSP does
// not apply to it): records CSP violations and every connection-state change.
const PAGE_PROBE = `(() => {
  window.__cspViolations = []
  window.__connectionStates = []
  document.addEventListener('securitypolicyviolation', (event) => {
    window.__cspViolations.push({ directive: event.violatedDirective, blockedURI: event.blockedURI, sample: event.sample })
  })
  const watch = () => {
    const banner = document.querySelector('[data-testid=connection-state]')
    if (banner === null) return
    const record = () => {
      const last = window.__connectionStates[window.__connectionStates.length - 1]
      const state = banner.dataset.state
      if (last !== state) window.__connectionStates.push(state)
    }
    record()
    new MutationObserver(record).observe(banner, { attributes: true, attributeFilter: ['data-state'] })
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch)
  else watch()
})()`

/**
 * One Chromium with its own fresh profile directory (so two of them are two
 * people: separate storage). Closed, and its profile removed, in teardown.
 */
export class BrowserSession {
  private constructor (readonly context: BrowserContext, private readonly profileDir: string) {}

  static async launch (t: Test, options: BrowserOptions = {}): Promise<BrowserSession> {
    const profileDir = mkdtempSync(join(tmpdir(), 'chat-e2e-chromium-'))
    let context: BrowserContext
    try {
      context = await chromium.launchPersistentContext(profileDir, {
        executablePath: CHROMIUM_PATH,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: LAUNCH_TIMEOUT_MS,
        viewport: options.viewport ?? { width: 1280, height: 800 },
        colorScheme: options.colorScheme ?? 'light',
        locale: 'en-US',
        timezoneId: 'UTC'
      })
    } catch (error) {
      rmSync(profileDir, { recursive: true, force: true })
      throw error
    }
    const session = new BrowserSession(context, profileDir)
    t.teardown(() => session.close())
    context.setDefaultTimeout(ACTION_TIMEOUT_MS)
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS)
    await context.addInitScript({ content: PAGE_PROBE })
    return session
  }

  /** Opens `url` in a new tab and waits until the page is online. */
  async open (url: string): Promise<ChatPage> {
    const page = await this.context.newPage()
    const chat = new ChatPage(page)
    const response = await page.goto(url)
    if (response === null || response.status() !== 200) throw new Error(`GET ${url} answered ${response?.status()}`)
    chat.documentHeaders = await response.allHeaders()
    await chat.waitForConnectionState('online')
    return chat
  }

  async close (): Promise<void> {
    try {
      await this.context.close()
    } finally {
      rmSync(this.profileDir, { recursive: true, force: true })
    }
  }
}

export interface ReceivedFrame {
  socket: number
  frame: { type: string, [field: string]: unknown }
}

/** The chat page, driven through its data-testid hooks. */
export class ChatPage {
  readonly pageErrors: string[] = []
  readonly consoleMessages: Array<{ type: string, text: string }> = []
  readonly requests: string[] = []
  /** Every frame the page's WebSockets received, tagged with the socket (0, 1, … in order of opening). */
  readonly frames: ReceivedFrame[] = []
  documentHeaders: Record<string, string> = {}

  constructor (readonly page: Page) {
    page.on('pageerror', (error) => { this.pageErrors.push(String(error)) })
    page.on('console', (message: ConsoleMessage) => { this.consoleMessages.push({ type: message.type(), text: message.text() }) })
    page.on('request', (request) => { this.requests.push(request.url()) })
    let sockets = 0
    page.on('websocket', (socket) => {
      const index = sockets++
      socket.on('framereceived', ({ payload }) => {
        if (typeof payload !== 'string') return
        try {
          this.frames.push({ socket: index, frame: JSON.parse(payload) as ReceivedFrame['frame'] })
        } catch {
          this.frames.push({ socket: index, frame: { type: 'unparsable', payload } })
        }
      })
    })
  }

  /** The welcome frames received, oldest first, with the socket each came on. */
  welcomes (): Array<{ socket: number, node: string, name: string }> {
    return this.frames
      .filter(({ frame }) => frame.type === 'welcome')
      .map(({ socket, frame }) => ({ socket, node: String(frame.node), name: String(frame.name) }))
  }

  /** Frames of `type` received on `socket`. */
  framesOn (socket: number, type: string): Array<ReceivedFrame['frame']> {
    return this.frames.filter((received) => received.socket === socket && received.frame.type === type).map(({ frame }) => frame)
  }

  /** Types a name and submits it (the client reconnects under that name). */
  async setName (name: string): Promise<void> {
    await this.page.getByTestId('name-input').fill(name)
    await this.page.getByTestId('name-button').click()
    await this.waitForIdentity(name)
  }

  /** Waits until the server has welcomed this page under `name`. */
  async waitForIdentity (name: string): Promise<void> {
    await waitFor(async () => await this.connectionState() === 'online' && await this.page.locator('#identity').textContent() === `as ${name}`,
      `online as ${name}`, ACTION_TIMEOUT_MS, POLL_MS)
  }

  /** Joins `room` through the form and waits until its tab is confirmed by the server. */
  async join (room: string): Promise<void> {
    await this.page.getByTestId('room-input').fill(room)
    await this.page.getByTestId('join-button').click()
    const tab = this.page.locator(`[data-testid=room-tab][data-room="${room}"]:not(.pending)`)
    await tab.waitFor({ state: 'visible' })
  }

  /** Types `text` in the composer and presses Enter, as a user would. */
  async send (text: string): Promise<void> {
    const composer = this.page.getByTestId('composer')
    await composer.fill(text)
    await composer.press('Enter')
  }

  /** Texts of the messages shown, in order. */
  messageTexts (): Promise<string[]> {
    return this.page.locator('[data-testid=message] [data-testid=message-text]').allTextContents()
  }

  /** Messages shown as { from, text }, in order. */
  messages (): Promise<Array<{ from: string, text: string }>> {
    return this.page.locator('[data-testid=message]').evaluateAll((items) => items.map((item) => ({
      from: item.querySelector('[data-testid=message-from]')?.textContent ?? '',
      text: item.querySelector('[data-testid=message-text]')?.textContent ?? ''
    })))
  }

  /** How many shown messages have exactly this text. */
  async countMessages (text: string): Promise<number> {
    return (await this.messageTexts()).filter((shown) => shown === text).length
  }

  /** Waits until every text in `texts` is shown at least once. */
  async waitForMessages (texts: string[], timeoutMs = ACTION_TIMEOUT_MS): Promise<void> {
    let shown: string[] = []
    try {
      await waitFor(async () => {
        shown = await this.messageTexts()
        return texts.every((text) => shown.includes(text))
      }, `messages ${JSON.stringify(texts)}`, timeoutMs, POLL_MS)
    } catch (error) {
      throw new Error(`${(error as Error).message}; shown: ${JSON.stringify(shown)}`)
    }
  }

  /** Texts of the system lines (joins, leaves, recovery notes), in order. */
  systemTexts (): Promise<string[]> {
    return this.page.locator('[data-testid=message-list] li.system .system-text').allTextContents()
  }

  /** Names in the member list, in the order shown. */
  memberNames (): Promise<string[]> {
    return this.page.getByTestId('member').evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.name ?? ''))
  }

  /** Waits until the member list shows exactly `names` (in any order). */
  async waitForMembers (names: string[]): Promise<void> {
    const wanted = [...names].sort()
    let shown: string[] = []
    try {
      await waitFor(async () => {
        shown = await this.memberNames()
        return JSON.stringify([...shown].sort()) === JSON.stringify(wanted)
      }, `members ${JSON.stringify(wanted)}`, ACTION_TIMEOUT_MS, POLL_MS)
    } catch (error) {
      throw new Error(`${(error as Error).message}; shown: ${JSON.stringify(shown)}`)
    }
  }

  /** The banner's state: connecting, online, reconnecting, closed. */
  async connectionState (): Promise<string | null> {
    return this.page.getByTestId('connection-state').getAttribute('data-state')
  }

  /** The banner's state, its visible label (without the countdown) and whether "Retry now" is offered, read at one instant. */
  banner (): Promise<{ state: string, label: string, retryShown: boolean }> {
    return this.page.getByTestId('connection-state').evaluate((banner) => {
      const retry = document.querySelector('[data-testid=retry-button]')
      return {
        state: (banner as HTMLElement).dataset.state ?? '',
        label: banner.querySelector('#connection-label')?.textContent ?? '',
        retryShown: retry instanceof HTMLElement && !retry.hidden && retry.offsetParent !== null
      }
    })
  }

  async waitForConnectionState (state: string, timeoutMs = ACTION_TIMEOUT_MS): Promise<void> {
    await waitFor(async () => await this.connectionState() === state, `connection state ${state}`, timeoutMs, POLL_MS)
  }

  /** Every connection state the banner went through since the page loaded. */
  connectionHistory (): Promise<string[]> {
    return this.page.evaluate(() => (window as unknown as { __connectionStates: string[] }).__connectionStates)
  }

  cspViolations (): Promise<CspViolation[]> {
    return this.page.evaluate(() => (window as unknown as { __cspViolations: CspViolation[] }).__cspViolations)
  }

  /** Console errors, minus those matching `allowed` (e.g. expected connection failures). */
  consoleErrors (allowed: RegExp[] = []): string[] {
    return this.consoleMessages
      .filter((message) => message.type === 'error' && !allowed.some((pattern) => pattern.test(message.text)))
      .map((message) => message.text)
  }

  /**
   * Asserts nothing went wrong in the page: no uncaught errors, no CSP
   * violation (as an event or as Chromium's console report), no console error
   * beyond `allowedConsoleErrors`.
   */
  async assertHealthy (t: Test, allowedConsoleErrors: RegExp[] = []): Promise<void> {
    t.same(this.pageErrors, [], 'no uncaught errors in the page')
    t.same(await this.cspViolations(), [], 'no CSP violation reported by the page')
    t.same(this.consoleMessages.filter((message) => /Content Security Policy/i.test(message.text)), [], 'no CSP report on the console')
    t.same(this.consoleErrors(allowedConsoleErrors), [], 'no console errors')
  }

  /** Saves a PNG of the viewport to each path (directories are created). */
  async screenshot (...paths: string[]): Promise<Buffer> {
    const png = await this.page.screenshot({ type: 'png' })
    for (const path of paths) {
      mkdirSync(dirname(path), { recursive: true })
      writeFileSync(path, png)
    }
    return png
  }
}

/** Width and height from a PNG's IHDR chunk. */
export function pngSize (png: Buffer): { width: number, height: number } {
  if (png.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a') throw new Error('not a PNG')
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}

/**
 * One person: a browser of their own (own profile, own storage) with the page
 * open, named `name`, in `room`.
 */
export async function openChatAs (t: Test, url: string, name: string, room: string, options: BrowserOptions = {}): Promise<ChatPage> {
  const browser = await BrowserSession.launch(t, options)
  const page = await browser.open(url)
  await page.setName(name)
  await page.join(room)
  return page
}
