// Configuration: one zod schema over every environment variable of the
// contract (PROTOCOL §6), parsed once at start. Everything else gets `Config`.
import { isIP } from 'node:net'
import { z } from 'zod'

/** Empty means unset, for every variable. */
const optionalText = z.string().trim().optional().transform((value) => value === '' ? undefined : value)

const int = (min: number, max: number, fallback: number) => {
  const expected = `expected a whole number from ${min} to ${max}`
  return optionalText
    .pipe(z.string().regex(/^\d+$/, expected).transform(Number).pipe(z.number().int().min(min, expected).max(max, expected)).optional())
    .transform((value) => value ?? fallback)
}

/** An optional whole number: undefined when unset. */
const optionalInt = (min: number, max: number) => {
  const expected = `expected a whole number from ${min} to ${max}`
  return optionalText
    .pipe(z.string().regex(/^\d+$/, expected).transform(Number).pipe(z.number().int().min(min, expected).max(max, expected)).optional())
}

/** Addresses or CIDR ranges (`10.0.0.0/8`, `::1`), comma-separated, for Fastify's `trustProxy`. */
const proxies = optionalText.transform((value, ctx) => {
  if (value === undefined) return undefined
  const list = value.split(',').map((item) => item.trim()).filter(Boolean)
  for (const item of list) {
    const [address = '', bits, ...rest] = item.split('/')
    const family = isIP(address)
    const max = family === 6 ? 128 : 32
    if (family === 0 || rest.length > 0 || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) {
      ctx.addIssue({ code: 'custom', message: `expected comma-separated IP addresses or CIDR ranges like 10.0.0.0/8, got "${item}"` })
      return z.NEVER
    }
  }
  return list
})

const origins = optionalText.transform((value, ctx) => {
  if (value === undefined) return []
  const list = value.split(',').map((item) => item.trim()).filter(Boolean)
  for (const item of list) {
    let parsed: URL
    try {
      parsed = new URL(item)
    } catch {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of origins like https://chat.example.com, got "${item}"` })
      return z.NEVER
    }
    if (parsed.origin !== item.replace(/\/$/, '')) {
      ctx.addIssue({ code: 'custom', message: `expected an origin (scheme://host[:port], no path), got "${item}"` })
      return z.NEVER
    }
  }
  return list.map((item) => new URL(item).origin)
})

/** REDIS_WAIT_REPLICAS: more replicas than any deployment runs is a typo. */
export const REDIS_WAIT_REPLICAS_MAX = 100

/** AUTH_JWT_SECRET: an HS256 key shorter than the hash is guessable (RFC 7518 §3.2). */
export const AUTH_JWT_SECRET_MIN_BYTES = 32

/** A JWKS URL: https, or http only to a loopback address (a key set fetched in clear text could be swapped). */
const jwksUrl = optionalText.transform((value, ctx) => {
  if (value === undefined) return undefined
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an https:// URL (or http:// to a loopback address)' })
    return z.NEVER
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '')
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && loopback)) {
    ctx.addIssue({ code: 'custom', message: 'expected an https:// URL (or http:// to a loopback address)' })
    return z.NEVER
  }
  return parsed.href
})

const bool = (fallback: boolean) => optionalText
  .pipe(z.enum(['true', 'false'], { error: 'expected true or false' }).optional())
  .transform((value) => value === undefined ? fallback : value === 'true')

/** The levels pino knows; LOG_LEVEL picks one. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * Every variable, written once: its name here is the environment's, its
 * property in `Config` the same name in camelCase (MAX_TEXT_LENGTH →
 * maxTextLength). Other code reads `Object.keys(EnvSchema.shape)`.
 */
export const EnvSchema = z.object({
  PORT: int(0, 65535, 3000),
  HOST: optionalText.transform((value) => value ?? '0.0.0.0'),
  REDIS_URL: optionalText.pipe(z.string().regex(/^rediss?:\/\/.+/, 'expected a redis:// or rediss:// URL').optional()),
  NODE_ID: optionalText.pipe(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 characters of A-Z a-z 0-9 _ . -').optional())
    .transform((value) => value ?? `node-${Math.random().toString(36).slice(2, 8)}`),
  ALLOWED_ORIGINS: origins,
  BROADCAST_TOKEN: optionalText.pipe(z.string().min(16, 'expected at least 16 characters (use a long random secret)').optional()),
  MAX_PAYLOAD_BYTES: int(256, 16 * 1024 * 1024, 65536),
  MAX_TEXT_LENGTH: int(1, 1024 * 1024, 4096),
  HISTORY_SIZE: int(1, 1_000_000, 1000),
  HISTORY_ON_JOIN: int(0, 1_000_000, 50),
  PING_INTERVAL_MS: int(100, 3_600_000, 25000),
  SEND_QUEUE_MAX_BYTES: int(1024, 1024 * 1024 * 1024, 1048576),
  RATE_LIMIT_PER_SEC: int(1, 1_000_000, 20),
  RATE_LIMIT_BURST: int(1, 1_000_000, 40),
  MAX_ROOMS_PER_CONNECTION: int(1, 100_000, 100),
  PRESENCE_TTL_MS: int(1000, 3_600_000, 30000),
  PRESENCE_BATCH_MS: int(0, 60_000, 100),
  SHUTDOWN_GRACE_MS: int(0, 600_000, 10000),
  READY_PROBE_MS: int(50, 600_000, 2000),
  MAX_IDLE_ROOMS: int(1, 10_000_000, 10000),
  HISTORY_MAX_BYTES: int(1024, 1024 * 1024 * 1024, 1048576),
  HISTORY_TOTAL_MAX_BYTES: int(1024, 64 * 1024 * 1024 * 1024, 268435456),
  HISTORY_TTL_S: int(1, 365 * 24 * 60 * 60, 604800),
  REDIS_WAIT_REPLICAS: int(0, REDIS_WAIT_REPLICAS_MAX, 0),
  FRAME_RATE_PER_SEC: int(1, 1_000_000, 50),
  FRAME_BURST: int(1, 1_000_000, 100),
  MAX_CONNECTIONS: int(1, 10_000_000, 20000),
  MAX_CONNECTIONS_PER_IP: int(1, 10_000_000, 100),
  TRUST_PROXY: proxies,
  INTERNAL_PORT: optionalInt(1, 65535),
  AUTH_JWT_SECRET: optionalText.pipe(z.string()
    .refine((value) => Buffer.byteLength(value) >= AUTH_JWT_SECRET_MIN_BYTES, `expected at least ${AUTH_JWT_SECRET_MIN_BYTES} bytes (use a long random secret)`)
    .optional()),
  AUTH_JWKS_URL: jwksUrl,
  AUTH_ISSUER: optionalText,
  AUTH_AUDIENCE: optionalText,
  AUTH_CLOCK_TOLERANCE_S: int(0, 600, 10),
  AUTH_REQUIRED: bool(false),
  // At most two weeks: an expiry timer must fit in setTimeout's 2^31 ms.
  AUTH_MAX_TOKEN_TTL_S: int(1, 14 * 24 * 60 * 60, 86400),
  PAGE_TOKEN_URL: optionalText,
  LOG_LEVEL: optionalText.pipe(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).optional())
    .transform((value) => value ?? 'info')
}).superRefine((env, ctx) => {
  // A variable that is already wrong by itself is reported once, for itself.
  const ownProblem = ctx.issues.some((issue) => issue.path?.[0] === 'HISTORY_SIZE' || issue.path?.[0] === 'HISTORY_ON_JOIN')
  if (!ownProblem && env.HISTORY_ON_JOIN > env.HISTORY_SIZE) {
    ctx.addIssue({ code: 'custom', path: ['HISTORY_ON_JOIN'], message: `expected at most HISTORY_SIZE (${env.HISTORY_SIZE})` })
  }
  // A key set shared by several applications signs tokens for all of them: the audience tells them apart.
  if (env.AUTH_JWKS_URL !== undefined && env.AUTH_AUDIENCE === undefined && !ctx.issues.some((issue) => issue.path?.[0] === 'AUTH_JWKS_URL')) {
    ctx.addIssue({ code: 'custom', path: ['AUTH_AUDIENCE'], message: 'expected a value: AUTH_JWKS_URL needs AUTH_AUDIENCE' })
  }
  // Replicas exist only behind a Redis: on a single node the setting would promise what nothing keeps.
  if (env.REDIS_WAIT_REPLICAS > 0 && env.REDIS_URL === undefined && !ctx.issues.some((issue) => issue.path?.[0] === 'REDIS_URL')) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_WAIT_REPLICAS'], message: 'expected 0 unless REDIS_URL is set (a single node has no replicas)' })
  }
  if (env.AUTH_REQUIRED && env.AUTH_JWT_SECRET === undefined && env.AUTH_JWKS_URL === undefined &&
    !ctx.issues.some((issue) => issue.path?.[0] === 'AUTH_JWT_SECRET' || issue.path?.[0] === 'AUTH_JWKS_URL')) {
    ctx.addIssue({ code: 'custom', path: ['AUTH_REQUIRED'], message: 'expected false unless AUTH_JWT_SECRET or AUTH_JWKS_URL is set' })
  }
})

export type Env = z.output<typeof EnvSchema>

/** MAX_TEXT_LENGTH → maxTextLength, for types. */
type CamelCase<Name extends string> = Name extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<Name>

/** MAX_TEXT_LENGTH → maxTextLength, for values. */
function camelCase (name: string): string {
  return name.toLowerCase().replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase())
}

/** The names of the variables. A plain union, so that the mapping below keeps no `?`. */
type EnvName = keyof Env

/** The parsed environment under the property names the code uses; every property present, unset ones undefined. */
const ConfigSchema = EnvSchema.transform((env) => {
  const entries = Object.keys(EnvSchema.shape).map((name) => [camelCase(name), env[name as EnvName]])
  // fromEntries forgets the keys; CamelCase is the same mapping as camelCase, for the type.
  return Object.fromEntries(entries) as { [Name in EnvName as CamelCase<Name>]: Env[Name] }
})

export type Config = z.output<typeof ConfigSchema>

export class ConfigError extends Error {
  readonly problems: string[]

  constructor (problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/** Secrets are named in errors but never printed: the lines end up in logs. */
function shown (name: string, value: string | undefined): string {
  if (value === undefined || value.trim() === '') return 'nothing: the default applies'
  if (name === 'BROADCAST_TOKEN' || name === 'AUTH_JWT_SECRET') return `${[...(value ?? '')].length} characters`
  if (name === 'REDIS_URL' || name === 'AUTH_JWKS_URL') return `"${(value ?? '').replace(/\/\/[^/@]*@/, '//***@')}"`
  return `"${value ?? ''}"`
}

/** Parses the environment; throws ConfigError with one line per bad variable. */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const result = ConfigSchema.safeParse(env)
  if (!result.success) {
    const problems = new Map<string, string>()
    for (const issue of result.error.issues) {
      const name = String(issue.path[0] ?? 'environment')
      if (!problems.has(name)) problems.set(name, `${name}: ${issue.message} (got ${shown(name, env[name])})`)
    }
    throw new ConfigError([...problems.values()])
  }
  return result.data
}
