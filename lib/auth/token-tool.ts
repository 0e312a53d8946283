// `npm run token`: mints an HS256 connection token for people trying the
// service. The pure part: reading the options and signing; tools/token.ts runs it.
import { SignJWT } from 'jose'
import { AUTH_JWT_SECRET_MIN_BYTES } from '../config.js'

export const TOKEN_TOOL_USAGE = `usage: AUTH_JWT_SECRET=… npm run token -- --sub <user id> [--name <display name>] [--rooms 'support:*=join,send;news=join'] [--ttl 1h] [--iss …] [--aud …]
  --ttl: a number of seconds, or with a unit: 90s, 15m, 1h, 1d (default 1h)`

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }
const RIGHTS = new Set(['join', 'send'])

/** `90`, `90s`, `15m`, `1h`, `1d` → seconds; throws on anything else. */
export function parseTtl (text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim())
  if (match === null) throw new Error(`--ttl: expected a number of seconds or 90s, 15m, 1h, 1d; got "${text}"`)
  const seconds = Number(match[1]) * (UNIT_SECONDS[match[2] || 's'] ?? 1)
  if (seconds < 1) throw new Error('--ttl: expected at least 1 second')
  return seconds
}

/** `support:*=join,send;news:daily=join` → the `rooms` grant claim `{"support:*": ["join","send"], …}`. */
export function parseRooms (text: string): Record<string, string[]> {
  const rooms: Record<string, string[]> = {}
  for (const entry of text.split(';').map((item) => item.trim()).filter(Boolean)) {
    const [pattern = '', rights = ''] = entry.split('=')
    const list = rights.split(',').map((right) => right.trim()).filter(Boolean)
    if (pattern === '' || list.length === 0 || !list.every((right) => RIGHTS.has(right))) {
      throw new Error(`--rooms: expected pattern=join,send entries separated by ";"; got "${entry}"`)
    }
    rooms[pattern] = list
  }
  return rooms
}

export interface TokenToolOptions {
  sub: string
  name?: string | undefined
  rooms?: string | undefined
  ttl?: string | undefined
  iss?: string | undefined
  aud?: string | undefined
}

/** Signs the token the options describe with `secret` (AUTH_JWT_SECRET). */
export async function mintToken (options: TokenToolOptions, secret: string | undefined, nowMs = Date.now()): Promise<string> {
  if (secret === undefined || Buffer.byteLength(secret) < AUTH_JWT_SECRET_MIN_BYTES) {
    throw new Error(`AUTH_JWT_SECRET must be set to the server's secret (at least ${AUTH_JWT_SECRET_MIN_BYTES} bytes)`)
  }
  if (options.sub === '') throw new Error('--sub: expected the user id')
  const now = Math.floor(nowMs / 1000)
  const claims: Record<string, unknown> = { sub: options.sub }
  if (options.name !== undefined) claims.name = options.name
  if (options.rooms !== undefined) claims.rooms = parseRooms(options.rooms)
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(now).setExpirationTime(now + parseTtl(options.ttl ?? '1h'))
  if (options.iss !== undefined) jwt.setIssuer(options.iss)
  if (options.aud !== undefined) jwt.setAudience(options.aud)
  return jwt.sign(new TextEncoder().encode(secret))
}
