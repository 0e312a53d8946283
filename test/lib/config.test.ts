// Unit tests of lib/config.ts: the contract's defaults (PROTOCOL §6) and one
// line per bad variable, naming it.
import t from 'tap'
import { EnvSchema, loadConfig } from '../../lib/config.js'
import { configProblems } from '../helpers/config-problems.js'

/** The problems loadConfig reports for `env`; fails the test if it accepts it. */
t.test('defaults are those of PROTOCOL §6', async (t) => {
  const config = loadConfig({})
  t.match(config, {
    port: 3000,
    host: '0.0.0.0',
    redisUrl: undefined,
    allowedOrigins: [],
    broadcastToken: undefined,
    maxPayloadBytes: 65536,
    maxTextLength: 4096,
    maxDataBytes: 8192,
    historySize: 1000,
    historyOnJoin: 50,
    pingIntervalMs: 25000,
    sendQueueMaxBytes: 1048576,
    rateLimitPerSec: 20,
    rateLimitBurst: 40,
    maxRoomsPerConnection: 100,
    signalRatePerSec: 5,
    signalBurst: 10,
    presenceTtlMs: 30000,
    presenceBatchMs: 100,
    shutdownGraceMs: 10000,
    readyProbeMs: 2000,
    maxIdleRooms: 10000,
    logLevel: 'info',
    historyMaxBytes: 1048576,
    historyTotalMaxBytes: 268435456,
    historyTtlS: 604800,
    redisWaitReplicas: 0,
    frameRatePerSec: 50,
    frameBurst: 100,
    maxConnections: 20000,
    maxConnectionsPerIp: 100,
    trustProxy: undefined,
    internalPort: undefined
  })
  t.equal(config.redisUrl, undefined)
  t.equal(config.broadcastToken, undefined)
  t.match(config.nodeId, /^[A-Za-z0-9_.-]{1,64}$/, 'a random node id')
  t.not(loadConfig({}).nodeId, loadConfig({}).nodeId, 'the node id is random per start')
})

t.test('values are read from the environment', async (t) => {
  const config = loadConfig({
    PORT: ' 8080 ',
    HOST: '127.0.0.1',
    REDIS_URL: 'redis://localhost:6379',
    NODE_ID: 'node-a.1',
    ALLOWED_ORIGINS: 'https://chat.example.com, http://localhost:5173/',
    BROADCAST_TOKEN: '0123456789abcdef',
    MAX_TEXT_LENGTH: '10',
    HISTORY_SIZE: '20',
    HISTORY_ON_JOIN: '20',
    PRESENCE_BATCH_MS: '0',
    SHUTDOWN_GRACE_MS: '0'
  })
  t.match(config, {
    port: 8080,
    host: '127.0.0.1',
    redisUrl: 'redis://localhost:6379',
    nodeId: 'node-a.1',
    allowedOrigins: ['https://chat.example.com', 'http://localhost:5173'],
    broadcastToken: '0123456789abcdef',
    maxTextLength: 10,
    historySize: 20,
    historyOnJoin: 20,
    presenceBatchMs: 0,
    shutdownGraceMs: 0
  })
  t.same(config.allowedOrigins, ['https://chat.example.com', 'http://localhost:5173'], 'origins are normalised (no trailing slash)')
  t.equal(loadConfig({ REDIS_URL: 'rediss://user:pw@redis.internal:6380/2' }).redisUrl, 'rediss://user:pw@redis.internal:6380/2')
  t.equal(loadConfig({ HOST: '' }).host, '0.0.0.0', 'an empty text variable counts as unset')
})

t.test('each bad variable gives one line naming it', async (t) => {
  const cases: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '3.5'],
    ['REDIS_URL', 'http://localhost:6379'],
    ['NODE_ID', 'has space'],
    ['NODE_ID', 'x'.repeat(65)],
    ['ALLOWED_ORIGINS', 'not a url'],
    ['ALLOWED_ORIGINS', 'https://chat.example.com/path'],
    ['BROADCAST_TOKEN', 'short'],
    ['MAX_PAYLOAD_BYTES', '10'],
    ['MAX_TEXT_LENGTH', '0'],
    ['MAX_DATA_BYTES', '1'],
    ['MAX_DATA_BYTES', 'big'],
    ['HISTORY_SIZE', '0'],
    ['HISTORY_ON_JOIN', 'many'],
    ['PING_INTERVAL_MS', '5'],
    ['SEND_QUEUE_MAX_BYTES', '1'],
    ['RATE_LIMIT_PER_SEC', '0'],
    ['RATE_LIMIT_BURST', '0'],
    ['SIGNAL_RATE_PER_SEC', '0'],
    ['SIGNAL_BURST', 'ten'],
    ['MAX_ROOMS_PER_CONNECTION', '0'],
    ['PRESENCE_TTL_MS', '10'],
    ['PRESENCE_BATCH_MS', '60001'],
    ['SHUTDOWN_GRACE_MS', '1e3'],
    ['READY_PROBE_MS', '1'],
    ['MAX_IDLE_ROOMS', '0'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_LEVEL', 'INFO']
  ]
  for (const [name, value] of cases) {
    const problems = configProblems({ [name]: value })
    t.equal(problems.length, 1, `${name}=${value}: one line`)
    t.match(problems[0], new RegExp(`^${name}: expected `), `${name}=${value}: the line names the variable and what was expected`)
  }
})

t.test('the error names the expectation, and its message holds every line', async (t) => {
  const problems = configProblems({ PORT: '70000' })
  t.match(problems[0], /whole number from 0 to 65535/)
  t.match(problems[0], /70000/, 'the bad value is shown')
  t.throws(() => loadConfig({ PORT: 'x', HISTORY_SIZE: 'y' }), { name: 'ConfigError', message: /^invalid configuration:\nPORT: .*\nHISTORY_SIZE: /m })
})

t.test('several bad variables give several lines, one each', async (t) => {
  const problems = configProblems({
    PORT: 'abc',
    REDIS_URL: 'http://x',
    BROADCAST_TOKEN: 'short',
    RATE_LIMIT_BURST: '0',
    HOST: 'ok-host'
  })
  t.equal(problems.length, 4)
  t.same(problems.map((line) => line.split(':')[0]).sort(), ['BROADCAST_TOKEN', 'PORT', 'RATE_LIMIT_BURST', 'REDIS_URL'])
})

t.test('HISTORY_ON_JOIN may not exceed HISTORY_SIZE', async (t) => {
  const problems = configProblems({ HISTORY_SIZE: '10', HISTORY_ON_JOIN: '11' })
  t.equal(problems.length, 1)
  t.match(problems[0], /^HISTORY_ON_JOIN: expected at most HISTORY_SIZE \(10\)/)
  t.equal(loadConfig({ HISTORY_SIZE: '10', HISTORY_ON_JOIN: '10' }).historyOnJoin, 10, 'equal is fine')
  t.equal(configProblems({ HISTORY_SIZE: '20' }).length, 1, 'the default HISTORY_ON_JOIN (50) is checked against a small HISTORY_SIZE too')

  t.same(configProblems({ HISTORY_SIZE: '0' }).map((line) => line.split(':')[0]), ['HISTORY_SIZE'],
    'a HISTORY_SIZE that is itself invalid does not also blame the unset HISTORY_ON_JOIN')

  const together = configProblems({ PORT: 'x', HISTORY_SIZE: '10', HISTORY_ON_JOIN: '11' })
  t.same(together.map((line) => line.split(':')[0]).sort(), ['HISTORY_ON_JOIN', 'PORT'], 'reported alongside other bad variables')
})

t.test('MAX_DATA_BYTES: from {} (2 bytes) up; a smaller MAX_PAYLOAD_BYTES still starts', async (t) => {
  t.equal(loadConfig({ MAX_DATA_BYTES: '2' }).maxDataBytes, 2)
  t.match(configProblems({ MAX_DATA_BYTES: String(16 * 1024 * 1024 + 1) }), [/^MAX_DATA_BYTES: expected /])
  // An existing deployment with small frames keeps working: its frames bound the data first.
  t.match(loadConfig({ MAX_PAYLOAD_BYTES: '1024' }), { maxPayloadBytes: 1024, maxDataBytes: 8192 })
})

t.test('a bad BROADCAST_TOKEN is named but its value is not printed', async (t) => {
  const secret = 'my-secret-tok'
  const [line] = configProblems({ BROADCAST_TOKEN: secret })
  t.match(line, /^BROADCAST_TOKEN: expected at least 16 characters/)
  t.notMatch(line, secret, 'the secret does not end up in the logs')
  t.match(line, '13 characters', 'its length is shown instead')
})

t.test('a bad REDIS_URL does not print its password', async (t) => {
  const [line] = configProblems({ REDIS_URL: 'http://user:hunter2@redis.internal:6379' })
  t.match(line, /^REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/)
  t.notMatch(line, 'hunter2')
  t.match(line, 'redis.internal:6379', 'the rest of the URL is shown')
})

t.test('every variable is one property of Config, in camelCase, present even when unset', async (t) => {
  const config = loadConfig({})
  const expected = Object.keys(EnvSchema.shape)
    .map((name) => name.toLowerCase().replace(/_(.)/g, (_match, letter: string) => letter.toUpperCase()))
  t.same(Object.keys(config).sort(), expected.sort())
  t.ok('redisUrl' in config && 'broadcastToken' in config, 'unset optional variables are there, undefined')
  t.ok(expected.includes('maxRoomsPerConnection') && expected.includes('logLevel'), 'the names the code base uses')
})

t.test('LOG_LEVEL is one of pino\'s levels, info by default', async (t) => {
  t.equal(loadConfig({}).logLevel, 'info')
  t.equal(loadConfig({ LOG_LEVEL: '' }).logLevel, 'info', 'empty counts as unset')
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(loadConfig({ LOG_LEVEL: level }).logLevel, level)
  }
  t.match(configProblems({ LOG_LEVEL: 'verbose' })[0], /^LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent \(got "verbose"\)$/)
})

t.test('TRUST_PROXY is a list of addresses and CIDR ranges', async (t) => {
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1, fd00::/8' }).trustProxy, ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8'])
  for (const bad of ['proxy.example.com', '10.0.0.0/33', '::1/129', '10.0.0.1/8/1', '10.0.0.0/x']) {
    t.match(configProblems({ TRUST_PROXY: bad }), [new RegExp(`^TRUST_PROXY: expected comma-separated IP addresses or CIDR ranges.*"${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`)], bad)
  }
})

t.test('INTERNAL_PORT is unset by default, else a port', async (t) => {
  t.equal(loadConfig({ INTERNAL_PORT: '9100' }).internalPort, 9100)
  t.match(configProblems({ INTERNAL_PORT: '0' }), [/^INTERNAL_PORT: expected a whole number from 1 to 65535/])
})

t.test('REDIS_WAIT_REPLICAS: a count of replicas, only with a Redis', async (t) => {
  t.equal(loadConfig({ REDIS_URL: 'redis://localhost:6379', REDIS_WAIT_REPLICAS: '2' }).redisWaitReplicas, 2)
  t.equal(loadConfig({ REDIS_WAIT_REPLICAS: '0' }).redisWaitReplicas, 0, '0 needs no Redis')
  t.same(configProblems({ REDIS_WAIT_REPLICAS: '1' }), [
    'REDIS_WAIT_REPLICAS: expected 0 unless REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES is set (a single node has no replicas) (got "1")'
  ])
  t.equal(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_WAIT_REPLICAS: '1' }).redisWaitReplicas, 1)
  t.equal(loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_MASTER: 'chat', REDIS_WAIT_REPLICAS: '1' }).redisWaitReplicas, 1)
  t.same(configProblems({ REDIS_URL: 'redis://localhost:6379', REDIS_WAIT_REPLICAS: '101' }), [
    'REDIS_WAIT_REPLICAS: expected a whole number from 0 to 100 (got "101")'
  ])
  t.same(configProblems({ REDIS_URL: 'http://x', REDIS_WAIT_REPLICAS: '1' }).map((line) => line.split(':')[0]), ['REDIS_URL'],
    'a bad REDIS_URL is reported for itself only')
})
