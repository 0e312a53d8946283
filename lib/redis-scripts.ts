// Redis keys, channels and the Lua scripts that run atomically inside Redis.
// Every key of a room carries the room as a hash tag (`chat:{room}:…`), so a
// room lives in one slot. The scripts become typed commands of the client
// (ioredis `defineCommand`, declared below by merging into RedisCommander).
import type { ClientContext, Redis, Result } from 'ioredis'

/** A stream entry as Redis returns it: [id, [field, value, …]]. */
export type StreamEntry = [id: string, fields: string[]]

/** Reply of `chatRead`: the log's epoch (null: no log), 1 if `since` was found, entries oldest first. */
export type ReadReply = [epoch: string | null, recovered: 0 | 1, entries: StreamEntry[]]

/** Reply of `chatAfter`: the log's epoch (null: no log), its last sequence, entries oldest first. */
export type AfterReply = [epoch: string | null, last: number, entries: StreamEntry[]]

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    /** PUBLISH_SCRIPT: stores and publishes a message; returns its epoch and sequence. */
    chatPublish (
      meta: string, log: string, channel: string, epochCandidate: string, maxLength: number,
      from: string, text: string, ts: number, room: string, retentionMs: number,
      user: string, api: '' | '1'
    ): Result<[epoch: string, seq: number], Context>
    /** READ_SCRIPT: a client's read. `sinceEpoch` '' reads the newest; an unknown epoch falls back. */
    chatRead (meta: string, log: string, sinceEpoch: string, sinceSeq: number, limit: number, fallbackLimit: number): Result<ReadReply, Context>
    /** AFTER_SCRIPT: a node's gap repair, entries after `seq`. */
    chatAfter (meta: string, log: string, seq: number, limit: number): Result<AfterReply, Context>
  }
}

/** Makes the scripts commands of `redis` (sent as EVALSHA, loaded on first use). */
export function defineScripts (redis: Redis): void {
  redis.defineCommand('chatPublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT })
  redis.defineCommand('chatRead', { numberOfKeys: 2, lua: READ_SCRIPT })
  redis.defineCommand('chatAfter', { numberOfKeys: 2, lua: AFTER_SCRIPT })
}

/** Redis keys and channel of one room. */
export function roomKeys (room: string) {
  return {
    /** Hash: `e` = epoch of the log, `s` = last sequence issued. */
    meta: `chat:{${room}}:meta`,
    /** Stream: the log, entry id `<seq>-0`, fields f (from), x (text), t (ts). */
    log: `chat:{${room}}:log`,
    /** Hash: `<node>/<connection>` → display name of every member on every node. */
    members: `chat:{${room}}:members`,
    /** Pub/sub channel: stored messages and unsequenced ephemeral payloads (presence changes). */
    channel: `chat:{${room}}:ch`
  }
}

/** A node's heartbeat key (redis-presence.ts): its members count only while it exists. */
export function nodeKey (nodeId: string): string {
  return `chat:node:${nodeId}`
}

/** Where a node's readiness probe travels (redis-probe.ts). */
export function probeChannel (nodeId: string): string {
  return `chat:probe:${nodeId}`
}

export function idempotencyKey (room: string, key: string): string {
  return `chat:{${room}}:idem:${key}`
}

/**
 * Store, then publish — in one step, so a message is never published
 * without being in the log, and sequences have no holes.
 * KEYS: meta, log. ARGV: channel, epoch candidate, max length, from, text, ts, room, retention ms,
 * user ('' for a guest), api ('1' for the HTTP API, else '').
 * A guest's message is stored and published exactly as before users existed: no `u`, no `a`.
 * Returns { epoch, seq }.
 */
export const PUBLISH_SCRIPT = `
redis.call('HSETNX', KEYS[1], 'e', ARGV[2])
local epoch = redis.call('HGET', KEYS[1], 'e')
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
local fields = { 'f', ARGV[4], 'x', ARGV[5], 't', ARGV[6] }
local wire = { k = 'm', r = ARGV[7], e = epoch, s = seq, f = ARGV[4], x = ARGV[5], t = tonumber(ARGV[6]) }
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'u'
  fields[#fields + 1] = ARGV[9]
  wire.u = ARGV[9]
end
if ARGV[10] == '1' then
  fields[#fields + 1] = 'a'
  fields[#fields + 1] = '1'
  wire.a = 1
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('PEXPIRE', KEYS[2], ARGV[8])
redis.call('PUBLISH', ARGV[1], cjson.encode(wire))
return { epoch, seq }
`

/**
 * A client's read (join with or without `since`, history API).
 * KEYS: meta, log. ARGV: since epoch ('' for none), since seq, limit, fallback limit.
 * Returns { epoch or false, recovered (1/0), entries oldest first }.
 */
export const READ_SCRIPT = `
local function oldestFirst (entries)
  local out = {}
  for i = #entries, 1, -1 do out[#out + 1] = entries[i] end
  return out
end
local epoch = redis.call('HGET', KEYS[1], 'e')
local last = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
if ARGV[1] ~= '' then
  local since = tonumber(ARGV[2])
  if epoch and ARGV[1] == epoch and since <= last then
    local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    local firstSeq = last + 1
    if #first > 0 then firstSeq = tonumber(string.match(first[1][1], '^(%d+)')) end
    if since >= firstSeq - 1 then
      return { epoch, 1, redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+', 'COUNT', ARGV[3]) }
    end
  end
  return { epoch, 0, oldestFirst(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[4])) }
end
return { epoch, 1, oldestFirst(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3])) }
`

/**
 * A node's gap repair: entries after `seq` of the current log.
 * KEYS: meta, log. ARGV: seq, limit. Returns { epoch or false, last seq, entries }.
 */
export const AFTER_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'e')
local last = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local start = '-'
if tonumber(ARGV[1]) > 0 then start = '(' .. ARGV[1] .. '-0' end
return { epoch, last, redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', ARGV[2]) }
`
