// A small `kustomize build` for the tests, which cannot download kustomize:
// only the features deploy/kubernetes/ uses, and an error for any other, so a
// new feature in a kustomization fails loudly instead of being skipped.
// One known difference: generated ConfigMaps and Secrets keep their names (no
// hash suffix), so references to them need no rewriting.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'

export type Manifest = Record<string, any>

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'patches', 'configMapGenerator', 'secretGenerator', 'images', 'namespace'])
const GENERATOR_FIELDS = new Set(['name', 'envs', 'literals', 'behavior'])

/**
 * Strategic merge keys of the lists this renderer merges item by item (as the
 * Kubernetes API types declare them); every other list is replaced by the patch's.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort'
}

function readYaml (path: string): Manifest[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((document) => {
    if (document.errors.length > 0) throw new Error(`${path}: ${document.errors[0]!.message}`)
    return document.toJS() as Manifest
  }).filter((document) => document !== null)
}

/** VARIABLE=value lines, as kustomize reads an `envs` file: # comments and blank lines skipped. */
export function readEnvFile (path: string): Record<string, string> {
  const data: Record<string, string> = {}
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue
    const at = line.indexOf('=')
    if (at <= 0) throw new Error(`${path}: expected VARIABLE=value, got "${line}"`)
    data[line.slice(0, at).trim()] = line.slice(at + 1)
  }
  return data
}

function generate (kind: 'ConfigMap' | 'Secret', spec: Manifest, dir: string): Manifest {
  for (const field of Object.keys(spec)) {
    if (!GENERATOR_FIELDS.has(field)) throw new Error(`${dir}: generator field "${field}" is not supported by this renderer`)
  }
  const data: Record<string, string> = {}
  for (const file of spec.envs ?? []) {
    const path = join(dir, file)
    if (!existsSync(path)) throw new Error(`${path} does not exist (kustomize build fails the same way)`)
    Object.assign(data, readEnvFile(path))
  }
  for (const literal of spec.literals ?? []) {
    const at = String(literal).indexOf('=')
    data[String(literal).slice(0, at)] = String(literal).slice(at + 1)
  }
  const manifest: Manifest = { apiVersion: 'v1', kind, metadata: { name: spec.name } }
  if (kind === 'Secret') {
    manifest.type = 'Opaque'
    manifest.data = Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]))
  } else {
    manifest.data = data
  }
  return manifest
}

/** A strategic merge patch, for maps and the lists in MERGE_KEYS; `null` removes a field. */
export function strategicMerge (target: unknown, patch: unknown, field = ''): unknown {
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field]
    if (!key || !Array.isArray(target)) return structuredClone(patch)
    const merged = structuredClone(target) as Manifest[]
    for (const item of patch as Manifest[]) {
      const at = merged.findIndex((existing) => existing[key] === item[key])
      if (at === -1) merged.push(structuredClone(item))
      else merged[at] = strategicMerge(merged[at], item) as Manifest
    }
    return merged
  }
  if (patch !== null && typeof patch === 'object') {
    if (target === null || typeof target !== 'object' || Array.isArray(target)) return structuredClone(patch)
    const merged: Manifest = structuredClone(target)
    for (const [name, value] of Object.entries(patch)) {
      if (name.startsWith('$')) throw new Error(`patch directive ${name} is not supported by this renderer`)
      if (value === null) delete merged[name]
      else merged[name] = strategicMerge(merged[name], value, name)
    }
    return merged
  }
  return patch
}

function sameObject (a: Manifest, b: Manifest): boolean {
  return a.kind === b.kind && a.metadata?.name === b.metadata?.name
}

/** The manifests `kustomize build dir` would print, in the same order of resources. */
export function build (dir: string): Manifest[] {
  const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Manifest
  for (const field of Object.keys(kustomization)) {
    if (!KNOWN_FIELDS.has(field)) throw new Error(`${dir}/kustomization.yaml: "${field}" is not supported by this renderer`)
  }
  let manifests: Manifest[] = []
  for (const resource of kustomization.resources ?? []) {
    const path = join(dir, resource)
    manifests.push(...(statSync(path).isDirectory() ? build(path) : readYaml(path)))
  }
  for (const [field, kind] of [['configMapGenerator', 'ConfigMap'], ['secretGenerator', 'Secret']] as const) {
    for (const spec of kustomization[field] ?? []) {
      const generated = generate(kind, spec, dir)
      const at = manifests.findIndex((existing) => sameObject(existing, generated))
      const behavior = spec.behavior ?? 'create'
      if (behavior === 'create') {
        if (at !== -1) throw new Error(`${dir}: ${kind} ${spec.name} already exists (use behavior: merge)`)
        manifests.push(generated)
      } else if (behavior === 'merge' || behavior === 'replace') {
        if (at === -1) throw new Error(`${dir}: no ${kind} ${spec.name} to ${behavior}`)
        const data = behavior === 'merge' ? { ...manifests[at]!.data, ...generated.data } : generated.data
        manifests[at] = { ...manifests[at], data }
      } else {
        throw new Error(`${dir}: generator behavior ${behavior} is not supported`)
      }
    }
  }
  for (const entry of kustomization.patches ?? []) {
    if (Object.keys(entry).join() !== 'path') throw new Error(`${dir}: only patches given by path are supported`)
    for (const patch of readYaml(join(dir, entry.path))) {
      const at = manifests.findIndex((existing) => sameObject(existing, patch))
      if (at === -1) throw new Error(`${dir}/${entry.path}: no ${patch.kind} ${patch.metadata?.name} to patch`)
      manifests[at] = strategicMerge(manifests[at], patch) as Manifest
    }
  }
  for (const image of kustomization.images ?? []) {
    for (const container of manifests.flatMap((manifest) => manifest.spec?.template?.spec?.containers ?? [])) {
      const [name, tag] = String(container.image).split(/:(?=[^/]*$)/)
      if (name !== image.name) continue
      const digest = image.digest === undefined ? '' : `@${image.digest}`
      container.image = `${image.newName ?? name}${digest || `:${image.newTag ?? tag ?? 'latest'}`}`
    }
  }
  if (kustomization.namespace !== undefined) {
    manifests = manifests.map((manifest) => ({ ...manifest, metadata: { ...manifest.metadata, namespace: kustomization.namespace } }))
  }
  return manifests
}
