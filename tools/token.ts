// `npm run token -- --sub alice --name Alice --ttl 1h`: prints an HS256
// connection token signed with AUTH_JWT_SECRET (lib/auth/token-tool.ts).
import { parseArgs } from 'node:util'
import { mintToken, TOKEN_TOOL_USAGE } from '../lib/auth/token-tool.js'

try {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      name: { type: 'string' },
      rooms: { type: 'string' },
      ttl: { type: 'string' },
      iss: { type: 'string' },
      aud: { type: 'string' }
    },
    strict: true,
    allowPositionals: false
  })
  if (values.sub === undefined) throw new Error('--sub is required')
  process.stdout.write(`${await mintToken({ ...values, sub: values.sub }, process.env.AUTH_JWT_SECRET)}\n`)
} catch (error) {
  // The message names options, never the secret.
  process.stderr.write(`${(error as Error).message}\n${TOKEN_TOOL_USAGE}\n`)
  process.exit(2)
}
