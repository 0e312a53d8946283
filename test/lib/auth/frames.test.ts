// The frames identity adds (lib/frames.ts): `user`/`api` on messages, welcome's
// `user`/`expiresIn`, the `auth` frame and its ack.
import t from 'tap'
import { createFrameParser, encodeAuthAck, encodeMessage, encodeWelcome } from '../../../lib/frames.js'

t.test('message frames: user and api are added after ts, byte for byte JSON; a guest message is unchanged', async (t) => {
  const base = { room: 'r', id: 'e-1', seq: 1, from: 'A "quoted" name', text: 'hi', ts: 5 }
  t.equal(encodeMessage(base), JSON.stringify({ type: 'message', room: 'r', id: 'e-1', from: base.from, text: 'hi', ts: 5 }))
  t.equal(encodeMessage({ ...base, user: 'al"ice' }), JSON.stringify({ type: 'message', room: 'r', id: 'e-1', from: base.from, text: 'hi', ts: 5, user: 'al"ice' }))
  t.equal(encodeMessage({ ...base, api: true }), JSON.stringify({ type: 'message', room: 'r', id: 'e-1', from: base.from, text: 'hi', ts: 5, api: true }))
})

t.test('welcome and the auth ack', async (t) => {
  t.same(JSON.parse(encodeWelcome('c', 'guest-1', 'n')), { type: 'welcome', id: 'c', name: 'guest-1', node: 'n' })
  t.same(JSON.parse(encodeWelcome('c', 'Alice', 'n', 'alice', 60)), { type: 'welcome', id: 'c', name: 'Alice', node: 'n', user: 'alice', expiresIn: 60 })
  t.same(JSON.parse(encodeAuthAck('r', 0)), { type: 'ack', ref: 'r', expiresIn: 0 })
})

t.test('the auth frame', async (t) => {
  const parse = createFrameParser(100, 1024)
  t.same(parse('{"type":"auth","token":"abc","ref":"r"}'), { ok: true, frame: { type: 'auth', token: 'abc', ref: 'r' } })
  t.match(parse('{"type":"auth"}'), { ok: false, message: /"token" is required/ })
  t.match(parse('{"type":"auth","token":""}'), { ok: false, message: /token/ })
  t.match(parse('{"type":"auth","token":"a","user":"x","ref":"r"}'), { ok: false, message: /unknown field "user"/, ref: 'r' })
  t.match(parse('{"type":"nope"}'), { ok: false, message: /"auth"/ })
})
