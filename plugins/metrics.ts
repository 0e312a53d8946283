// Prometheus metrics. Hot-path counters are plain numbers in `stats`; they
// are read here when scraped, so counting costs the hub an increment.
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry
  }
}

export default fp(async function metricsPlugin (fastify) {
  const { stats, hub, connections, config, broker } = fastify
  const registry = new Registry()
  registry.setDefaultLabels({ node: config.nodeId })
  collectDefaultMetrics({ register: registry })

  /** A counter that mirrors a plain number kept elsewhere. */
  function mirror (name: string, help: string, read: () => number): void {
    let reported = 0
    const counter: Counter = new Counter({
      name,
      help,
      registers: [registry],
      collect () {
        const value = read()
        counter.inc(value - reported)
        reported = value
      }
    })
  }

  /** A gauge read when scraped. */
  function gauge (name: string, help: string, read: () => number): void {
    registry.registerMetric(new Gauge({ name, help, registers: [], collect () { this.set(read()) } }))
  }

  gauge('chat_connections', 'Open WebSocket connections', () => connections.size)
  gauge('chat_rooms', 'Rooms with members on this node', () => hub.roomCount)
  mirror('chat_messages_in_total', 'Messages accepted from clients and the HTTP API', () => stats.messagesIn)
  mirror('chat_messages_out_total', 'Message frames written to members', () => stats.messagesOut)
  mirror('chat_signals_in_total', 'Signals accepted from clients (never stored, not counted as messages)', () => stats.signalsIn)
  mirror('chat_signals_out_total', 'Signal frames written to members, from this node\'s clients or another node\'s', () => stats.signalsOut)
  mirror('chat_slow_consumer_closes_total', 'Connections closed with 1013 because their send queue was full', () => stats.slowConsumerCloses)
  mirror('chat_rate_limited_frames_total', 'Client frames refused by a rate limiter (frame, send or signal bucket)', () => stats.rateLimitedFrames)
  mirror('chat_heartbeat_terminations_total', 'Connections terminated for not answering a ping', () => stats.heartbeatTerminations)

  const cluster = broker.clusterStats
  if (cluster) {
    mirror('chat_redis_reconnects_total', 'Times the Redis subscriber connection came back and resubscribed', () => cluster.redisReconnects)
    mirror('chat_gaps_detected_total', 'Sequence gaps noticed on room channels (each triggers a repair from the log)', () => cluster.gapsDetected)
    mirror('chat_messages_repaired_total', 'Messages delivered from the Redis log by gap repair', () => cluster.messagesRepaired)
    gauge('chat_probe_round_trip_seconds', 'Round trip of the last readiness probe through Redis pub/sub', () => cluster.probeRoundTripMs / 1000)
  }

  const reportedRefusals = { nodeFull: 0, addressFull: 0 }
  const refused: Counter<'reason'> = new Counter({
    name: 'chat_connections_refused_total',
    help: 'WebSocket upgrades refused by the connection caps: node_full (MAX_CONNECTIONS, 503), address_full (MAX_CONNECTIONS_PER_IP, 429)',
    labelNames: ['reason'],
    registers: [registry],
    collect () {
      const { nodeFull, addressFull } = connections.refusals
      refused.inc({ reason: 'node_full' }, nodeFull - reportedRefusals.nodeFull)
      refused.inc({ reason: 'address_full' }, addressFull - reportedRefusals.addressFull)
      Object.assign(reportedRefusals, connections.refusals)
    }
  })

  const reportedErrors = new Map<string, number>()
  const errors: Counter<'code'> = new Counter({
    name: 'chat_errors_total',
    help: 'error frames sent to clients, by code',
    labelNames: ['code'],
    registers: [registry],
    collect () {
      for (const [code, value] of Object.entries(stats.errors)) {
        errors.inc({ code }, value - (reportedErrors.get(code) ?? 0))
        reportedErrors.set(code, value)
      }
    }
  })

  fastify.decorate('metrics', registry)
}, { name: 'metrics', dependencies: ['config', 'broker', 'stats', 'hub', 'websocket'] })
