// Fixed limits that are not worth an environment variable, in one place,
// each with the reason for its value (in the manner of gorilla's chat example).

/** A 1013 close waits behind the backlog; a peer that still reads nothing is cut off after this. */
export const SLOW_CONSUMER_CLOSE_TIMEOUT_MS = 5000

/** Consecutive rate-limited frames (any bucket) before the connection is closed with 1008; an accepted frame resets the count. */
export const RATE_LIMIT_STRIKES_BEFORE_CLOSE = 100

/**
 * A history replay (join, resume) is paced by the socket draining; when the
 * peer takes nothing of what is queued for this long, the replay stops and the
 * connection is closed with 1013 (it resumes with `since`). 10 s: a reader
 * that takes a 16 KiB frame plus the socket's 16 KiB high-water mark in that
 * time (~3 KB/s) keeps up; one that stopped reading is cut off.
 */
export const REPLAY_DRAIN_TIMEOUT_MS = 10_000

/**
 * A connection closed with 1008 is no longer read (an abuser's frames in
 * flight cost nothing); its close frame has this long to leave before the
 * socket is cut. A second is many round trips; the abuser may see 1006.
 */
export const POLICY_CLOSE_LINGER_MS = 1000

/** Live messages held for a member while its join history is read; past this it is closed with 1013 and resumes. */
export const CATCH_UP_BUFFER_MAX = 10_000

/** Idempotency keys are remembered this long (PROTOCOL §4: five minutes). */
export const IDEMPOTENCY_TTL_MS = 5 * 60 * 1000

/** Idempotency keys kept in memory at most; the oldest are forgotten first. */
export const IDEMPOTENCY_MAX_KEYS = 100_000

/** Largest HTTP broadcast body; bigger bodies get 413. */
export const BROADCAST_BODY_LIMIT_BYTES = 64 * 1024

/** `GET /rooms/:id/messages` default and maximum `limit` (PROTOCOL §4). */
export const HISTORY_API_DEFAULT_LIMIT = 50
export const HISTORY_API_MAX_LIMIT = 1000

/** Shutdown closes connections in ticks of this length over the first half of the grace period. */
export const DRAIN_TICK_MS = 100

/** Log entries a node reads per round trip while repairing a gap. */
export const REPAIR_BATCH = 500

/** Wait before retrying a repair or resubscription that failed because Redis was away. */
export const REDIS_RETRY_MS = 250

/** Reconnect backoff for the Redis connections: doubling from the first to the last value. */
export const REDIS_RECONNECT_MIN_MS = 50
export const REDIS_RECONNECT_MAX_MS = 2000

/**
 * A Redis command that has not answered by then fails. For a publish the
 * outcome is then unknown (`timeout` / 503 `outcome: unknown`): the script
 * may still run. Long enough for a loaded Redis, short enough for a client.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 2000

/**
 * With REDIS_WAIT_REPLICAS ≥ 1: how long Redis's `WAIT` after a publish waits
 * for the replicas to confirm. Half the command timeout, so that Redis
 * answers (with how many confirmed) before the client gives up on it; too
 * few by then and the sender gets `timeout` / 503 `outcome: unknown`.
 */
export const REDIS_WAIT_TIMEOUT_MS = REDIS_COMMAND_TIMEOUT_MS / 2

/**
 * A Redis Cluster slot being moved (`redis-cli --cluster reshard`) answers
 * commands on the room's keys with TRYAGAIN while the keys are split between
 * the two masters (the publish script always is: its channel is a key that
 * never exists) and ASK once they moved. ioredis retries: TRYAGAIN after
 * this wait, ASK at once on the new master, MOVED once the move is done…
 */
export const REDIS_CLUSTER_TRYAGAIN_DELAY_MS = 50

/**
 * …at most this many times per command (under a second of TRYAGAIN, within
 * REDIS_COMMAND_TIMEOUT_MS, which bounds every command including its
 * retries). Then a publish gets `unavailable` (never run: every answer was a
 * redirection), or `timeout` if the command timed out first.
 */
export const REDIS_CLUSTER_MAX_REDIRECTIONS = 16

/**
 * The subscriber of a Redis Cluster asks for the slot map this often, so a
 * slot moved to another master is subscribed there soon even when the
 * refresh that Redis's dropping of the slot's subscribers triggers asked a
 * node that had not heard of the move yet (its gap is then repaired).
 */
export const REDIS_CLUSTER_SLOTS_REFRESH_MS = 1000

/**
 * At start, each check of the configured Redis (a server, a Cluster seed, a
 * Sentinel) and the first connection get this long before the process exits
 * with a clear line: long enough for a Redis across a data centre, short
 * enough that a wrong address fails a deployment quickly.
 */
export const REDIS_CONNECT_TIMEOUT_MS = 10_000

/**
 * Channels per SSUBSCRIBE when a node subscribes again after its subscriber
 * reconnected (one server, Sentinel). Bounded so that a node with 150k rooms
 * never builds one call with 150k arguments (that crashed with a RangeError)
 * and each reply (~60 bytes per channel, ~60 KB) stays far below Redis's
 * pub/sub output buffer limit (8 MB soft by default). On a Redis Cluster
 * ioredis resubscribes per slot, which is smaller still.
 */
export const RESUBSCRIBE_CHUNK = 1000

/** Messages held per room while a repair reads the log; past this they are dropped and re-read from the log. */
export const REPAIR_PENDING_MAX = 10_000

/** A shutdown still running this long after the grace period ends is cut short: the process exits 1. */
export const SHUTDOWN_SAFETY_MARGIN_MS = 5000

/**
 * Single node: what a kept message counts beyond its text's UTF-8 bytes
 * (history.ts messageCost). Measured at ~190–260 bytes in V8 for the message
 * object, its id, sender and timestamp and its ring slots; rounded up so the
 * byte caps bound memory, not just text.
 */
export const HISTORY_MESSAGE_OVERHEAD_BYTES = 256

// HTTP timeouts, set on the Node server by buildApp. A WebSocket, once
// upgraded, is subject to none of them: its liveness is the heartbeat's job
// (PING_INTERVAL_MS).
/** A request's headers and body must have arrived in full by then (Node's requestTimeout): 408 and the socket closed. The largest body, a 64 KiB broadcast, needs only 6.5 KB/s. */
export const REQUEST_TIMEOUT_MS = 10_000
/** A request's headers must have arrived by then (Node's headersTimeout): a slowloris holding a socket with half a request is cut off early. */
export const HEADERS_TIMEOUT_MS = 5000
/** How often Node looks for requests past those timeouts, so a cut-off comes at most this much late. */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1000
/** An idle keep-alive HTTP connection is closed after this long: longer than the 60 s idle timeout of common load balancers, so they never reuse a socket the node is closing (Fastify's own default). */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000

/**
 * Channels per SUBSCRIBE (and UNSUBSCRIBE) command a node sends
 * (subscription-batcher.ts): joins in one turn of the event loop, and a
 * resubscription after a reconnect, go out in commands of at most this many
 * channels. Redis answers each channel with ~50 bytes, so a command's reply
 * stays near 50 KB, far under the pub/sub output buffer limit (8 MB soft by
 * default), and no call spreads 100k+ arguments (a RangeError in Node).
 */
export const SUBSCRIBE_CHUNK_CHANNELS = 1000

/**
 * Subscribe commands a node has waiting for Redis at most; the rest queue in
 * the node, in order. Four chunks keep the connection busy (a chunk takes
 * Redis about a millisecond) without stacking 50 commands behind each other,
 * the last of which would pass REDIS_COMMAND_TIMEOUT_MS during a join storm.
 */
export const SUBSCRIBE_MAX_IN_FLIGHT = 4

/**
 * Reads of room logs (a join's history, a gap repair) a node has waiting
 * for Redis at most; the rest wait in the node, in order (in-flight-limit.ts).
 * A join storm or the repair of 100k rooms after a reconnect would otherwise
 * send them all in one batch, and the last would wait in Redis past
 * REDIS_COMMAND_TIMEOUT_MS. A thousand reads take Redis about 10–30 ms.
 */
export const READS_MAX_IN_FLIGHT = 1000
