// Route test of the chat page (plugins/static.ts): HTML under a
// Content-Security-Policy that allows no inline script or style.
import t from 'tap'
import { buildTestApp } from '../helpers/inject.js'

t.test('GET / serves the chat page under a strict CSP', async (t) => {
  const app = await buildTestApp(t)
  const response = await app.inject('/')
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/html/)
  t.match(response.body, /<!doctype html>/i)
  const csp = String(response.headers['content-security-policy'] ?? '')
  t.ok(csp.length > 0, 'has a Content-Security-Policy')
  t.notMatch(csp, 'unsafe-inline')
  t.notMatch(csp, 'unsafe-eval')
  t.match(csp, /script-src 'self'/)
  t.match(csp, /default-src 'self'/)
  t.match(csp, /frame-ancestors 'none'/)
  t.equal(response.headers['x-content-type-options'], 'nosniff')
})

t.test('the page needs no inline script or style, so the CSP does not break it', async (t) => {
  const app = await buildTestApp(t)
  const html = (await app.inject('/')).body
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)]
  t.ok(scripts.length > 0, 'the page has scripts')
  for (const [, attributes, body] of scripts) {
    t.match(attributes, /\bsrc=/, 'every script is loaded from a file')
    t.equal(body?.trim(), '', 'with no inline body')
  }
  t.notMatch(html, /<style\b/i, 'no inline <style>')
  t.notMatch(html, /\sstyle=/i, 'no style attributes')
  t.notMatch(html, /\son[a-z]+=/i, 'no inline event handlers')
})

t.test('assets are served with the same headers', async (t) => {
  const app = await buildTestApp(t)
  const script = await app.inject('/app.js')
  t.equal(script.statusCode, 200)
  t.match(script.headers['content-type'], /javascript/)
  t.notMatch(String(script.headers['content-security-policy']), 'unsafe-inline')
  t.equal((await app.inject('/no-such-file.js')).statusCode, 404)
})
