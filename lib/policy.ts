// Room policies (PROTOCOL §8): the NAMESPACES_FILE schema, the policy of a
// room, and the one decision on who may join, send and signal. Pure, and
// free of Node imports (frames.ts, which the page type-checks against, uses
// its types); policy-file.ts reads the file.
import { z } from 'zod'
import { granted, type Grants } from './auth/grants.js'

export const JOIN_RULES = ['anyone', 'authenticated', 'granted', 'owner'] as const
export const SEND_RULES = ['members', 'granted', 'none'] as const
export type JoinRule = typeof JOIN_RULES[number]
export type SendRule = typeof SEND_RULES[number]

/** A room's rules, every field filled in. */
export interface Policy {
  readonly join: JoinRule
  readonly send: SendRule
  /** Messages kept, 0…HISTORY_SIZE. */
  readonly historySize: number
  /** Recent messages a plain join replays, 0…historySize. */
  readonly historyOnJoin: number
  readonly presence: boolean
  readonly signals: boolean
}

/** What the page is told of a policy (GET /config.json): no history sizes. */
export type PagePolicy = Pick<Policy, 'join' | 'send' | 'presence' | 'signals'>

export interface Policies {
  /** For rooms in no namespace, or one the file does not list. */
  readonly default: Policy
  readonly namespaces: ReadonlyMap<string, Policy>
}

/** The service-wide history settings a policy's defaults and bounds come from. */
export interface HistoryLimits {
  /** HISTORY_SIZE. */
  historySize: number
  /** HISTORY_ON_JOIN. */
  historyOnJoin: number
}

/** §8's defaults: everything behaves as it did before policies existed. */
export function defaultPolicy (limits: HistoryLimits): Policy {
  return {
    join: 'anyone',
    send: 'members',
    historySize: limits.historySize,
    historyOnJoin: Math.min(limits.historyOnJoin, limits.historySize),
    presence: true,
    signals: true
  }
}

/** The policies of a deployment without NAMESPACES_FILE: the default for every room. */
export function defaultPolicies (limits: HistoryLimits): Policies {
  return { default: defaultPolicy(limits), namespaces: new Map() }
}

/** A namespace name: the room alphabet without `:`, and room enough for `:` after it. */
// eslint-disable-next-line no-useless-escape
export const NAMESPACE_PATTERN = /^[A-Za-z0-9_.\-]{1,63}$/

/** The part of a room id before its first `:`; undefined for a room with no `:`. */
export function namespaceOf (room: string): string | undefined {
  const colon = room.indexOf(':')
  return colon < 0 ? undefined : room.slice(0, colon)
}

/** The policy `room` follows: its namespace's, else the default. */
export function policyFor (policies: Policies, room: string): Policy {
  if (policies.namespaces.size === 0) return policies.default
  const namespace = namespaceOf(room)
  return (namespace === undefined ? undefined : policies.namespaces.get(namespace)) ?? policies.default
}

/** The policies as the page sees them. */
export function pagePolicies (policies: Policies): { default: PagePolicy, namespaces: Record<string, PagePolicy> } {
  const page = ({ join, send, presence, signals }: Policy): PagePolicy => ({ join, send, presence, signals })
  return {
    default: page(policies.default),
    namespaces: Object.fromEntries([...policies.namespaces].map(([name, policy]) => [name, page(policy)]))
  }
}

// ---------------------------------------------------------------------------
// The decision

export type Operation = 'join' | 'send' | 'signal'

/** Who asks: a guest has neither; a verified token gives `user` and maybe `grants`. */
export interface Subject {
  user?: string | undefined
  grants?: Grants | undefined
}

export type Decision = { allowed: true } | { allowed: false, reason: string }

const ALLOWED: Decision = { allowed: true }

function refused (reason: string): Decision {
  return { allowed: false, reason }
}

/**
 * May `subject` do `operation` in `room` (PROTOCOL §8)? Membership is the
 * caller's check and comes first (§2); this is only the policy and grants.
 * - join: anyone; authenticated (a token); granted (a `join` grant);
 *   owner (the user id equals the part after the namespace).
 * - send: members; granted (a `send` grant); none (nobody: a grant never overrides it).
 * - signal: `signals: true` and the right to send.
 */
export function decide (operation: Operation, room: string, subject: Subject, policies: Policies): Decision {
  const policy = policyFor(policies, room)
  if (operation === 'join') return decideJoin(policy.join, room, subject)
  if (operation === 'signal' && !policy.signals) return refused(`signals are turned off in room "${room}"`)
  return decideSend(policy.send, room, subject, operation)
}

function decideJoin (rule: JoinRule, room: string, { user, grants }: Subject): Decision {
  switch (rule) {
    case 'anyone':
      return ALLOWED
    case 'authenticated':
      return user !== undefined ? ALLOWED : refused(`room "${room}" is for signed-in users only: connect with a token`)
    case 'granted':
      if (granted(grants, room, 'join')) return ALLOWED
      return refused(user === undefined
        ? `room "${room}" needs a token that grants joining it`
        : `your token does not grant joining room "${room}"`)
    case 'owner': {
      // A room id is in the room alphabet, so a `sub` outside it never equals its owner part.
      const namespace = namespaceOf(room)
      const owner = namespace === undefined ? undefined : room.slice(namespace.length + 1)
      if (user !== undefined && owner !== undefined && user === owner) return ALLOWED
      return refused(owner === undefined || owner === ''
        ? `room "${room}" has no owner, so nobody may join it`
        : `room "${room}" belongs to user "${owner}": only they may join it`)
    }
  }
}

function decideSend (rule: SendRule, room: string, { user, grants }: Subject, operation: 'send' | 'signal'): Decision {
  const what = operation === 'send' ? 'send messages' : 'send signals'
  switch (rule) {
    case 'members':
      return ALLOWED
    case 'granted':
      if (granted(grants, room, 'send')) return ALLOWED
      return refused(user === undefined
        ? `room "${room}" needs a token that grants sending to it to ${what}`
        : `your token does not grant sending to room "${room}", so you may not ${what} there`)
    case 'none':
      return refused(`room "${room}" is read-only: only the server publishes to it`)
  }
}

// ---------------------------------------------------------------------------
// NAMESPACES_FILE

const oneOf = (values: readonly string[]) => `expected one of ${values.join(', ')}`

function policySchema (limits: HistoryLimits) {
  const sizeRule = `expected a whole number from 0 to ${limits.historySize} (HISTORY_SIZE)`
  const count = (rule: string) => z.number({ error: rule }).int(rule).min(0, rule).max(limits.historySize, rule)
  return z.strictObject({
    join: z.enum(JOIN_RULES, { error: oneOf(JOIN_RULES) }).optional(),
    send: z.enum(SEND_RULES, { error: oneOf(SEND_RULES) }).optional(),
    historySize: count(sizeRule).optional(),
    historyOnJoin: count(`expected a whole number from 0 to historySize (at most ${limits.historySize})`).optional(),
    presence: z.boolean({ error: 'expected true or false' }).optional(),
    signals: z.boolean({ error: 'expected true or false' }).optional()
  }, { error: 'expected an object of policy fields' }).superRefine((policy, ctx) => {
    // A field already wrong by itself is reported once, for itself.
    const ownProblem = ctx.issues.some((issue) => issue.path?.[0] === 'historySize' || issue.path?.[0] === 'historyOnJoin')
    const size = policy.historySize ?? limits.historySize
    if (!ownProblem && policy.historyOnJoin !== undefined && policy.historyOnJoin > size) {
      ctx.addIssue({ code: 'custom', path: ['historyOnJoin'], message: `expected at most historySize (${size})` })
    }
  }, {
    // Also when another field of the policy is wrong: every problem gets its line at once.
    when: (payload) => typeof payload.value === 'object' && payload.value !== null
  }).transform((policy): Policy => {
    const historySize = policy.historySize ?? limits.historySize
    return {
      join: policy.join ?? 'anyone',
      send: policy.send ?? 'members',
      historySize,
      historyOnJoin: policy.historyOnJoin ?? Math.min(limits.historyOnJoin, historySize),
      presence: policy.presence ?? true,
      signals: policy.signals ?? true
    }
  })
}

/** The schema of NAMESPACES_FILE, its bounds and defaults from the service's history settings. */
export function namespacesFileSchema (limits: HistoryLimits) {
  const policy = policySchema(limits)
  return z.strictObject({
    default: policy.optional(),
    namespaces: z.record(z.string(), policy, { error: 'expected an object of namespace names to policies' }).optional()
  }, { error: 'expected an object with "default" and "namespaces"' }).superRefine((file, ctx) => {
    for (const name of Object.keys(file.namespaces ?? {})) {
      if (!NAMESPACE_PATTERN.test(name)) {
        ctx.addIssue({ code: 'custom', path: ['namespaces', name], message: 'expected a namespace name of 1-63 characters of A-Z a-z 0-9 _ - . (no ":")' })
      }
    }
  }).transform((file): Policies => ({
    default: file.default ?? defaultPolicy(limits),
    namespaces: new Map(Object.entries(file.namespaces ?? {}))
  }))
}
