// Command lines of the bench scripts, read by node:util's parseArgs: an
// unknown option or a bad value stops the script with exit code 2 and the
// usage, before anything starts.
import { parseArgs, type ParseArgsConfig } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>

/** Exits with code 2 after printing `problem` and `usage` to stderr. */
export function refuse (problem: string, usage: string): never {
  process.stderr.write(`${problem}\n${usage}\n`)
  process.exit(2)
}

/** The values of `options` in `args` (strict: no positionals, no unknown options). */
export function readCommandLine<T extends Options> (args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values
  } catch (error) {
    return refuse((error as Error).message, usage)
  }
}

/** A whole number option from `min` to `max`, or `fallback` when it was not given. */
export function integerOption (value: string | undefined, name: string, fallback: number, min: number, max: number, usage: string): number {
  const number = value === undefined ? fallback : Number(value)
  if (!Number.isInteger(number) || number < min || number > max) refuse(`--${name} must be an integer from ${min} to ${max}`, usage)
  return number
}
