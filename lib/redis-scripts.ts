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

/**
 * Reply of `chatPublish` / `chatPublishOnce`: the new message's epoch and
 * sequence; or, for an idempotency key already recorded, ['', 0, the first
 * call's 202 body as JSON] (nothing was published).
 */
export type PublishReply = [epoch: string, seq: number, first?: string]

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    /** PUBLISH_SCRIPT: stores (trimming the log to its bounds) and publishes a message. */
    chatPublish (
      meta: string, log: string, channel: string, epochCandidate: string, maxLength: number, maxBytes: number,
      from: string, text: string, ts: number, room: string, ttlS: number, idempotencyTtlMs: number,
      user: string, api: '' | '1'
    ): Result<PublishReply, Context>
    /** PUBLISH_SCRIPT with an idempotency key: publishes only if the key is new, and records it with the message. */
    chatPublishOnce (
      meta: string, log: string, idempotency: string, channel: string, epochCandidate: string, maxLength: number, maxBytes: number,
      from: string, text: string, ts: number, room: string, ttlS: number, idempotencyTtlMs: number,
      user: string, api: '' | '1'
    ): Result<PublishReply, Context>
    /** READ_SCRIPT: a client's read. `sinceEpoch` '' reads the newest; an unknown epoch falls back. */
    chatRead (meta: string, log: string, sinceEpoch: string, sinceSeq: number, limit: number, fallbackLimit: number): Result<ReadReply, Context>
    /** AFTER_SCRIPT: a node's gap repair, entries after `seq`. */
    chatAfter (meta: string, log: string, seq: number, limit: number): Result<AfterReply, Context>
  }
}

/** Makes the scripts commands of `redis` (sent as EVALSHA, loaded on first use). */
export function defineScripts (redis: Redis): void {
  // One script, two key counts: KEYS[3] (the idempotency key) is there or not.
  redis.defineCommand('chatPublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT })
  redis.defineCommand('chatPublishOnce', { numberOfKeys: 3, lua: PUBLISH_SCRIPT })
  redis.defineCommand('chatRead', { numberOfKeys: 2, lua: READ_SCRIPT })
  redis.defineCommand('chatAfter', { numberOfKeys: 2, lua: AFTER_SCRIPT })
}

/** Redis keys and channel of one room. */
export function roomKeys (room: string) {
  return {
    /** Hash: `e` = epoch of the log, `s` = last sequence issued, `b` = UTF-8 bytes of the texts in the log. */
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

/** String: the 202 body of the broadcast that first used this Idempotency-Key in the room (written by PUBLISH_SCRIPT). */
export function idempotencyKey (room: string, key: string): string {
  return `chat:{${room}}:idem:${key}`
}

/**
 * Store, then publish — in one step, so a message is never published
 * without being in the log, sequences have no holes, and an idempotency key
 * is recorded exactly when its message is (Redis runs one script at a time,
 * so of two calls with one key, exactly one publishes).
 * The log is trimmed here, oldest first, to at most `max length` entries and
 * `max bytes` UTF-8 bytes of text (`b` in meta keeps the total exact: the
 * script trims by itself rather than with XADD MAXLEN, so it knows what went).
 * A message bigger than `max bytes` alone is published but not kept.
 * The first write (HSET of a new room's epoch, else HINCRBY) is the one a
 * full Redis (maxmemory, noeviction) refuses with OOM, so a refused call has
 * changed nothing.
 * Redis CPU per message is what limits a Redis (docs/scaling.md), so the
 * steady state makes eight calls: one HMGET reads the epoch and the byte
 * count, the epoch is written only for a new log.
 * KEYS: meta, log, [idempotency key]. ARGV: channel, epoch candidate, max
 * length, max bytes, from, text, ts, room, ttl s, idempotency ttl ms,
 * user ('' for a guest), api ('1' for the HTTP API, else '').
 * A guest's message is stored and published exactly as before users existed:
 * no `u`, no `a` (and the text stays the entry's 4th field, which the byte
 * count reads).
 * Returns { epoch, seq }, or { '', 0, first 202 body } for a known key.
 */
export const PUBLISH_SCRIPT = `
if KEYS[3] then
  local first = redis.call('GET', KEYS[3])
  if first then return { '', 0, first } end
end
local meta = redis.call('HMGET', KEYS[1], 'e', 'b')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
local function textBytes (entry) return #entry[2][4] end
local bytes = tonumber(meta[2] or '-1')
if bytes < 0 then
  -- A log written before byte counting: count it once.
  bytes = 0
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do bytes = bytes + textBytes(entry) end
end
local fields = { 'f', ARGV[5], 'x', ARGV[6], 't', ARGV[7] }
local wire = { k = 'm', r = ARGV[8], e = epoch, s = seq, f = ARGV[5], x = ARGV[6], t = tonumber(ARGV[7]) }
if ARGV[11] ~= '' then
  fields[#fields + 1] = 'u'
  fields[#fields + 1] = ARGV[11]
  wire.u = ARGV[11]
end
if ARGV[12] == '1' then
  fields[#fields + 1] = 'a'
  fields[#fields + 1] = '1'
  wire.a = 1
end
redis.call('XADD', KEYS[2], seq .. '-0', unpack(fields))
bytes = bytes + #ARGV[6]
local excess = redis.call('XLEN', KEYS[2]) - tonumber(ARGV[3])
local maxBytes = tonumber(ARGV[4])
if excess > 0 or bytes > maxBytes then
  local cut
  local start = '-'
  while excess > 0 or bytes > maxBytes do
    -- As few entries as can do: in a full log every message pushes out one,
    -- and decoding a hundred entries to drop one tripled the script's cost.
    local want = excess
    if bytes > maxBytes then want = math.max(want, 10) end
    local batch = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', math.min(100, math.max(1, want)))
    if #batch == 0 then
      bytes = 0
      break
    end
    for _, entry in ipairs(batch) do
      if excess <= 0 and bytes <= maxBytes then break end
      bytes = bytes - textBytes(entry)
      excess = excess - 1
      cut = entry[1]
    end
    start = '(' .. cut
  end
  if cut then
    redis.call('XTRIM', KEYS[2], 'MINID', (tonumber(string.match(cut, '^(%d+)')) + 1) .. '-0')
  end
end
redis.call('HSET', KEYS[1], 'b', bytes)
redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[9])
if KEYS[3] then
  -- The 202 body of POST /rooms/:id/broadcast; the id as formatMessageId writes it.
  redis.call('SET', KEYS[3], cjson.encode({ id = epoch .. '-' .. seq, room = ARGV[8], ts = tonumber(ARGV[7]) }), 'PX', ARGV[10])
end
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
