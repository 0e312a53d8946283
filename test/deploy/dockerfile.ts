// Reads the Dockerfile into its stages and instructions, so the container
// test can redo what the image build does without Docker.
import { readFileSync } from 'node:fs'

export interface Instruction {
  /** Upper-case keyword: FROM, COPY, RUN… */
  keyword: string
  /** `--name=value` flags before the arguments (`--from`, `--mount`, `--chown`). */
  flags: Record<string, string>
  /** The rest of the line, flags removed, continuation lines joined. */
  args: string
}

export interface Stage {
  name: string
  image: string
  instructions: Instruction[]
}

/** Stages in order; instructions before the first FROM (ARG) are not supported and throw. */
export function readDockerfile (path: string): Stage[] {
  const lines = readFileSync(path, 'utf8').split('\n')
  const joined: string[] = []
  let pending = ''
  for (const line of lines) {
    if (pending === '' && /^\s*(#|$)/.test(line)) continue
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' '
      continue
    }
    joined.push(pending + line)
    pending = ''
  }
  const stages: Stage[] = []
  for (const line of joined) {
    const match = /^\s*(\w+)\s+(.*)$/.exec(line)
    if (!match) throw new Error(`cannot read Dockerfile line: ${line}`)
    const keyword = match[1]!.toUpperCase()
    let rest = match[2]!.trim()
    const flags: Record<string, string> = {}
    for (let flag = /^--([\w-]+)=(\S+)\s+/.exec(rest); flag; flag = /^--([\w-]+)=(\S+)\s+/.exec(rest)) {
      flags[flag[1]!] = flag[2]!
      rest = rest.slice(flag[0].length)
    }
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)
      if (!from) throw new Error(`cannot read FROM ${rest}`)
      stages.push({ image: from[1]!, name: from[2] ?? String(stages.length), instructions: [] })
      continue
    }
    const stage = stages.at(-1)
    if (!stage) throw new Error(`${keyword} before the first FROM is not supported by this reader`)
    stage.instructions.push({ keyword, flags, args: rest })
  }
  return stages
}

/** `CMD ["node", "dist/server.js"]` (exec form only: a shell would keep signals from Node). */
export function execForm (instruction: Instruction): string[] {
  const parsed: unknown = JSON.parse(instruction.args)
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new Error(`${instruction.keyword} is not in exec form: ${instruction.args}`)
  }
  return parsed
}
