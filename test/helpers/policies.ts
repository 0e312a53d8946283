// A NAMESPACES_FILE for tests: one namespace per policy under test, written
// to a temporary directory.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const TEST_POLICIES = {
  namespaces: {
    members: { join: 'authenticated' },
    granted: { join: 'granted', send: 'granted' },
    inbox: { join: 'owner' },
    announce: { send: 'none', signals: false },
    quiet: { presence: false },
    short: { historySize: 3, historyOnJoin: 2 },
    nohist: { historySize: 0 },
    nojoin: { historyOnJoin: 0 }
  }
}

/** Writes `contents` as JSON to a fresh temporary file; returns its path. */
export function policyFile (contents: unknown = TEST_POLICIES): string {
  const path = join(mkdtempSync(join(tmpdir(), 'policies-')), 'namespaces.json')
  writeFileSync(path, typeof contents === 'string' ? contents : JSON.stringify(contents))
  return path
}
