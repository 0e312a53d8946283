// Coalesces the writes of one turn of the event loop. A connection that gets
// several frames before the loop's check phase (a burst from Redis, a busy
// room, a client in many rooms, or messages read from several publishers'
// sockets in the same poll) is corked at the first frame and uncorked once,
// in `setImmediate`, so the frames leave in one system call instead of one
// each.
//
// Why not `process.nextTick`: Node runs the nextTick queue after *each* I/O
// callback, so a nextTick flush would uncork after every inbound frame and
// never merge the messages of two publishers read in the same poll. The check
// phase comes right after the poll phase, so the frame waits no longer than
// the rest of the callbacks that were ready with it.

export interface Corkable {
  cork (): void
  uncork (): void
}

export class WriteBatch {
  private corked: Corkable[] = []
  private readonly flush = () => {
    const corked = this.corked
    this.corked = []
    for (const stream of corked) stream.uncork()
  }

  /** Corks `stream` until this turn's check phase. Call once per stream per turn. */
  hold (stream: Corkable): void {
    if (this.corked.length === 0) setImmediate(this.flush)
    this.corked.push(stream)
    stream.cork()
  }
}
