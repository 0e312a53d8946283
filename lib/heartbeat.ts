// One timer for every connection (not one per socket): each tick terminates
// the peers that did not answer the previous ping and pings the rest.
export interface Pingable {
  alive: boolean
  ping (): void
  terminate (): void
}

export function startHeartbeat (
  connections: Iterable<Pingable>,
  intervalMs: number,
  onTerminate: (connection: Pingable) => void
): () => void {
  const timer = setInterval(() => {
    for (const connection of connections) {
      if (!connection.alive) {
        onTerminate(connection)
        connection.terminate()
        continue
      }
      connection.alive = false
      connection.ping()
    }
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
