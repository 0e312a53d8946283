// The page's cluster node is killed (SIGKILL, like a crash): the page shows
// "reconnecting", lands on the other node through the same origin and shows
// what was broadcast meanwhile exactly once. The scenario is in failover.ts.
import t from 'tap'
import { failover } from './failover.js'

t.test('SIGKILL of the page\'s node: the page reconnects through the same origin to the other node and shows what it missed exactly once',
  (t) => failover(t, 'SIGKILL'))
