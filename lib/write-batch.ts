// Coalesces the writes of one tick: a connection that gets several frames in
// the same tick (a burst from Redis, a busy room, a client in many rooms)
// has its socket corked at the first and uncorked once, after the tick, so
// the frames leave in one system call instead of one each.

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

  /** Corks `stream` until the end of the current tick, once per tick. */
  hold (stream: Corkable): void {
    if (this.corked.length === 0) process.nextTick(this.flush)
    this.corked.push(stream)
    stream.cork()
  }
}
