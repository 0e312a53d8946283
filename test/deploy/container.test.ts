// The container image, without Docker: the Dockerfile's stages are redone in
// temporary directories (its COPY and RUN lines, production `npm ci` for
// real), and the result runs as the image's non-root user from a read-only
// root filesystem, like a pod with readOnlyRootFilesystem and no capabilities.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, posix, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import WebSocket from 'ws'
import { EnvSchema } from '../../lib/config.js'
import { freePort } from '../helpers/free-port.js'
import { execForm, readDockerfile, type Stage } from './dockerfile.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** `tsc` for the build stage, and `npm ci --omit=dev` from the registry (or npm's cache). */
const RUN_TIMEOUT_MS = 240_000
const START_TIMEOUT_MS = 20_000
/** Short, so the drain is quick; the server must exit well within grace + its own safety margin. */
const SHUTDOWN_GRACE_MS = 1000
const EXIT_TIMEOUT_MS = SHUTDOWN_GRACE_MS + 10_000
/** Secrets the test gives the server, to check that the HTTP API works and that they are not logged. */
const BROADCAST_TOKEN = 'container-test-token-0123456789'

t.setTimeout(2 * RUN_TIMEOUT_MS + 60_000)

const stages = readDockerfile(join(ROOT, 'Dockerfile'))
const runtime = stages.at(-1)!

function only (stage: Stage, keyword: string): string {
  const found = stage.instructions.filter((instruction) => instruction.keyword === keyword)
  if (found.length !== 1) throw new Error(`expected one ${keyword} in stage ${stage.name}, found ${found.length}`)
  return found[0]!.args
}

t.test('the Dockerfile: Node 24 slim, multi-stage, production deps, non-root, exec-form CMD', async (t) => {
  t.ok(stages.length >= 2, 'a build stage and a runtime stage')
  for (const stage of stages) t.match(stage.image, /^node:24(\.\d+)*-[a-z]+-slim$/, `${stage.name} is on a Node 24 slim image`)
  const runs = runtime.instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.args)
  t.same(runs.map((run) => /^npm ci\b.*--omit=dev\b/.test(run)), [true], 'the runtime stage installs production dependencies only')
  t.match(only(runtime, 'USER'), /^[1-9]\d*(:\d+)?$/, 'runs as a numeric non-root uid')
  t.same(execForm(runtime.instructions.find((instruction) => instruction.keyword === 'CMD')!), ['node', 'dist/server.js'], 'Node is PID 1 and gets the signals')
  t.equal(Number(only(runtime, 'EXPOSE')), EnvSchema.parse({}).PORT, 'EXPOSE is the default PORT')
})

t.test('.dockerignore lets in exactly what the Dockerfile copies from the context', async (t) => {
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
  t.equal(lines[0], '*', 'an allow-list: everything is left out first')
  const allowed = lines.slice(1).map((line) => {
    t.ok(line.startsWith('!'), `${line} re-includes a path`)
    return line.slice(1).replace(/\/$/, '')
  })
  const copied = stages.flatMap((stage) => stage.instructions)
    .filter((instruction) => instruction.keyword === 'COPY' && instruction.flags.from === undefined)
    .flatMap((instruction) => instruction.args.split(/\s+/).slice(0, -1).map((source) => source.replace(/^\.\//, '').replace(/\/$/, '')))
  t.same([...new Set(copied)].sort(), [...allowed].sort())
})

/** What redoing a stage leaves: its directory and the runtime settings the image would carry. */
interface Built {
  dir: string
  env: Record<string, string>
}

/**
 * Redoes a stage in `dir`: WORKDIR is `dir`; COPY from the context or an
 * earlier stage; RUN through `sh`. A development `npm ci` (no --omit=dev) is
 * the repository's own node_modules, installed from the same lock file; a
 * production one runs for real, so only production packages are there.
 */
function redo (stage: Stage, dir: string, built: Map<string, Built>, workdirs: Map<string, string>): Built {
  const env: Record<string, string> = {}
  mkdirSync(dir, { recursive: true })
  const workdir = only(stage, 'WORKDIR')
  workdirs.set(stage.name, workdir)
  for (const { keyword, flags, args } of stage.instructions) {
    switch (keyword) {
      case 'WORKDIR': case 'USER': case 'EXPOSE': case 'CMD':
        break
      case 'ENV':
        for (const pair of args.split(/\s+/)) {
          const [name, ...value] = pair.split('=')
          env[name!] = value.join('=')
        }
        break
      case 'COPY': {
        const parts = args.split(/\s+/)
        const destination = join(dir, parts.at(-1)!)
        const sources = parts.slice(0, -1)
        for (const source of sources) {
          let from = join(ROOT, source)
          if (flags.from !== undefined) {
            const other = built.get(flags.from)
            if (!other) throw new Error(`COPY --from=${flags.from}: no such stage before ${stage.name}`)
            from = join(other.dir, posix.relative(workdirs.get(flags.from)!, source))
          }
          const into = sources.length > 1 || parts.at(-1)!.endsWith('/') ? join(destination, basename(source)) : destination
          cpSync(from, into, { recursive: true })
        }
        break
      }
      case 'RUN': {
        if (/^npm ci\b/.test(args) && !/--omit=dev\b/.test(args)) {
          symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
          break
        }
        const result = spawnSync('sh', ['-c', args], {
          cwd: dir,
          // npm's cache may answer instead of the registry; NODE_OPTIONS from tap must not reach tsc or npm.
          env: { ...process.env, NODE_OPTIONS: '', npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
          encoding: 'utf8',
          timeout: RUN_TIMEOUT_MS
        })
        if (result.status !== 0) throw new Error(`RUN ${args} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`)
        break
      }
      default:
        throw new Error(`${keyword} in the Dockerfile is not redone by this test: teach redo() what it means`)
    }
  }
  const result = { dir, env }
  built.set(stage.name, result)
  return result
}

/** Every file under `dir` with its size and modification time, to prove nothing was written. */
function snapshot (dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const path = join(prefix, entry.name)
    const stat = statSync(join(dir, path), { throwIfNoEntry: false })
    const line = `${path} ${stat?.size} ${stat?.mtimeMs}`
    return entry.isDirectory() ? [line, ...snapshot(dir, path)] : [line]
  })
}

function status (pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((item) => item.startsWith(field + ':'))
  return line?.slice(field.length + 1).trim().split(/\s+/)[0] ?? ''
}

t.test('a copy made the way the Dockerfile does serves, as a non-root user from a read-only root, and drains on SIGTERM', async (t) => {
  const scratch = mkdtempSync(join(tmpdir(), 'chat-image-'))
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
  // mkdtemp makes it private to root; the image's user must be able to reach the app.
  chmodSync(scratch, 0o755)

  const built = new Map<string, Built>()
  const workdirs = new Map<string, string>()
  let image: Built | undefined
  for (const stage of stages) image = redo(stage, join(scratch, stage.name), built, workdirs)
  const app = image!.dir

  // Else a dev dependency could be found above the app and the next check would prove nothing.
  for (let dir = dirname(app); dir !== dirname(dir); dir = dirname(dir)) {
    t.notOk(existsSync(join(dir, 'node_modules')), `no node_modules above the app in ${dir}`)
  }
  t.notOk(existsSync(join(app, 'node_modules', 'typescript')), 'no development package in the runtime copy')
  t.ok(existsSync(join(app, 'node_modules', 'fastify')), 'production packages are there')

  const [uid, gid] = only(runtime, 'USER').split(':').map(Number) as [number, number | undefined]
  const port = await freePort()
  const command = execForm(runtime.instructions.find((instruction) => instruction.keyword === 'CMD')!)
  const env = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/nonexistent',
    ...image!.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
    BROADCAST_TOKEN
  }
  // `node` from the image's PATH is the Node running this test (20 here, 24 in the .ci/run pass).
  // `env -i`: tap adds its own NODE_OPTIONS to whatever a test spawns; the image has none of that.
  const argv = ['env', '-i', ...Object.entries(env).map(([name, value]) => `${name}=${value}`), process.execPath, ...command.slice(1)]
  const asRoot = process.getuid?.() === 0
  const before = snapshot(app)
  let child: ChildProcess
  if (asRoot) {
    // A private mount namespace whose / is read-only (readOnlyRootFilesystem), then the image's
    // uid with no capabilities at all (drop: [ALL]) and no way to gain any. exec keeps one pid.
    const dropToUser = `mount -o remount,bind,ro / && exec setpriv --reuid=${uid} --regid=${gid ?? uid} --clear-groups ` +
      '--no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"'
    child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', dropToUser, 'sh', ...argv], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] })
  } else {
    // Not root: already a non-root user; the directory is made read-only instead of the filesystem.
    spawnSync('chmod', ['-R', 'a-w', app])
    t.teardown(() => { spawnSync('chmod', ['-R', 'u+w', app]) })
    child = spawn(argv[0]!, argv.slice(1), { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] })
  }
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })

  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} at start:\n${output}`)
    const live = await fetch(`${base}/health/live`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined)
    if (live?.status === 200) break
    if (Date.now() > deadline) throw new Error(`the server did not answer within ${START_TIMEOUT_MS} ms:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  t.same(readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0').filter(Boolean).map((pair) => pair.split('=')[0]).sort(),
    Object.keys(env).sort(), 'with only the environment the image and the test give it')
  if (asRoot) {
    t.equal(status(child.pid!, 'Uid'), String(uid), `runs as uid ${uid}`)
    t.equal(status(child.pid!, 'CapEff'), '0000000000000000', 'with no capabilities')
    const root = readFileSync(`/proc/${child.pid}/mountinfo`, 'utf8').split('\n').find((line) => line.split(' ')[4] === '/')
    t.match(root?.split(' ')[5] ?? '', /^ro\b/, 'and a read-only root filesystem')
  }

  const page = await fetch(`${base}/`)
  t.equal(page.status, 200, 'serves the page')
  t.match(page.headers.get('content-type') ?? '', /^text\/html/)
  const script = /<script[^>]*src="([^"]+)"/.exec(await page.text())?.[1]
  t.ok(script, 'the page loads a script')
  t.equal((await fetch(new URL(script!, `${base}/`))).status, 200, `and ${script} is served from public/`)

  const ready = await fetch(`${base}/health/ready`)
  t.equal(ready.status, 200, 'answers readiness')
  t.same(await ready.json(), { status: 'ok' })

  const broadcast = await fetch(`${base}/rooms/lobby/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BROADCAST_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'from the image test' })
  })
  t.equal(broadcast.status, 202, 'the HTTP API takes the token from the environment')

  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?name=tester`)
  const welcome = await new Promise<{ type: string }>((resolve, reject) => {
    socket.once('message', (data) => resolve(JSON.parse(data.toString())))
    socket.once('error', reject)
  })
  t.equal(welcome.type, 'welcome', 'a WebSocket client is welcomed')
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))

  child.kill('SIGTERM')
  t.equal(await closed, 1001, 'SIGTERM closes the connection with 1001')
  const exit = await Promise.race([
    exited,
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`no exit within ${EXIT_TIMEOUT_MS} ms:\n${output}`)), EXIT_TIMEOUT_MS))
  ])
  t.same(exit, { code: 0, signal: null }, 'and the process exits 0')
  t.match(output, /drain complete/, 'after the drain')
  t.notMatch(output, /"level":(50|60)/, 'nothing logged as an error')
  t.notMatch(output, BROADCAST_TOKEN, 'the token is not logged')
  t.same(snapshot(app), before, 'nothing under the app directory was written')
})
