// A WebSocket upgrade request written by hand, for the answers the server
// gives before a socket exists (refusals with their status, headers and JSON
// body), which WebSocket clients hide.
import { randomBytes } from 'node:crypto'
import http from 'node:http'

export interface UpgradeAnswer {
  /** 101 when the upgrade was accepted, else the refusal's status. */
  status: number
  headers: http.IncomingHttpHeaders
  /** The refusal's body as sent ('' after a 101). */
  text: string
  /** The body parsed as JSON, or the text when it is not JSON. */
  body: unknown
}

/** How long the server has to answer an upgrade request. */
const ANSWER_TIMEOUT_MS = 5000

/**
 * Sends an upgrade request to `url` (ws:// or http://) over a fresh socket:
 * resolves with 101 once upgraded (and hangs up), or with the refusal.
 * `localAddress` picks the client's address (127.0.0.2 … for per-address limits).
 */
export function rawUpgrade (url: string, { headers = {}, localAddress }: { headers?: Record<string, string>, localAddress?: string } = {}): Promise<UpgradeAnswer> {
  const target = new URL(url)
  return new Promise((resolve, reject) => {
    const request = http.get({
      host: target.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: target.port,
      path: target.pathname + target.search,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...headers
      },
      // A fresh socket each time: the server closes one that asked to upgrade.
      agent: false,
      timeout: ANSWER_TIMEOUT_MS,
      ...(localAddress === undefined ? {} : { localAddress })
    })
    request.on('upgrade', (response, socket) => {
      socket.destroy()
      resolve({ status: response.statusCode ?? 0, headers: response.headers, text: '', body: '' })
    })
    request.on('response', (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { text += chunk })
      response.on('end', () => {
        let body: unknown = text
        try { body = JSON.parse(text) } catch {}
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text, body })
      })
    })
    request.on('timeout', () => request.destroy(new Error(`no answer to the upgrade request within ${ANSWER_TIMEOUT_MS} ms`)))
    request.on('error', reject)
  })
}
