// A cluster node's broker in a child process (test/fixtures/broker-node.ts),
// for tests of tens of thousands of rooms: asked over IPC, one question at a
// time, each answer (of the question's kind) awaited with a timeout. Killed
// by its pid in teardown.
import { fork, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import type { BrokerNodeAnswer, BrokerNodeCommand } from '../fixtures/broker-node.js'

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'broker-node.ts')
const START_TIMEOUT_MS = 30_000

export class BrokerProcess {
  private output = ''

  private constructor (private readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => { this.output += chunk.toString() })
    child.stderr?.on('data', (chunk: Buffer) => { this.output += chunk.toString() })
  }

  static async start (t: Test, redisUrl: string): Promise<BrokerProcess> {
    // NODE_OPTIONS cleared: the runner's hooks are what this process is kept away from.
    const child = fork(FIXTURE, [redisUrl], { execArgv: ['--import', 'tsx'], env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    const node = new BrokerProcess(child)
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    await node.answer('ready', START_TIMEOUT_MS)
    return node
  }

  /** Sends `command` and waits for the answer of the same kind. */
  async ask<K extends BrokerNodeCommand['kind']> (command: BrokerNodeCommand & { kind: K }, timeoutMs: number): Promise<BrokerNodeAnswer & { kind: K }> {
    const answer = this.answer(command.kind, timeoutMs)
    this.child.send(command)
    return answer as Promise<BrokerNodeAnswer & { kind: K }>
  }

  private answer (kind: BrokerNodeAnswer['kind'], timeoutMs: number): Promise<BrokerNodeAnswer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.off('message', onMessage)
        reject(new Error(`no '${kind}' answer from the broker process within ${timeoutMs} ms:\n${this.output}`))
      }, timeoutMs)
      const onMessage = (message: BrokerNodeAnswer) => {
        if (message.kind !== kind) return
        clearTimeout(timer)
        this.child.off('message', onMessage)
        resolve(message)
      }
      this.child.on('message', onMessage)
      this.child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`the broker process exited (${code}):\n${this.output}`))
      })
    })
  }
}
