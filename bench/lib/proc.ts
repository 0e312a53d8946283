// Reading processes and the machine from /proc (Linux): CPU time, resident
// memory, the open-files limit, and what the machine is.
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, release } from 'node:os'

export interface CpuTimes {
  /** utime: running the process's own code (JavaScript, V8, libuv), in clock ticks. */
  user: number
  /** stime: in the kernel on its behalf (system calls: for a socket server mostly TCP writes). */
  system: number
}

/** utime and stime of a process (all its threads), in clock ticks. */
export function cpuTimes (pid: number): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  return { user: Number(fields[11]), system: Number(fields[12]) }
}

/** utime + stime of a process (all its threads), in clock ticks. */
export function cpuTicks (pid: number): number {
  const { user, system } = cpuTimes(pid)
  return user + system
}

/** Write-type system calls made by a process so far (syscw of /proc/<pid>/io). */
export function writeSyscalls (pid: number): number {
  const match = /^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))
  return match ? Number(match[1]) : Number.NaN
}

/** Resident set size in kB (VmRSS of /proc/<pid>/status). */
export function rssKb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (!match) throw new Error(`no VmRSS for process ${pid}`)
  return Number(match[1])
}

/** Clock ticks per second of /proc/<pid>/stat. */
export function clockTicksPerSecond (): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    if (Number.isFinite(value) && value > 0) return value
  } catch {}
  return 100
}

export interface FileLimit {
  soft: number
  hard: number
}

/** The open-files limit this process runs under (children inherit it). */
export function openFileLimit (): FileLimit {
  const limits = readFileSync('/proc/self/limits', 'utf8')
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits)
  const parse = (value: string | undefined) => value === undefined || value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value)
  return { soft: parse(match?.[1]), hard: parse(match?.[2]) }
}

export function hasTaskset (): boolean {
  const probe = spawnSync('taskset', ['--version'], { stdio: 'ignore' })
  return probe.error === undefined && probe.status === 0
}

export interface Machine {
  cores: number
  model: string
  node: string
  kernel: string
  ws: string
  loadAverage: string
}

export function describeMachine (root: string): Machine {
  let model = cpus()[0]?.model ?? 'unknown'
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
    model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? model
  } catch {}
  let ws = 'unknown'
  try {
    ws = (JSON.parse(readFileSync(`${root}/node_modules/ws/package.json`, 'utf8')) as { version: string }).version
  } catch {}
  return { cores: cpus().length, model, node: process.version, kernel: release(), ws, loadAverage: loadAverage() }
}

/** The 1, 5 and 15 minute load averages: other work on the machine skews the figures. */
export function loadAverage (): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  } catch {
    return 'unknown'
  }
}

export interface CoreTicks {
  /** Time the core ran anything (user, nice, system, irq, softirq), in clock ticks. */
  busy: number
  /** Time the hypervisor gave the core's slot to another guest. */
  steal: number
}

/** Per-core counters of /proc/stat, indexed by core number. */
export function coreTicks (): CoreTicks[] {
  const cores: CoreTicks[] = []
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const match = /^cpu(\d+)\s+(.*)$/.exec(line)
    if (!match) continue
    const [user, nice, system, , , irq, softirq, steal] = (match[2] as string).split(/\s+/).map(Number) as number[]
    cores[Number(match[1])] = { busy: (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0), steal: steal ?? 0 }
  }
  return cores
}
