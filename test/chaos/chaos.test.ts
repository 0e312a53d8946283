// `npm run test:chaos` (not part of `npm test`: it starts two real nodes and
// Redis per scenario: two to three minutes of both cores). The short
// form of `npm run chaos` on every topology this tree has a fixture for,
// written to a temporary file: every scenario ran, every verdict passed, and
// the file is the generated table with its provenance.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { matrix, SCENARIOS } from '../../chaos/lib/scenarios.js'
import { TOPOLOGIES } from '../../chaos/lib/topologies/index.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const RUN_TIMEOUT_MS = 280_000

function run (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/run.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => {
      child.kill('SIGTERM')
      reject(new Error(`chaos/run.ts did not finish within ${RUN_TIMEOUT_MS} ms:\n${stderr}`))
    }, RUN_TIMEOUT_MS)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const available = TOPOLOGIES.filter((topology) => topology.unavailable() === undefined)

t.test('npm run chaos -- --short: every scenario on every available topology passes', async (t) => {
  t.ok(available.some((topology) => topology.name === 'single'), 'the single-server topology runs here')
  const dir = mkdtempSync(join(tmpdir(), 'chaos-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'guarantees.md')
  const { code, stderr } = await run(['--short', `--topologies=${available.map((topology) => topology.name).join(',')}`, `--out=${out}`])
  t.equal(code, 0, `exit 0${code === 0 ? '' : `:\n${stderr.slice(-3000)}`}`)
  const markdown = readFileSync(out, 'utf8')
  t.match(markdown, /^# Delivery guarantees under faults/m)
  t.match(markdown, /^- Date: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m, 'the date')
  t.match(markdown, /^- Commit: [0-9a-f]{7,}( \(dirty\))?$/m, 'the commit')
  t.match(markdown, /^- Machine: \d+ × .+, Node v\d+/m, 'the machine')
  t.match(markdown, /^- Command: `npm run chaos -- --short --topologies=/m, 'the command')
  t.match(markdown, /^\| scenario \| topology \| sent \| acked \| refused \| unknown \| lost \| duplicated \| reordered \| acked-then-missing \| verdict \| what happened \|$/m, 'the table header')

  const rows = markdown.split('\n').filter((line) => /^\| [a-z-]+ \| [a-z]+ \| \d/.test(line)).map((line) => line.split(' | ').map((cell) => cell.replace(/^\| /, '')))
  const expected = matrix(SCENARIOS, available, true).map(({ scenario, topology }) => `${scenario.id}/${topology.name}`)
  t.same(rows.map((cells) => `${cells[0]}/${cells[1]}`), expected, 'one row per run of the short matrix')
  t.ok(expected.length >= SCENARIOS.filter((scenario) => scenario.topologies.includes('single')).length, 'every single-server scenario is in it')
  for (const cells of rows) {
    const [scenario, topology, sent, acked, , , lost, duplicated, reordered, ackedThenMissing, verdict] = cells
    t.equal(verdict, 'pass', `${scenario} on ${topology}: ${cells.slice(10).join(' | ')}`)
    t.ok(Number(sent) > 0 && Number(acked) > 0, `${scenario} on ${topology}: traffic flowed`)
    t.same([lost, duplicated, reordered, ackedThenMissing].map(Number), [0, 0, 0, 0], `${scenario} on ${topology}: nothing lost, repeated, reordered or acked-then-missing`)
  }
})
