// Which open connections of this node belong to which user, so the back
// office can close every connection of one user at once.

export interface UserConnection {
  readonly user: string | undefined
  /** The `iat` of the token the connection holds now; undefined without one. */
  readonly tokenIat: number | undefined
  close (code: number, reason: string): void
}

export class UserConnections<C extends UserConnection> {
  private readonly byUser = new Map<string, Set<C>>()

  /** Users with at least one open connection here. */
  get userCount (): number {
    return this.byUser.size
  }

  add (connection: C): void {
    const { user } = connection
    if (user === undefined) return
    let set = this.byUser.get(user)
    if (set === undefined) {
      set = new Set()
      this.byUser.set(user, set)
    }
    set.add(connection)
  }

  delete (connection: C): void {
    const { user } = connection
    if (user === undefined) return
    const set = this.byUser.get(user)
    if (set === undefined) return
    set.delete(connection)
    if (set.size === 0) this.byUser.delete(user)
  }

  /** The users with at least one open connection here. */
  users (): IterableIterator<string> {
    return this.byUser.keys()
  }

  /**
   * Closes the connections of `user` whose current token `isRevoked` says is
   * revoked (a connection refreshed since the revocation keeps going); returns how many.
   */
  closeRevoked (user: string, isRevoked: (iat: number | undefined) => boolean, code: number, reason: string): number {
    const set = this.byUser.get(user)
    if (set === undefined) return 0
    let closed = 0
    for (const connection of [...set]) {
      if (!isRevoked(connection.tokenIat)) continue
      set.delete(connection)
      connection.close(code, reason)
      closed++
    }
    if (set.size === 0) this.byUser.delete(user)
    return closed
  }

  /** Closes every connection of `user` with `code`; returns how many. */
  closeAll (user: string, code: number, reason: string): number {
    const set = this.byUser.get(user)
    if (set === undefined) return 0
    this.byUser.delete(user)
    for (const connection of set) connection.close(code, reason)
    return set.size
  }
}
