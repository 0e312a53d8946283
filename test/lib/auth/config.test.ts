// The AUTH_* variables of lib/config.ts (PROTOCOL §6): checks, and no secret in an error.
import t from 'tap'
import { loadConfig } from '../../../lib/config.js'
import { configProblems } from '../../helpers/config-problems.js'

t.test('defaults', async (t) => {
  const config = loadConfig({})
  t.match(config, { authJwtSecret: undefined, authJwksUrl: undefined, authClockToleranceS: 10, authRequired: false, authMaxTokenTtlS: 86400, pageTokenUrl: undefined })
})

t.test('AUTH_JWT_SECRET: at least 32 bytes, never printed', async (t) => {
  const secret = 'too-short-secret-value'
  const [line] = configProblems({ AUTH_JWT_SECRET: secret })
  t.match(line, /^AUTH_JWT_SECRET: expected at least 32 bytes/)
  t.notMatch(line, secret)
  t.equal(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32) }).authJwtSecret, 'x'.repeat(32))
})

t.test('AUTH_JWKS_URL: https, or http to loopback; needs AUTH_AUDIENCE; credentials not printed', async (t) => {
  t.equal(loadConfig({ AUTH_JWKS_URL: 'https://idp.example.com/jwks', AUTH_AUDIENCE: 'chat' }).authJwksUrl, 'https://idp.example.com/jwks')
  t.ok(loadConfig({ AUTH_JWKS_URL: 'http://127.0.0.1:9999/jwks', AUTH_AUDIENCE: 'chat' }).authJwksUrl)
  t.ok(loadConfig({ AUTH_JWKS_URL: 'http://[::1]:9999/jwks', AUTH_AUDIENCE: 'chat' }).authJwksUrl)
  t.match(configProblems({ AUTH_JWKS_URL: 'http://idp.example.com/jwks', AUTH_AUDIENCE: 'chat' }), [/^AUTH_JWKS_URL: expected an https:\/\/ URL/])
  t.match(configProblems({ AUTH_JWKS_URL: 'not a url', AUTH_AUDIENCE: 'chat' }), [/^AUTH_JWKS_URL:/])
  t.match(configProblems({ AUTH_JWKS_URL: 'https://idp.example.com/jwks' }), [/^AUTH_AUDIENCE: expected a value: AUTH_JWKS_URL needs AUTH_AUDIENCE/])
  const [line] = configProblems({ AUTH_JWKS_URL: 'ftp://user:hunter2@idp.example.com/jwks', AUTH_AUDIENCE: 'chat' })
  t.notMatch(line, 'hunter2')
})

t.test('AUTH_REQUIRED needs a way to verify tokens; numbers are bounded', async (t) => {
  t.match(configProblems({ AUTH_REQUIRED: 'true' }), [/^AUTH_REQUIRED: expected false unless AUTH_JWT_SECRET or AUTH_JWKS_URL is set/])
  t.equal(loadConfig({ AUTH_REQUIRED: 'true', AUTH_JWT_SECRET: 'x'.repeat(32) }).authRequired, true)
  t.match(configProblems({ AUTH_REQUIRED: 'yes' }), [/^AUTH_REQUIRED: expected true or false/])
  t.match(configProblems({ AUTH_MAX_TOKEN_TTL_S: '9999999' }), [/^AUTH_MAX_TOKEN_TTL_S: expected a whole number/])
  t.match(configProblems({ AUTH_CLOCK_TOLERANCE_S: '-1' }), [/^AUTH_CLOCK_TOLERANCE_S:/])
})
