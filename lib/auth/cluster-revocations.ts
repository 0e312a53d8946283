// Revocations shared by every node through Redis (PROTOCOL §7): a disconnect
// is stored under the user's key for AUTH_MAX_TOKEN_TTL_S and announced on
// one sharded channel; a node checks the key on every token it admits or
// refreshes, so one that missed the announcement still refuses the revoked
// tokens. The keys and the channel share the hash tag `{users}`: on a Redis
// Cluster they live in one slot, so one MGET reads many users' keys.
import type { Revocations } from './revocations.js'

/** The channel on which a node announces a back-office disconnect to the others. */
export const USER_DISCONNECT_CHANNEL = 'chat:{users}:disconnect'

/** The key holding when `user` was last disconnected (ms since the epoch). */
export function revokedKey (user: string): string {
  return `chat:{users}:revoked:${user}`
}

/**
 * Users whose revocation keys one MGET reads when a node re-reads them after
 * its subscription was repaired: one command stays small however many users are connected.
 */
export const REVOCATION_REREAD_CHUNK = 1000

/** What travels on USER_DISCONNECT_CHANNEL. */
export interface DisconnectNotice {
  user: string
  /** When the disconnect happened, ms since the epoch. */
  at: number
  reason?: string
}

/** The Redis commands used; an ioredis client fits. */
export interface RevocationCommands {
  get (key: string): Promise<string | null>
  mget (keys: string[]): Promise<Array<string | null>>
  set (key: string, value: string, unit: 'PX', ms: number): Promise<unknown>
  spublish (channel: string, message: string): Promise<unknown>
}

/** Parses a notice; undefined when the payload is not one (it is then ignored). */
export function parseNotice (payload: string): DisconnectNotice | undefined {
  try {
    const notice = JSON.parse(payload) as Partial<DisconnectNotice>
    if (typeof notice.user !== 'string' || typeof notice.at !== 'number') return undefined
    return typeof notice.reason === 'string' ? { user: notice.user, at: notice.at, reason: notice.reason } : { user: notice.user, at: notice.at }
  } catch {
    return undefined
  }
}

export class ClusterRevocations {
  constructor (
    private readonly command: RevocationCommands,
    private readonly local: Revocations,
    private readonly maxTokenTtlS: number
  ) {}

  /** Stores the revocation, then tells every node (this one included). Rejects when Redis is away. */
  async revoke (notice: DisconnectNotice): Promise<void> {
    this.local.revoke(notice.user, notice.at)
    await this.command.set(revokedKey(notice.user), String(notice.at), 'PX', this.maxTokenTtlS * 1000)
    await this.command.spublish(USER_DISCONNECT_CHANNEL, JSON.stringify(notice))
  }

  /**
   * Learns the revocations Redis holds for `users` (those connected to this
   * node), REVOCATION_REREAD_CHUNK keys per command: what a node missed while
   * its subscription was down. Rejects when Redis is away.
   */
  async reread (users: Iterable<string>): Promise<void> {
    let chunk: string[] = []
    const read = async (): Promise<void> => {
      const values = await this.command.mget(chunk.map(revokedKey))
      values.forEach((at, i) => { if (at !== null) this.local.revoke(chunk[i] as string, Number(at)) })
      chunk = []
    }
    for (const user of users) {
      chunk.push(user)
      if (chunk.length === REVOCATION_REREAD_CHUNK) await read()
    }
    if (chunk.length > 0) await read()
  }

  /** Whether the token is revoked, here or by any node; rejects when Redis is away. */
  async isRevoked (user: string, iat: number | undefined): Promise<boolean> {
    if (this.local.isRevoked(user, iat)) return true
    const at = await this.command.get(revokedKey(user))
    if (at === null) return false
    this.local.revoke(user, Number(at))
    return this.local.isRevoked(user, iat)
  }
}
