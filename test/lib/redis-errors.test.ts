// Unit tests of lib/redis-errors.ts: which failures mean only "Redis is away".
import t from 'tap'
import { isRedisAway, reportUnlessAway } from '../../lib/redis-errors.js'

class MaxRetriesPerRequestError extends Error {
  override name = 'MaxRetriesPerRequestError'
}

function withCode (message: string, code: string): Error {
  return Object.assign(new Error(message), { code })
}

t.test('Redis away: closed, offline queue off, timed out, dropped in flight, loading, socket errors', async (t) => {
  for (const error of [
    new Error('Connection is closed.'),
    new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    new Error('Command timed out'),
    new MaxRetriesPerRequestError('Reached the max retries per request limit (which is 0).'),
    new Error('LOADING Redis is loading the dataset in memory'),
    withCode('read ECONNRESET', 'ECONNRESET'),
    withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED')
  ]) t.equal(isRedisAway(error), true, error.message)
})

t.test('anything else is unexpected', async (t) => {
  for (const error of [
    new Error('WRONGTYPE Operation against a key holding the wrong kind of value'),
    new Error('ERR Error running script'),
    new Error('Connection in subscriber mode, only subscriber commands may be used'),
    withCode('permission denied', 'EACCES'),
    new TypeError("Cannot read properties of undefined (reading 'x')")
  ]) t.equal(isRedisAway(error), false, error.message)
  t.equal(isRedisAway('Connection is closed.'), false, 'not an Error')
  t.equal(isRedisAway(undefined), false)
})

t.test('reportUnlessAway passes on only the unexpected, with its context', async (t) => {
  const reported: Array<[unknown, string]> = []
  const handler = reportUnlessAway((error, context) => reported.push([error, context]), 'doing x')
  const unexpected = new Error('WRONGTYPE')
  handler(new Error('Connection is closed.'))
  handler(unexpected)
  t.same(reported, [[unexpected, 'doing x']])
})
