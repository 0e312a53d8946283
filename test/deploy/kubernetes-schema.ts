// Offline validation of Kubernetes manifests against the API's own schemas
// (kubernetes-models), made strict: the schemas accept fields they do not
// know, as the API server does not (`kubectl apply` fails on a typo).
import type { Manifest } from './kustomize.js'

/** Schema module prefix of each API group version the manifests use. */
const SCHEMA_PREFIX: Record<string, string> = {
  v1: 'IoK8sApiCoreV1',
  'apps/v1': 'IoK8sApiAppsV1',
  'policy/v1': 'IoK8sApiPolicyV1',
  'networking.k8s.io/v1': 'IoK8sApiNetworkingV1'
}

interface SchemaValidate {
  (data: unknown): boolean
  errors?: Array<{ instancePath: string, keyword: string, params: unknown }> | null
}

/**
 * A view of `value` that records the path of every field read through it.
 * The compiled schema reads exactly the fields it declares (and every key of
 * a map), so a field nobody read is one the schema does not know.
 */
function watched (value: unknown, path: string, read: Set<string>): unknown {
  if (value === null || typeof value !== 'object') return value
  return new Proxy(value, {
    get (target, key, receiver) {
      const child: unknown = Reflect.get(target, key, receiver)
      if (typeof key !== 'string' || !Object.hasOwn(target, key)) return child
      read.add(`${path}/${key}`)
      return watched(child, `${path}/${key}`, read)
    },
    has (target, key) {
      if (typeof key === 'string') read.add(`${path}/${key}`)
      return Reflect.has(target, key)
    }
  })
}

function unread (value: unknown, path: string, read: Set<string>): string[] {
  if (Array.isArray(value)) return value.flatMap((item, index) => unread(item, `${path}/${index}`, read))
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, child]) => {
    const at = `${path}/${key}`
    return read.has(at) ? unread(child, at, read) : [`${at}: unknown field`]
  })
}

/** The problems of one manifest: schema errors, then fields the schema does not declare. */
export async function validateManifest (manifest: Manifest): Promise<string[]> {
  const prefix = SCHEMA_PREFIX[manifest.apiVersion]
  if (prefix === undefined) return [`apiVersion ${manifest.apiVersion}: no schema known to this test (add it to SCHEMA_PREFIX)`]
  let validate: SchemaValidate
  try {
    ({ validate } = await import(`kubernetes-models/_schemas/${prefix}${manifest.kind}`) as { validate: SchemaValidate })
  } catch {
    return [`${manifest.apiVersion} ${manifest.kind}: no such kind in the Kubernetes schemas`]
  }
  const read = new Set<string>()
  const problems = validate(watched(manifest, '', read))
    ? []
    : (validate.errors ?? []).map((error) => `${error.instancePath || '/'}: ${error.keyword} ${JSON.stringify(error.params)}`)
  return [...problems, ...unread(manifest, '', read)]
}
