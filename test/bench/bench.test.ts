// `npm run test:bench` (not part of `npm test`: it takes both cores for about
// a minute). The benchmark still runs end to end: `npm run bench -- --quick` on two
// fan-out scenarios (the generator, the product and the baseline as real
// processes over loopback), and the hot-path benchmark. Figures from runs
// this short mean nothing, so only what must hold at any speed is checked:
// every delivery counted once, both targets measured, the report complete.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function run (script: string, args: string[], timeoutMs: number): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
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
      reject(new Error(`${script} did not finish within ${timeoutMs} ms:\n${stderr}`))
    }, timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

interface StepSide { deliveriesPerSec: number, offeredDeliveriesPerSec: number, lost: number, duplicated: number, reordered: number, cpuUsPerDelivery: number, writesPerDelivery: number }
interface Saved {
  meta: { quick: boolean, reps: number, baseline: { description: string } }
  summary: { steps: Array<{ scenario: string, rate: number, product?: StepSide, baseline?: StepSide }>, targets: Array<{ target: string }>, errors: string[] }
}

t.test('npm run bench -- --quick: scenarios b and f, product and baseline', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { code, stdout, stderr } = await run('bench/run.ts', ['--quick', '--only=b,f', `--results=${dir}`], 100_000)
  t.equal(code, 0, `exit 0${code === 0 ? '' : `: ${stderr.slice(-2000)}`}`)
  const saved = JSON.parse(readFileSync(join(dir, 'quick.json'), 'utf8')) as Saved
  t.match(saved.meta.baseline.description, /frame built once and written to each socket, one write per delivery/, 'the issue\'s baseline')
  t.equal(saved.meta.reps, 1, '--quick runs each target once')
  t.same(saved.summary.errors, [])
  t.same(saved.summary.steps.map((step) => step.scenario), ['b', 'f'])
  for (const step of saved.summary.steps) {
    for (const side of ['product', 'baseline'] as const) {
      const figures = step[side]
      if (figures === undefined) {
        t.fail(`${step.scenario} ${side}: no figures`)
        continue
      }
      t.equal(figures.lost, 0, `${step.scenario} ${side}: nothing lost`)
      t.equal(figures.duplicated, 0, `${step.scenario} ${side}: nothing duplicated`)
      t.equal(figures.reordered, 0, `${step.scenario} ${side}: nothing out of order`)
      t.ok(figures.deliveriesPerSec > figures.offeredDeliveriesPerSec * 0.5, `${step.scenario} ${side}: deliveries counted`)
      // CPU comes in 10 ms ticks, which a window this short may not see: finite is all that holds.
      t.ok(Number.isFinite(figures.cpuUsPerDelivery) && figures.writesPerDelivery > 0, `${step.scenario} ${side}: CPU and writes measured`)
    }
  }
  t.ok(saved.summary.targets.some((check) => check.target.startsWith('Beyond the baseline')), 'the beyond-the-baseline target is checked')
  t.match(stdout, /QUICK RUN/, 'the table says its figures are a smoke test')
})

t.test('npm run bench:hot-path: product and baseline, with a ratio', async (t) => {
  const { code, stdout, stderr } = await run('bench/hot-path.ts', ['--messages=5000', '--reps=1'], 100_000)
  t.equal(code, 0, `exit 0${code === 0 ? '' : `: ${stderr}`}`)
  t.match(stdout, /^product +\d+\.\d+ µs CPU per message/m)
  t.match(stdout, /^baseline +\d+\.\d+ µs CPU per message/m)
  t.match(stdout, /^ratio +\d+\.\d+x$/m)
})

t.test('a bad argument is refused with the usage, before anything starts', async (t) => {
  // --baseline was retired with its modes: now an unknown option.
  const bench = await run('bench/run.ts', ['--baseline=corked'], 30_000)
  t.equal(bench.code, 2)
  t.match(bench.stderr, /Unknown option '--baseline'.*\nusage: npm run bench/)
  const reps = await run('bench/run.ts', ['--reps=many'], 30_000)
  t.equal(reps.code, 2)
  t.match(reps.stderr, /--reps must be an integer from 1 to 9\nusage: npm run bench/)
  const hotPath = await run('bench/hot-path.ts', ['--messages=ten'], 30_000)
  t.equal(hotPath.code, 2)
  t.match(hotPath.stderr, /--messages must be an integer from 1000 to 10000000\nusage: npm run bench:hot-path/)
})
