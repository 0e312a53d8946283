// Redis keys, channels and the Lua scripts that run atomically inside Redis.
// Every key of a room carries the room as a hash tag (`chat:{room}:…`), so a
// room lives in one slot. The scripts become typed commands of the client
// (ioredis `defineCommand`, declared below by merging into RedisCommander).
import type { ClientContext, Result } from 'ioredis'
import type { RedisClient } from './redis-topology.js'

/** A stream entry as Redis returns it: [id, [field, value, …]]. */
export type StreamEntry = [id: string, fields: string[]]

/**
 * Reply of `chatRead`: the log's epoch (null: no log), 1 if `since` was
 * found, entries oldest first, the log's earlier epochs (`h`, see roomKeys).
 */
export type ReadReply = [epoch: string | null, recovered: 0 | 1, entries: StreamEntry[], earlier: string | null]

/**
 * Reply of `chatAfter`: the log's epoch (null: no log), its last sequence,
 * the sequence the entries follow (below the one asked for when the log went
 * back), entries oldest first, the log's earlier epochs.
 */
export type AfterReply = [epoch: string | null, last: number, from: number, entries: StreamEntry[], earlier: string | null]

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
      user: string, api: '' | '1', data: string
    ): Result<PublishReply, Context>
    /** PUBLISH_SCRIPT with an idempotency key: publishes only if the key is new, and records it with the message. */
    chatPublishOnce (
      meta: string, log: string, channel: string, idempotency: string, epochCandidate: string, maxLength: number, maxBytes: number,
      from: string, text: string, ts: number, room: string, ttlS: number, idempotencyTtlMs: number,
      user: string, api: '' | '1', data: string
    ): Result<PublishReply, Context>
    /** READ_SCRIPT: a client's read. `sinceEpoch` '' reads the newest; an unknown epoch falls back. */
    chatRead (meta: string, log: string, sinceEpoch: string, sinceSeq: number, limit: number, fallbackLimit: number): Result<ReadReply, Context>
    /** AFTER_SCRIPT: a node's gap repair, entries after its position (`epoch` '' while it knows none). */
    chatAfter (meta: string, log: string, epoch: string, seq: number, limit: number): Result<AfterReply, Context>
  }
}

/** Makes the scripts commands of `redis` (sent as EVALSHA, loaded on first use). */
export function defineScripts (redis: RedisClient): void {
  // One script, two key counts: KEYS[4] (the idempotency key) is there or not.
  redis.defineCommand('chatPublish', { numberOfKeys: 3, lua: PUBLISH_SCRIPT })
  redis.defineCommand('chatPublishOnce', { numberOfKeys: 4, lua: PUBLISH_SCRIPT })
  redis.defineCommand('chatRead', { numberOfKeys: 2, lua: READ_SCRIPT })
  redis.defineCommand('chatAfter', { numberOfKeys: 2, lua: AFTER_SCRIPT })
}

/** Redis keys and channel of one room. */
export function roomKeys (room: string) {
  return {
    /**
     * Hash: `e` = epoch of the log, `s` = last sequence issued, `b` = UTF-8
     * bytes of the texts and data in the log, `r` = replication id of the server that
     * last wrote the log, `h` = the log's earlier epochs, oldest first, each
     * with its last sequence ("<epoch> <seq> <epoch> <seq>…"; absent: none).
     */
    meta: `chat:{${room}}:meta`,
    /** Stream: the log, entry id `<seq>-0`, fields f (from), x (text), t (ts), then u (user), a (API), d (data's JSON) when present. */
    log: `chat:{${room}}:log`,
    /** Hash: `<node>/<connection>` → display name of every member on every node. */
    members: `chat:{${room}}:members`,
    /** Sharded pub/sub channel (SPUBLISH/SSUBSCRIBE): stored messages and unsequenced ephemeral payloads (presence changes). */
    channel: `chat:{${room}}:ch`
  }
}

/** A node's heartbeat key (redis-presence.ts): its members count only while it exists. Hash-tagged by node, like every key. */
export function nodeKey (nodeId: string): string {
  return `chat:{node:${nodeId}}`
}

/**
 * A node's readiness probe channels (redis-probe.ts): `index` picks among
 * them, so that on a Redis Cluster one of them hashes to each master's slots.
 */
export function probeChannel (nodeId: string, index: number): string {
  return `${probeChannelPrefix(nodeId)}${index}}`
}

/** What every probe channel of `nodeId` starts with. */
export function probeChannelPrefix (nodeId: string): string {
  return `chat:{probe:${nodeId}:`
}

/** String: the 202 body of the broadcast that first used this Idempotency-Key in the room (written by PUBLISH_SCRIPT). */
export function idempotencyKey (room: string, key: string): string {
  return `chat:{${room}}:idem:${key}`
}

/**
 * Lua: `epochEnd(earlier, epoch, current, last)`, the last sequence of
 * `epoch` in a log whose epoch is `current` (its last sequence `last`) and
 * whose earlier epochs are `earlier` (meta `h`); nil for an epoch the log
 * does not know (a log started anew, or an epoch older than what it keeps).
 */
const EPOCH_END = `
local function epochEnd (earlier, epoch, current, last)
  if epoch == current then return last end
  for name, finish in string.gmatch(earlier or '', '(%S+) (%d+)') do
    if name == epoch then return tonumber(finish) end
  end
  return nil
end
`

/**
 * Store, then publish — in one step, so a message is never published
 * without being in the log, sequences have no holes, and an idempotency key
 * is recorded exactly when its message is (Redis runs one script at a time,
 * so of two calls with one key, exactly one publishes).
 * The log is trimmed here, oldest first, to at most `max length` entries and
 * `max bytes` UTF-8 bytes of text and data (`b` in meta keeps the total exact:
 * the script trims by itself rather than with XADD MAXLEN, so it knows what went).
 * A message bigger than `max bytes` alone is published but not kept.
 * The first write (HSET of a new room's epoch, else HINCRBY) is the one a
 * full Redis (maxmemory, noeviction) refuses with OOM, so a refused call has
 * changed nothing.
 * Redis CPU per message is what limits a Redis (docs/scaling.md), so the
 * steady state makes eight calls: one HMGET reads the epoch and the byte
 * count, the epoch is written only for a new log.
 * KEYS: meta, log, channel, [idempotency key] — the channel is a key so that
 * on a Redis Cluster SPUBLISH (sharded: only the room's master carries it)
 * runs in the room's slot. ARGV: epoch candidate, max length, max bytes,
 * from, text, ts, room, ttl s, idempotency ttl ms, user ('' for a guest), api
 * ('1' for the HTTP API, else ''), data (the compact JSON of the message's
 * data, '' for none: never empty otherwise).
 * A guest's message without data is stored and published exactly as before
 * users and data existed: no `u`, no `a`, no `d` (and the text stays the
 * entry's 4th field, which the byte count reads). `d` travels on the wire as
 * the JSON string itself, so cjson never re-encodes its numbers.
 * The log's epoch changes when the server writing it is not the one that
 * wrote it last (the replication id, `r` in meta, changes when a replica is
 * promoted and when a server restarts): a promoted replica may have missed
 * the log's tail, so its sequences may repeat ones already given out; in a
 * new epoch the ids cannot. Sequences go on from the server's log, and the
 * old epoch is kept in `h` with its last sequence, so its ids stay valid for
 * resuming. A meta without `r` (written before fencing) just takes it.
 * Returns { epoch, seq }, or { '', 0, first 202 body } for a known key.
 */
export const PUBLISH_SCRIPT = `
if KEYS[4] then
  local first = redis.call('GET', KEYS[4])
  if first then
    -- Touched (same expiry) so that a WAIT after this call covers the write that recorded it.
    redis.call('PEXPIRE', KEYS[4], redis.call('PTTL', KEYS[4]))
    return { '', 0, first }
  end
end
local replication = redis.call('INFO', 'replication')
local at = string.find(replication, 'master_replid:', 1, true)
local server = string.sub(replication, at + 14, at + 53)
local meta = redis.call('HMGET', KEYS[1], 'e', 'b', 'r')
local epoch, writer = meta[1], meta[3]
if not epoch then
  -- A new log: its first write, the one a full Redis refuses (OOM).
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'r', server)
elseif writer ~= server then
  if writer then
    -- Another server wrote this log last: a replica promoted (maybe without
    -- the log's tail) or a restart. New ids take a new epoch, so none can
    -- repeat one already given out.
    local last = redis.call('HGET', KEYS[1], 's') or '0'
    local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    local keepFrom = tonumber(last)
    if #oldest > 0 then keepFrom = tonumber(string.match(oldest[1][1], '^(%d+)')) - 1 end
    local earlier = ''
    for name, finish in string.gmatch(redis.call('HGET', KEYS[1], 'h') or '', '(%S+) (%d+)') do
      if tonumber(finish) >= keepFrom then earlier = earlier .. name .. ' ' .. finish .. ' ' end
    end
    redis.call('HSET', KEYS[1], 'h', earlier .. epoch .. ' ' .. last, 'e', ARGV[1])
    epoch = ARGV[1]
  end
  redis.call('HSET', KEYS[1], 'r', server)
end
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
-- Text, plus data when the entry has any (its optional fields follow f, x, t).
local function entryBytes (entry)
  local fields = entry[2]
  local n = #fields[4]
  for i = 7, #fields - 1, 2 do
    if fields[i] == 'd' then n = n + #fields[i + 1] end
  end
  return n
end
local bytes = tonumber(meta[2] or '-1')
if bytes < 0 then
  -- A log written before byte counting: count it once.
  bytes = 0
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do bytes = bytes + entryBytes(entry) end
end
local fields = { 'f', ARGV[4], 'x', ARGV[5], 't', ARGV[6] }
local wire = { k = 'm', r = ARGV[7], e = epoch, s = seq, f = ARGV[4], x = ARGV[5], t = tonumber(ARGV[6]) }
if ARGV[10] ~= '' then
  fields[#fields + 1] = 'u'
  fields[#fields + 1] = ARGV[10]
  wire.u = ARGV[10]
end
if ARGV[11] == '1' then
  fields[#fields + 1] = 'a'
  fields[#fields + 1] = '1'
  wire.a = 1
end
if ARGV[12] ~= '' then
  fields[#fields + 1] = 'd'
  fields[#fields + 1] = ARGV[12]
  wire.d = ARGV[12]
end
redis.call('XADD', KEYS[2], seq .. '-0', unpack(fields))
bytes = bytes + #ARGV[5] + #ARGV[12]
local excess = redis.call('XLEN', KEYS[2]) - tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[3])
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
      bytes = bytes - entryBytes(entry)
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
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
if KEYS[4] then
  -- The 202 body of POST /rooms/:id/broadcast; the id as formatMessageId writes it.
  redis.call('SET', KEYS[4], cjson.encode({ id = epoch .. '-' .. seq, room = ARGV[7], ts = tonumber(ARGV[6]) }), 'PX', ARGV[9])
end
redis.call('SPUBLISH', KEYS[3], cjson.encode(wire))
return { epoch, seq }
`

/**
 * A client's read (join with or without `since`, history API). `since` is
 * found when its epoch is the log's or an earlier one it keeps, and the log
 * still holds everything after it (not past the end of its epoch: a tail a
 * failover lost is not found).
 * KEYS: meta, log. ARGV: since epoch ('' for none), since seq, limit, fallback limit.
 * A limit of 0 (historyOnJoin 0, a historySize 0 room) reads nothing: Redis answers COUNT 0 with nil, hence `or {}`.
 * Returns { epoch or false, recovered (1/0), entries oldest first, earlier epochs or false }.
 */
export const READ_SCRIPT = EPOCH_END + `
local function oldestFirst (entries)
  local out = {}
  for i = #entries, 1, -1 do out[#out + 1] = entries[i] end
  return out
end
local epoch, lastText, earlier = unpack(redis.call('HMGET', KEYS[1], 'e', 's', 'h'))
local last = tonumber(lastText or '0')
if ARGV[1] ~= '' then
  local since = tonumber(ARGV[2])
  local finish = epoch and epochEnd(earlier, ARGV[1], epoch, last)
  if finish and since <= finish then
    local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    local firstSeq = last + 1
    if #first > 0 then firstSeq = tonumber(string.match(first[1][1], '^(%d+)')) end
    if since >= firstSeq - 1 then
      return { epoch, 1, redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+', 'COUNT', ARGV[3]) or {}, earlier }
    end
  end
  return { epoch, 0, oldestFirst(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[4]) or {}), earlier }
end
return { epoch, 1, oldestFirst(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3]) or {}), earlier }
`

/**
 * A node's gap repair: entries after its position (epoch, seq) in the log.
 * The position is lowered to where the log stands when the log went back
 * under it: to the end of its epoch (a failover lost that epoch's tail), to
 * the log's last sequence, or to 0 for an epoch the log does not know (a new
 * log). An empty epoch (the node knows none yet) takes `seq` as it is.
 * KEYS: meta, log. ARGV: epoch, seq, limit.
 * Returns { epoch or false, last seq, from, entries, earlier epochs or false }.
 */
export const AFTER_SCRIPT = EPOCH_END + `
local epoch, lastText, earlier = unpack(redis.call('HMGET', KEYS[1], 'e', 's', 'h'))
local last = tonumber(lastText or '0')
local from = tonumber(ARGV[2])
if epoch and ARGV[1] ~= '' then
  local finish = epochEnd(earlier, ARGV[1], epoch, last)
  if not finish then from = 0 elseif finish < from then from = finish end
end
local start = '-'
if from > 0 then start = '(' .. from .. '-0' end
return { epoch, last, from, redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', ARGV[3]), earlier }
`
