// Reads NAMESPACES_FILE (PROTOCOL §8) and checks it against policy.ts's
// schema: the policies, or one line per problem naming the path in the file.
import { readFileSync } from 'node:fs'
import { defaultPolicies, namespacesFileSchema, type HistoryLimits, type Policies } from './policy.js'

export type PoliciesLoad = { ok: true, policies: Policies } | { ok: false, problems: string[] }

const FILE = 'NAMESPACES_FILE'

/**
 * Reads and checks NAMESPACES_FILE. Unset: the default policy for every room.
 * Otherwise the policies, or one line per problem, each naming the JSON path
 * inside the file (`NAMESPACES_FILE: namespaces.support.send: expected …`).
 */
export function loadPolicies (path: string | undefined, limits: HistoryLimits): PoliciesLoad {
  if (path === undefined) return { ok: true, policies: defaultPolicies(limits) }
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : String(code)
    return { ok: false, problems: [`${FILE}: cannot read "${path}": ${why}`] }
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return { ok: false, problems: [`${FILE}: "${path}" is not valid JSON: ${(error as Error).message}`] }
  }
  const result = namespacesFileSchema(limits).safeParse(json)
  if (result.success) return { ok: true, policies: result.data }
  const problems: string[] = []
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(`${FILE}: ${jsonPath([...issue.path, key])}: unknown field`)
      continue
    }
    problems.push(`${FILE}: ${jsonPath(issue.path)}: ${issue.message}`)
  }
  return { ok: false, problems }
}

/** A JSON path as the problem lines write it: `namespaces.support.send`, `(top level)` for the root. */
function jsonPath (path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.')
}
