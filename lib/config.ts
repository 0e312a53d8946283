// Configuration: one zod schema over every environment variable of the
// contract (PROTOCOL §6), parsed once at start. Everything else gets `Config`.
import { isIP } from 'node:net'
import { z } from 'zod'
import type { Policies } from './policy.js'
import { loadPolicies } from './policy-file.js'

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

/** `host:port` addresses, comma-separated (`[::1]:6379` for IPv6): Redis Cluster seeds, Sentinels. */
const hostPorts = optionalText.transform((value, ctx) => {
  if (value === undefined) return undefined
  const list = value.split(',').map((item) => item.trim()).filter(Boolean)
  const parsed: Array<{ host: string, port: number }> = []
  for (const item of list) {
    const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(item)
    const port = Number(match?.[3])
    if (!match || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `expected comma-separated host:port addresses like redis-0.internal:6379, got "${item}"` })
      return z.NEVER
    }
    parsed.push({ host: match[1] ?? match[2] as string, port })
  }
  return parsed
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
  REDIS_CLUSTER_NODES: hostPorts,
  REDIS_SENTINELS: hostPorts,
  REDIS_SENTINEL_MASTER: optionalText,
  REDIS_PASSWORD: optionalText,
  REDIS_TLS: bool(false),
  NODE_ID: optionalText.pipe(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 characters of A-Z a-z 0-9 _ . -').optional())
    .transform((value) => value ?? `node-${Math.random().toString(36).slice(2, 8)}`),
  ALLOWED_ORIGINS: origins,
  BROADCAST_TOKEN: optionalText.pipe(z.string().min(16, 'expected at least 16 characters (use a long random secret)').optional()),
  MAX_PAYLOAD_BYTES: int(256, 16 * 1024 * 1024, 65536),
  MAX_TEXT_LENGTH: int(1, 1024 * 1024, 4096),
  // At least `{}`. Not checked against MAX_PAYLOAD_BYTES: a frame stays bounded by that, whichever is smaller.
  MAX_DATA_BYTES: int(2, 16 * 1024 * 1024, 8192),
  HISTORY_SIZE: int(1, 1_000_000, 1000),
  HISTORY_ON_JOIN: int(0, 1_000_000, 50),
  PING_INTERVAL_MS: int(100, 3_600_000, 25000),
  SEND_QUEUE_MAX_BYTES: int(1024, 1024 * 1024 * 1024, 1048576),
  RATE_LIMIT_PER_SEC: int(1, 1_000_000, 20),
  RATE_LIMIT_BURST: int(1, 1_000_000, 40),
  MAX_ROOMS_PER_CONNECTION: int(1, 100_000, 100),
  SIGNAL_RATE_PER_SEC: int(1, 1_000_000, 5),
  SIGNAL_BURST: int(1, 1_000_000, 10),
  PRESENCE_TTL_MS: int(1000, 3_600_000, 30000),
  PRESENCE_BATCH_MS: int(0, 60_000, 100),
  SHUTDOWN_GRACE_MS: int(0, 600_000, 10000),
  READY_PROBE_MS: int(50, 600_000, 2000),
  MAX_IDLE_ROOMS: int(1, 10_000_000, 10000),
  HISTORY_MAX_BYTES: int(1024, 1024 * 1024 * 1024, 1048576),
  HISTORY_TOTAL_MAX_BYTES: int(1024, 64 * 1024 * 1024 * 1024, 268435456),
  HISTORY_TTL_S: int(1, 365 * 24 * 60 * 60, 604800),
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
  // The path here; Config.namespacesFile is the file's checked policies (read in ConfigSchema, which knows HISTORY_SIZE).
  NAMESPACES_FILE: optionalText,
  LOG_LEVEL: optionalText.pipe(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).optional())
    .transform((value) => value ?? 'info')
}).superRefine((env, ctx) => {
  checkRedisTopology(env, ctx)
  // A variable that is already wrong by itself is reported once, for itself.
  const ownProblem = ctx.issues.some((issue) => issue.path?.[0] === 'HISTORY_SIZE' || issue.path?.[0] === 'HISTORY_ON_JOIN')
  if (!ownProblem && env.HISTORY_ON_JOIN > env.HISTORY_SIZE) {
    ctx.addIssue({ code: 'custom', path: ['HISTORY_ON_JOIN'], message: `expected at most HISTORY_SIZE (${env.HISTORY_SIZE})` })
  }
  // A key set shared by several applications signs tokens for all of them: the audience tells them apart.
  if (env.AUTH_JWKS_URL !== undefined && env.AUTH_AUDIENCE === undefined && !ctx.issues.some((issue) => issue.path?.[0] === 'AUTH_JWKS_URL')) {
    ctx.addIssue({ code: 'custom', path: ['AUTH_AUDIENCE'], message: 'expected a value: AUTH_JWKS_URL needs AUTH_AUDIENCE' })
  }
  if (env.AUTH_REQUIRED && env.AUTH_JWT_SECRET === undefined && env.AUTH_JWKS_URL === undefined &&
    !ctx.issues.some((issue) => issue.path?.[0] === 'AUTH_JWT_SECRET' || issue.path?.[0] === 'AUTH_JWKS_URL')) {
    ctx.addIssue({ code: 'custom', path: ['AUTH_REQUIRED'], message: 'expected false unless AUTH_JWT_SECRET or AUTH_JWKS_URL is set' })
  }
})

export type Env = z.output<typeof EnvSchema>

/** At most one Redis topology; the variables that go with one only with it. */
function checkRedisTopology (env: Pick<Env, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_MASTER' | 'REDIS_PASSWORD' | 'REDIS_TLS'>, ctx: z.RefinementCtx): void {
  const chosen = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((name) => env[name] !== undefined)
  if (chosen.length > 1) {
    ctx.addIssue({ code: 'custom', path: [chosen[1] as string], message: `expected at most one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES, got ${chosen.join(' and ')}` })
  }
  if (env.REDIS_SENTINELS !== undefined && env.REDIS_SENTINEL_MASTER === undefined) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINEL_MASTER'], message: 'expected the name of the master the Sentinels watch: REDIS_SENTINELS needs REDIS_SENTINEL_MASTER' })
  }
  if (env.REDIS_SENTINEL_MASTER !== undefined && env.REDIS_SENTINELS === undefined) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINEL_MASTER'], message: 'expected unset unless REDIS_SENTINELS is set' })
  }
  if (env.REDIS_SENTINELS === undefined && env.REDIS_CLUSTER_NODES === undefined) {
    // A URL carries its own credentials (redis://:password@host) and TLS (rediss://).
    if (env.REDIS_PASSWORD !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_PASSWORD'], message: 'expected unset unless REDIS_SENTINELS or REDIS_CLUSTER_NODES is set (a REDIS_URL carries its own password)' })
    }
    if (env.REDIS_TLS) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_TLS'], message: 'expected false unless REDIS_SENTINELS or REDIS_CLUSTER_NODES is set (use a rediss:// REDIS_URL)' })
    }
  }
}

/** MAX_TEXT_LENGTH → maxTextLength, for types. */
type CamelCase<Name extends string> = Name extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<Name>

/** The issue path of a NAMESPACES_FILE problem: its message is already a whole line, one per problem. */
const POLICY_FILE_PROBLEM = 'NAMESPACES_FILE (contents)'

/** MAX_TEXT_LENGTH → maxTextLength, for values. */
function camelCase (name: string): string {
  return name.toLowerCase().replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase())
}

/** The names of the variables. A plain union, so that the mapping below keeps no `?`. */
type EnvName = keyof Env

/** The parsed environment under the property names the code uses; every property present, unset ones undefined. */
const ConfigSchema = EnvSchema.transform((env, ctx) => {
  const entries = Object.keys(EnvSchema.shape).map((name) => [camelCase(name), env[name as EnvName]])
  // fromEntries forgets the keys; CamelCase is the same mapping as camelCase, for the type.
  const config = Object.fromEntries(entries) as { [Name in EnvName as CamelCase<Name>]: Env[Name] }
  // The room policies (PROTOCOL §8) stop the start like a bad variable: one line per problem in the file.
  const loaded = loadPolicies(env.NAMESPACES_FILE, { historySize: env.HISTORY_SIZE, historyOnJoin: env.HISTORY_ON_JOIN })
  if (!loaded.ok) {
    for (const problem of loaded.problems) ctx.addIssue({ code: 'custom', path: [POLICY_FILE_PROBLEM], message: problem })
    return z.NEVER
  }
  // Like ALLOWED_ORIGINS becomes a list, NAMESPACES_FILE becomes what it holds: the checked policies.
  return { ...config, namespacesFile: loaded.policies } as Omit<typeof config, 'namespacesFile'> & { namespacesFile: Policies }
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
  if (name === 'BROADCAST_TOKEN' || name === 'AUTH_JWT_SECRET' || name === 'REDIS_PASSWORD') return `${[...(value ?? '')].length} characters`
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
      if (name === POLICY_FILE_PROBLEM) {
        problems.set(issue.message, issue.message)
        continue
      }
      if (!problems.has(name)) problems.set(name, `${name}: ${issue.message} (got ${shown(name, env[name])})`)
    }
    throw new ConfigError([...problems.values()])
  }
  return result.data
}
