// Keeps connection tokens out of the logs (PROTOCOL §1): the `token` query
// parameter, a `bearer.` subprotocol and anything shaped like a JWT are
// replaced before a line is written, whichever log call carries them.

/** What replaces a token in a log line. */
export const REDACTED = '[redacted]'

const TOKEN_PARAMETER = /([?&;]token=)[^&#\s"']*/gi
const BEARER_PROTOCOL = /(bearer\.)[^\s,"']+/gi
/** Three base64url segments starting with `eyJ` (`{"`): a JWS, wherever it appears. */
const JWT = /eyJ[\w-]*\.[\w-]*\.[\w-]*/g

/** `text` with every token in it replaced by REDACTED. */
export function redactTokens (text: string): string {
  return text.replace(TOKEN_PARAMETER, `$1${REDACTED}`).replace(BEARER_PROTOCOL, `$1${REDACTED}`).replace(JWT, REDACTED)
}

/** The parts of a request Fastify logs (its default `req` serializer), the URL redacted. */
interface LoggedRequest {
  method: string
  url: string
  headers?: Record<string, string | string[] | undefined>
  host?: string
  ip?: string
  socket?: { remotePort?: number | undefined }
}

/**
 * Fastify's logger options with the redaction added: the `req` serializer
 * writes the URL redacted (and, like Fastify's, no other header than
 * accept-version: never Sec-WebSocket-Protocol), and every string argument
 * of a log call is redacted too (Fastify's own messages quote URLs, e.g. a 404).
 */
export function withTokenRedaction<Options extends object> (logger: boolean | Options | undefined): false | Options {
  if (logger === undefined || logger === false) return false
  const base = (logger === true ? {} : logger) as Options & { serializers?: object, hooks?: object }
  const redacting = {
    ...base,
    serializers: {
      ...base.serializers,
      req (request: LoggedRequest) {
        return {
          method: request.method,
          url: redactTokens(request.url),
          version: request.headers?.['accept-version'],
          host: request.host,
          remoteAddress: request.ip,
          remotePort: request.socket?.remotePort
        }
      }
    },
    hooks: {
      ...base.hooks,
      logMethod (this: unknown, args: unknown[], method: (...args: unknown[]) => void) {
        method.apply(this, args.map((arg) => typeof arg === 'string' ? redactTokens(arg) : arg))
      }
    }
  }
  // The same options, two entries more: still the caller's type.
  return redacting as Options
}
