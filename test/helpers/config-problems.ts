import { ConfigError, loadConfig } from '../../lib/config.js'

/** The lines of the ConfigError that `env` makes loadConfig throw; a configuration that is accepted fails the test. */
export function configProblems (env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  throw new Error(`configuration was accepted: ${JSON.stringify(env)}`)
}
