// The bench's yardstick: the same protocol subset as the service on `ws`
// alone (welcome; join → joined; send → one message frame, built once,
// written to every member), with no validation, history, presence or limits.
// What the product costs beyond this is the price of its features. A
// broadcast's WebSocket frame is built once by ws's own framer and written to
// each member's TCP stream, one write per delivery (the `corked` and `send`
// variants of earlier runs are retired: docs/performance.md keeps what they showed).
import { createServer } from 'node:http'
import WebSocket, { WebSocketServer } from 'ws'
import { wsTextFrame } from './lib/ws-framer.js'

/** The TCP stream under a ws WebSocket (a private field of ws, as the product uses it). */
interface Stream {
  write (data: Buffer): boolean
}

interface Member {
  readonly socket: WebSocket
  readonly stream: Stream
  readonly name: string
  readonly rooms: Set<Room>
}

interface Room {
  readonly name: string
  readonly members: Set<Member>
  seq: number
}

const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'
const rooms = new Map<string, Room>()
let connections = 0

/** A one-off frame (welcome, joined), written the way broadcasts are. */
function sendJson (member: Member, value: unknown): void {
  writeFrame(member, wsTextFrame(Buffer.from(JSON.stringify(value))))
}

function writeFrame (member: Member, frame: Buffer): void {
  if (member.socket.readyState !== WebSocket.OPEN) return
  member.stream.write(frame)
}

const http = createServer((request, response) => {
  if (request.url === '/health/live') {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end('{"status":"ok"}')
    return
  }
  response.writeHead(404)
  response.end()
})

// The service's settings where they cost CPU or memory: no compression, same read limit.
const wss = new WebSocketServer({ server: http, path: '/ws', perMessageDeflate: false, maxPayload: 65536 })

wss.on('connection', (socket, request) => {
  const id = (connections++).toString(16)
  const name = new URL(request.url ?? '/', 'http://baseline').searchParams.get('name') ?? `guest-${id}`
  const stream = (socket as unknown as { _socket: Stream })._socket
  const member: Member = { socket, stream, name, rooms: new Set() }
  sendJson(member, { type: 'welcome', id, name, node: 'baseline' })

  socket.on('message', (data) => {
    let frame: { type?: unknown, room?: unknown, text?: unknown }
    try {
      frame = JSON.parse(data.toString()) as typeof frame
    } catch {
      return
    }
    if (typeof frame.room !== 'string') return
    if (frame.type === 'send') {
      const room = rooms.get(frame.room)
      if (room === undefined || !member.rooms.has(room)) return
      room.seq++
      const message = Buffer.from(JSON.stringify({ type: 'message', room: room.name, id: String(room.seq), from: name, text: frame.text, ts: Date.now() }))
      const built = wsTextFrame(message)
      for (const other of room.members) writeFrame(other, built)
    } else if (frame.type === 'join') {
      let room = rooms.get(frame.room)
      if (room === undefined) {
        room = { name: frame.room, members: new Set(), seq: 0 }
        rooms.set(room.name, room)
      }
      room.members.add(member)
      member.rooms.add(room)
      const members: string[] = []
      for (const other of room.members) members.push(other.name)
      sendJson(member, { type: 'joined', room: room.name, members, recovered: true })
    }
  })

  socket.on('close', () => {
    for (const room of member.rooms) {
      room.members.delete(member)
      if (room.members.size === 0) rooms.delete(room.name)
    }
  })
  socket.on('error', () => {})
})

process.once('SIGTERM', () => process.exit(0))
process.once('SIGINT', () => process.exit(0))
http.listen(port, host)
