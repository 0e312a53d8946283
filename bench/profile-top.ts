// `node --import tsx bench/profile-top.ts [--top=N] FILE.cpuprofile...`: the
// functions with the most self time in a V8 CPU profile (as written by
// `npm run bench -- --profile`), and the share of busy time spent in each
// source, so a change to the hot path can be judged without a browser.
// Node writes one profile per thread; the main thread's ends in `.0.001`.
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const args = process.argv.slice(2)
const files = args.filter((arg) => !arg.startsWith('--'))
const top = Number(args.find((arg) => arg.startsWith('--top='))?.slice('--top='.length) ?? 25)
if (files.length === 0 || !Number.isInteger(top) || top < 1) {
  process.stderr.write('usage: node --import tsx bench/profile-top.ts [--top=N] FILE.cpuprofile...\n')
  process.exit(2)
}
for (const file of files) report(file)

function report (file: string): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))

  // Self time per node: each sample's delta goes to the node it landed in.
  const selfUs = new Map<number, number>()
  let totalUs = 0
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
    totalUs += delta
  })

  const where = (node: ProfileNode) => {
    const url = node.callFrame.url.replace(/^file:\/\//, '')
    return url === '' ? '(native)' : url.includes('/node_modules/') ? url.slice(url.lastIndexOf('/node_modules/') + 14) : url.startsWith('node:') ? url : relative(process.cwd(), url)
  }

  const byFunction = new Map<string, number>()
  const byFile = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (node === undefined || node.callFrame.functionName === '(idle)') continue
    const name = node.callFrame.functionName || '(anonymous)'
    const key = `${name}  ${where(node)}:${node.callFrame.lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + us)
    const source = where(node).split('/').slice(0, where(node).startsWith('node:') ? 1 : 2).join('/')
    byFile.set(source, (byFile.get(source) ?? 0) + us)
  }

  const idleUs = [...selfUs].reduce((sum, [id, us]) => byId.get(id)?.callFrame.functionName === '(idle)' ? sum + us : sum, 0)
  const busyUs = totalUs - idleUs
  const pct = (us: number) => `${((us / busyUs) * 100).toFixed(1).padStart(5)}%`
  process.stdout.write(`${file}\n${(totalUs / 1e6).toFixed(1)} s profiled, ${(busyUs / 1e6).toFixed(2)} s busy; shares are of busy time\n\n`)
  process.stdout.write('self time by function\n')
  for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}\n`)
  }
  process.stdout.write('\nself time by source (first two path segments)\n')
  for (const [source, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${source}\n`)
  }
}
