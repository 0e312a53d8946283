// deploy/monitoring/: the alert rules and the Grafana dashboard parse, and
// every metric and label they query exists in the /metrics of a real node in
// cluster mode (a real redis-server), or comes from a named other exporter.
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parser } from '@prometheus-io/lezer-promql'
import t from 'tap'
import { parse } from 'yaml'
import { buildApp } from '../../app.js'
import { loadConfig } from '../../lib/config.js'
import { RedisServer } from '../helpers/redis-server.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const MONITORING = join(ROOT, 'deploy', 'monitoring')
const READY_TIMEOUT_MS = 10_000

/** Series the files may use that the service does not export, with who does. */
const EXTERNAL_METRICS: Record<string, { source: string, labels: string[] }> = {
  kube_pod_status_ready: { source: 'kube-state-metrics', labels: ['namespace', 'pod', 'condition'] },
  kube_deployment_status_replicas_available: { source: 'kube-state-metrics', labels: ['namespace', 'deployment'] },
  kube_deployment_spec_replicas: { source: 'kube-state-metrics', labels: ['namespace', 'deployment'] }
}

/** What an operator must see (issue 13), by the metric that shows it. */
const MUST_SHOW = [
  'kube_pod_status_ready', 'chat_connections', 'chat_messages_out_total', 'chat_slow_consumer_closes_total',
  'chat_rate_limited_frames_total', 'chat_gaps_detected_total', 'chat_messages_repaired_total',
  'chat_redis_reconnects_total', 'chat_probe_round_trip_seconds'
]

/** Sample names of each metric family in a Prometheus text exposition, and the labels seen on them. */
function exposition (text: string): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>()
  const suffixes: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] }
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)$/.exec(line)
    if (type) {
      // A labelled counter with no sample yet has only its TYPE line.
      for (const suffix of suffixes[type[2]!] ?? ['']) series.set(type[1]! + suffix, new Set())
      continue
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line)
    if (!sample) continue
    const labels = series.get(sample[1]!) ?? new Set()
    for (const [, label] of (sample[2] ?? '').matchAll(/(\w+)="/g)) labels.add(label!)
    series.set(sample[1]!, labels)
  }
  return series
}

/** Grafana's variables, replaced by what they stand for, so the query is plain PromQL. */
function withoutVariables (query: string): string {
  return query.replace(/\$__(rate_interval|interval|range)\b/g, '5m').replace(/\$\{?node\}?/g, '.*')
}

interface Query {
  metrics: string[]
  labels: string[]
  syntaxErrors: number
}

function readQuery (query: string): Query {
  const result: Query = { metrics: [], labels: [], syntaxErrors: 0 }
  parser.parse(query).iterate({
    enter (node) {
      if (node.type.isError) result.syntaxErrors++
      else if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') result.metrics.push(query.slice(node.from, node.to))
      else if (node.name === 'LabelName') result.labels.push(query.slice(node.from, node.to))
    }
  })
  return result
}

interface Rule {
  alert: string
  expr: string
  for?: string
  labels: { severity: string }
  annotations: { summary: string, description: string }
}

const rules = (parse(readFileSync(join(MONITORING, 'alerts.yaml'), 'utf8')) as { groups: Array<{ name: string, rules: Rule[] }> }).groups.flatMap((group) => group.rules)
const dashboard = JSON.parse(readFileSync(join(MONITORING, 'grafana-dashboard.json'), 'utf8'))
const panels: Array<Record<string, any>> = dashboard.panels
const templating: Array<Record<string, any>> = dashboard.templating.list

/** Every PromQL query of both files, with where it is. */
const queries: Array<[string, string]> = [
  ...rules.map((rule): [string, string] => [`alert ${rule.alert}`, rule.expr]),
  ...panels.flatMap((panel) => (panel.targets ?? []).map((target: { expr: string, refId: string }): [string, string] => [`panel "${panel.title}" ${target.refId}`, withoutVariables(target.expr)]))
]

t.test('the alert rules are well formed', async (t) => {
  t.ok(rules.length > 0)
  t.equal(new Set(rules.map((rule) => rule.alert)).size, rules.length, 'alert names are unique')
  for (const rule of rules) {
    t.match(rule.alert, /^ChatService[A-Z]\w+$/, `${rule.alert}: named for the service`)
    t.ok(['critical', 'warning', 'info'].includes(rule.labels.severity), `${rule.alert}: a severity`)
    t.ok(rule.annotations.summary && rule.annotations.description, `${rule.alert}: a summary and a description`)
    if (rule.for !== undefined) t.match(rule.for, /^\d+[smh]$/, `${rule.alert}: for is a duration`)
  }
})

t.test('the dashboard is well formed', async (t) => {
  t.equal(dashboard.uid, 'chat-service')
  t.equal(new Set(panels.map((panel) => panel.id)).size, panels.length, 'panel ids are unique')
  for (const panel of panels.filter((item) => item.type !== 'row')) {
    t.ok(panel.targets.length > 0, `"${panel.title}" has queries`)
    t.same(panel.datasource, { type: 'prometheus', uid: '$' + '{datasource}' }, `"${panel.title}" uses the chosen data source`)
    t.ok(panel.gridPos.x + panel.gridPos.w <= 24, `"${panel.title}" fits the grid`)
  }
  t.same(templating.map((variable) => variable.name), ['datasource', 'node'])
})

t.test('every query parses as PromQL, and together they show what an operator must see', async (t) => {
  for (const [where, query] of queries) t.equal(readQuery(query).syntaxErrors, 0, `${where}: ${query}`)
  const used = new Set(queries.flatMap(([, query]) => readQuery(query).metrics))
  t.same(MUST_SHOW.filter((metric) => !used.has(metric)), [], 'every metric of the list is used')
})

t.test('the PromQL reader finds metric and label names (so the next test cannot pass by finding none)', async (t) => {
  t.same(readQuery('sum by (node) (rate(chat_messages_out_total{code="x"}[5m])) / chat_connections').metrics, ['chat_messages_out_total', 'chat_connections'])
  t.same(readQuery('sum by (node) (rate(chat_messages_out_total{code="x"}[5m]))').labels, ['node', 'code'])
  t.ok(readQuery('rate(chat_connections[5m]').syntaxErrors > 0)
})

t.test('every metric and label used exists on a running node in cluster mode', async (t) => {
  const redis = await RedisServer.start(t)
  const app = await buildApp(loadConfig({ REDIS_URL: redis.url, NODE_ID: 'monitoring-test', READY_PROBE_MS: '100' }))
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  const base = `http://127.0.0.1:${address.port}`
  // Ready means the probe has gone through Redis, so the cluster metrics carry real values.
  const deadline = Date.now() + READY_TIMEOUT_MS
  while ((await fetch(`${base}/health/ready`)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`not ready within ${READY_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const response = await fetch(`${base}/metrics`)
  t.equal(response.status, 200)
  const series = exposition(await response.text())
  t.ok(series.has('chat_redis_reconnects_total'), 'the scrape is of a node in cluster mode')

  const missing: string[] = []
  const knownLabels = new Set(['job', 'instance'])
  for (const labels of series.values()) for (const label of labels) knownLabels.add(label)
  for (const { labels } of Object.values(EXTERNAL_METRICS)) for (const label of labels) knownLabels.add(label)
  for (const [where, query] of queries) {
    const { metrics, labels } = readQuery(query)
    for (const metric of metrics) if (!series.has(metric) && !(metric in EXTERNAL_METRICS)) missing.push(`${where}: metric ${metric}`)
    for (const label of labels) if (!knownLabels.has(label)) missing.push(`${where}: label ${label}`)
  }
  for (const variable of templating.filter((item) => item.type === 'query')) {
    const [, metric, label] = /^label_values\((\w+),\s*(\w+)\)$/.exec(variable.query.query) ?? []
    if (!series.get(metric ?? '')?.has(label ?? '')) missing.push(`variable ${variable.name}: ${variable.query.query}`)
  }
  t.same(missing, [], 'nothing is missing')
})
