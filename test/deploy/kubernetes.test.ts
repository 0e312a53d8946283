// deploy/kubernetes/: every kustomization renders (test/deploy/kustomize.ts)
// into manifests that the Kubernetes schemas accept, and that agree with the
// app: probe paths and ports, environment names and values, drain arithmetic.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { buildApp } from '../../app.js'
import { EnvSchema, loadConfig } from '../../lib/config.js'
import { readDockerfile } from './dockerfile.js'
import { validateManifest } from './kubernetes-schema.js'
import { build, type Manifest } from './kustomize.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const DEPLOY = join(ROOT, 'deploy', 'kubernetes')
/** server.ts gives up on a drain SHUTDOWN_GRACE_MS + this long after SIGTERM, and exits by itself. */
const SERVER_SHUTDOWN_MARGIN_S = 5
/** What `fieldRef: metadata.name` gives a pod of a Deployment. */
const SAMPLE_POD_NAME = 'chat-service-7c9d5b8f6d-x2x7k'

function kustomizations (dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) return kustomizations(path)
    return entry === 'kustomization.yaml' ? [dir] : []
  })
}

/** Renders every kustomization the way an operator would: first each `x.env.example` copied to `x.env`. */
function renderAll (): Map<string, Manifest[]> {
  const copy = mkdtempSync(join(tmpdir(), 'chat-kustomize-'))
  t.teardown(() => rmSync(copy, { recursive: true, force: true }))
  cpSync(DEPLOY, copy, { recursive: true })
  const examples = (dir: string): string[] => readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    return statSync(path).isDirectory() ? examples(path) : entry.endsWith('.env.example') ? [path] : []
  })
  for (const example of examples(copy)) cpSync(example, example.replace(/\.example$/, ''))
  return new Map(kustomizations(copy).map((dir) => [relative(copy, dir), build(dir)]))
}

const renderings = renderAll()

t.test('there is a base and a cluster overlay', async (t) => {
  t.same([...renderings.keys()].sort(), ['base', 'overlays/cluster'])
})

t.test('every rendered manifest validates against the Kubernetes schemas', async (t) => {
  for (const [name, manifests] of renderings) {
    for (const manifest of manifests) {
      t.same(await validateManifest(manifest), [], `${name}: ${manifest.kind} ${manifest.metadata?.name}`)
    }
  }
})

t.test('the validation is strict: a misspelt field or a wrong type is caught', async (t) => {
  const deployment = structuredClone(renderings.get('base')!.find((manifest) => manifest.kind === 'Deployment')!)
  deployment.spec.template.spec.containers[0].readinessProbee = deployment.spec.template.spec.containers[0].readinessProbe
  deployment.spec.replicas = 'one'
  t.same(await validateManifest(deployment), [
    '/spec/replicas: type {"type":"integer"}',
    '/spec/template/spec/containers/0/readinessProbee: unknown field'
  ])
})

t.test('the Kubernetes examples in docs/deploy.md validate, and route to the Service', async (t) => {
  const examples = [...readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => parse(match[1]!) as Manifest)
  t.ok(examples.some((example) => example.kind === 'Ingress'), 'there is an Ingress example')
  const service = one(renderings.get('base')!, 'Service')
  for (const example of examples) {
    t.same(await validateManifest(example), [], `${example.kind} ${example.metadata?.name}`)
    const backends = (example.spec?.rules ?? []).flatMap((rule: Manifest) => rule.http.paths.map((path: Manifest) => path.backend.service))
    for (const backend of backends) {
      t.equal(backend.name, service.metadata.name, 'the backend is the Service')
      t.ok(service.spec.ports.some((port: Manifest) => port.name === backend.port.name), `the Service has a port named ${backend.port.name}`)
    }
  }
})

function one (manifests: Manifest[], kind: string): Manifest {
  const found = manifests.filter((manifest) => manifest.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return found[0]!
}

function data (manifests: Manifest[], kind: 'ConfigMap' | 'Secret', name: string): Record<string, string> {
  const found = manifests.find((manifest) => manifest.kind === kind && manifest.metadata.name === name)
  if (!found) throw new Error(`no ${kind} ${name}`)
  const entries = Object.entries(found.data ?? {}) as Array<[string, string]>
  return Object.fromEntries(kind === 'Secret' ? entries.map(([key, value]) => [key, Buffer.from(value, 'base64').toString()]) : entries)
}

/** The environment the container gets, every reference resolved (a missing ConfigMap, Secret or key throws). */
function containerEnv (manifests: Manifest[], container: Manifest): Record<string, string> {
  const env: Record<string, string> = {}
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, data(manifests, 'ConfigMap', source.configMapRef.name))
    else if (source.secretRef) Object.assign(env, data(manifests, 'Secret', source.secretRef.name))
    else throw new Error(`envFrom ${JSON.stringify(source)} is not understood by this test`)
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom
    let value: string | undefined
    if (from === undefined) value = variable.value
    else if (from.fieldRef?.fieldPath === 'metadata.name') value = SAMPLE_POD_NAME
    else if (from.configMapKeyRef) value = data(manifests, 'ConfigMap', from.configMapKeyRef.name)[from.configMapKeyRef.key]
    else if (from.secretKeyRef) value = data(manifests, 'Secret', from.secretKeyRef.name)[from.secretKeyRef.key]
    else throw new Error(`valueFrom ${JSON.stringify(from)} is not understood by this test`)
    if (value === undefined) throw new Error(`${variable.name}: the key it refers to does not exist`)
    env[variable.name] = value
  }
  return env
}

function mebibytes (quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity)
  if (!match) throw new Error(`memory quantity ${quantity}: expected Mi or Gi`)
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1)
}

const imageUser = readDockerfile(join(ROOT, 'Dockerfile')).at(-1)!.instructions.find((instruction) => instruction.keyword === 'USER')!.args
const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string

t.test('the probes are on paths the app serves, and both answer 200 on a fresh node', async (t) => {
  const app = await buildApp(loadConfig({}))
  t.teardown(() => app.close())
  await app.ready()
  for (const [name, manifests] of renderings) {
    const container = one(manifests, 'Deployment').spec.template.spec.containers[0]
    t.equal(container.startupProbe.httpGet.path, '/health/live', `${name}: startup waits for the process to answer`)
    t.equal(container.livenessProbe.httpGet.path, '/health/live', `${name}: liveness restarts only a process that no longer answers`)
    t.equal(container.readinessProbe.httpGet.path, '/health/ready', `${name}: readiness follows draining and Redis`)
  }
  for (const path of ['/health/live', '/health/ready']) {
    const response = await app.inject({ method: 'GET', url: path })
    t.equal(response.statusCode, 200, `${path} answers 200`)
  }
})

for (const [name, manifests] of renderings) {
  t.test(`${name}: the manifests agree with the app and with each other`, async (t) => {
    const deployment = one(manifests, 'Deployment')
    const pod = deployment.spec.template
    t.equal(pod.spec.containers.length, 1, 'one container')
    const container = pod.spec.containers[0]

    const env = containerEnv(manifests, container)
    const known = Object.keys(EnvSchema.shape)
    t.same(Object.keys(env).filter((variable) => !known.includes(variable)), [], 'every variable is one the config schema reads')
    for (const manifest of manifests.filter((item) => item.kind === 'ConfigMap' || item.kind === 'Secret')) {
      t.same(Object.keys(manifest.data ?? {}).filter((key) => !known.includes(key)), [], `${manifest.kind} ${manifest.metadata.name} holds only config variables`)
    }
    const config = loadConfig(env)
    t.pass('the service accepts the configuration at start')
    t.equal(config.nodeId, SAMPLE_POD_NAME, 'NODE_ID is the pod name')

    if (config.redisUrl === undefined) t.equal(deployment.spec.replicas, 1, 'single-node mode: one replica, or the rooms would be split')
    else t.ok(deployment.spec.replicas >= 2, 'cluster mode: several replicas')

    const ports = new Map<string | number, number>(container.ports.flatMap((port: Manifest) => [[port.name, port.containerPort], [port.containerPort, port.containerPort]]))
    t.equal(ports.get('http'), config.port, 'the container port named http is PORT')
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      t.equal(ports.get(container[probe].httpGet.port), config.port, `${probe} asks PORT`)
    }
    const service = one(manifests, 'Service')
    t.same(service.spec.ports.map((port: Manifest) => ports.get(port.targetPort)), [config.port], 'the Service sends to PORT')
    const metricsPort = config.internalPort ?? config.port
    t.equal(pod.metadata.annotations['prometheus.io/port'], String(metricsPort), 'metrics are scraped where /metrics is served (INTERNAL_PORT, else PORT)')
    if (config.internalPort !== undefined) t.equal(ports.get('metrics'), config.internalPort, 'the container port named metrics is INTERNAL_PORT')

    const labels = pod.metadata.labels
    for (const [what, selector] of [['Deployment', deployment.spec.selector.matchLabels], ['Service', service.spec.selector], ['PodDisruptionBudget', one(manifests, 'PodDisruptionBudget').spec.selector.matchLabels]]) {
      t.match(labels, selector, `the ${what} selects the pods`)
    }

    const preStop = container.lifecycle.preStop.sleep.seconds
    t.ok(preStop >= 1, 'preStop waits for load balancers to drop the pod')
    t.ok(pod.spec.terminationGracePeriodSeconds >= preStop + Math.ceil(config.shutdownGraceMs / 1000) + SERVER_SHUTDOWN_MARGIN_S,
      `terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} >= preStop ${preStop} + SHUTDOWN_GRACE_MS ${config.shutdownGraceMs / 1000} + ${SERVER_SHUTDOWN_MARGIN_S}`)

    t.equal(deployment.spec.strategy.type, 'RollingUpdate')
    t.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rollout never goes below the desired count')
    t.ok(deployment.spec.strategy.rollingUpdate.maxSurge >= 1, 'it adds a pod before it drains one')
    t.equal(one(manifests, 'PodDisruptionBudget').spec.maxUnavailable, 1, 'disruptions take one pod at a time')

    t.equal(pod.spec.securityContext.runAsNonRoot, true, 'non-root')
    t.equal(`${pod.spec.securityContext.runAsUser}:${pod.spec.securityContext.runAsGroup}`, imageUser, 'as the image\'s user')
    t.equal(container.securityContext.readOnlyRootFilesystem, true, 'read-only root filesystem')
    t.equal(container.securityContext.allowPrivilegeEscalation, false, 'no privilege escalation')
    t.same(container.securityContext.capabilities.drop, ['ALL'], 'all capabilities dropped')

    t.ok(mebibytes(container.resources.limits.memory) >= mebibytes(container.resources.requests.memory), 'memory limit >= request')
    t.ok(container.resources.requests.cpu, 'a CPU request')
    t.equal(container.image, `chat-service:${version}`, 'the image tag is the package version')
  })
}
