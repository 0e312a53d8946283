// Connection tokens for tests, signed with jose, and a JSON Web Key Set
// served over HTTP on loopback by the test itself (rotation, outage).
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'

/** The HS256 secret the tests configure (AUTH_JWT_SECRET): 32 bytes and more. */
export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdef-0123456789'

/** Every token a test signed in this process, for the check that none reaches a log. */
export const signedTokens = new Set<string>()

export interface Claims extends JWTPayload {
  name?: unknown
}

/** Seconds since the epoch. */
export function nowS (): number {
  return Math.floor(Date.now() / 1000)
}

/** An HS256 token; `exp` one hour away and `iat` now unless the claims say otherwise (`undefined` leaves one out). */
export async function hsToken (claims: Claims, secret = TEST_JWT_SECRET): Promise<string> {
  return sign(claims, { alg: 'HS256' }, new TextEncoder().encode(secret))
}

export async function sign (claims: Claims, header: { alg: string, kid?: string }, key: CryptoKey | Uint8Array): Promise<string> {
  const full: Claims = { iat: nowS(), exp: nowS() + 3600, ...claims }
  for (const [name, value] of Object.entries(full)) if (value === undefined) delete full[name]
  const token = await new SignJWT(full).setProtectedHeader(header).sign(key)
  signedTokens.add(token)
  return token
}

export interface SigningKey {
  kid: string
  alg: 'RS256' | 'ES256' | 'EdDSA'
  privateKey: CryptoKey
  publicKey: CryptoKey
  jwk: JWK
}

export async function signingKey (alg: SigningKey['alg'], kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...await exportJWK(publicKey), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, publicKey, jwk }
}

/** A token signed with `key`, its `kid` in the header. */
export async function keyToken (key: SigningKey, claims: Claims): Promise<string> {
  return sign(claims, { alg: key.alg, kid: key.kid }, key.privateKey)
}

/** Serves `keys` as a JWKS at /jwks.json; `down` answers 503; counts fetches. */
export class JwksServer {
  keys: JWK[] = []
  down = false
  fetches = 0
  private constructor (private readonly server: http.Server, readonly url: string) {}

  static async start (t: Test, keys: SigningKey[] = []): Promise<JwksServer> {
    const holder: { self?: JwksServer } = {}
    const server = http.createServer((request, response) => {
      const self = holder.self
      if (self === undefined) return
      self.fetches++
      if (self.down || request.url !== '/jwks.json') {
        response.writeHead(503).end()
        return
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: self.keys }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const self = new JwksServer(server, `http://127.0.0.1:${port}/jwks.json`)
    self.keys = keys.map((key) => key.jwk)
    holder.self = self
    t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
    return self
  }
}
