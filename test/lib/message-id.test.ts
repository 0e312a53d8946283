// Unit tests of lib/message-id.ts: `<epoch>-<seq>` ids, and junk refused.
import t from 'tap'
import { formatMessageId, newEpoch, parseMessageId } from '../../lib/message-id.js'

t.test('format and parse round-trip', async (t) => {
  t.equal(formatMessageId('ab12cd34', 7), 'ab12cd34-7')
  t.same(parseMessageId('ab12cd34-7'), { epoch: 'ab12cd34', seq: 7 })
  for (const seq of [1, 9, 10, 12345, 2 ** 50]) {
    t.same(parseMessageId(formatMessageId('e', seq)), { epoch: 'e', seq }, `seq ${seq}`)
  }
  t.same(parseMessageId('abc--7'), { epoch: 'abc-', seq: 7 }, 'epochs are opaque, a trailing dash included')
  t.same(parseMessageId('with-dashes-in-epoch-42'), { epoch: 'with-dashes-in-epoch', seq: 42 }, 'the last dash separates the sequence')
})

t.test('new epochs are random hex, and fit the id format', async (t) => {
  const epochs = new Set(Array.from({ length: 50 }, () => newEpoch()))
  t.equal(epochs.size, 50, 'no repeats')
  for (const epoch of epochs) {
    t.match(epoch, /^[0-9a-f]{8}$/)
    t.same(parseMessageId(formatMessageId(epoch, 3)), { epoch, seq: 3 })
  }
})

t.test('junk is refused', async (t) => {
  const junk = [
    '', '-', '7', 'abc', 'abc-', '-7', 'abc-0', 'abc-07', 'abc-7a', 'abc-7.5', 'abc- 7', 'abc-7 ',
    'abc-1e3', 'abc-+7', 'abc-0x10', 'abc-12345678901234567', 'abc-\u0667' // Arabic-Indic digit 7
  ]
  for (const id of junk) t.equal(parseMessageId(id), undefined, JSON.stringify(id))
})

t.test('sequence numbers up to 16 digits are exact', async (t) => {
  const id = 'e-9007199254740991'
  t.same(parseMessageId(id), { epoch: 'e', seq: Number.MAX_SAFE_INTEGER })
})
