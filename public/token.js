// The page's connection token: fetched from the host application's endpoint
// (PAGE_TOKEN_URL, via /config.json) with the user's cookies, before each
// connect and each refresh. The endpoint answers {"token": "…"} or the bare token.

/** How long the page waits for the token endpoint. */
const TOKEN_TIMEOUT_MS = 10_000

/**
 * A `getToken` for the ChatClient: undefined (a guest) when the endpoint
 * says 401/403/404, an error (retried with backoff) when it fails otherwise.
 * @param {URL} url
 * @returns {() => Promise<string | undefined>}
 */
export function tokenFetcher (url) {
  return async () => {
    const response = await fetch(url, { credentials: 'include', signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS), headers: { accept: 'application/json, text/plain' } })
    if (response.status === 401 || response.status === 403 || response.status === 404) return undefined
    if (!response.ok) throw new Error(`the token endpoint answered ${response.status}`)
    const type = response.headers.get('content-type') ?? ''
    if (type.includes('json')) {
      const body = /** @type {unknown} */ (await response.json())
      const token = typeof body === 'object' && body !== null ? /** @type {Record<string, unknown>} */ (body).token : undefined
      if (typeof token !== 'string') throw new Error('the token endpoint answered JSON without a "token" string')
      return token
    }
    const text = (await response.text()).trim()
    return text === '' ? undefined : text
  }
}
