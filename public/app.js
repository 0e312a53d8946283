// The chat page's entry point: reads the server's limits, then binds the
// DOM in index.html to a ChatClient through one module per part of the page.
// User-supplied text (names, rooms, messages) only ever goes through
// textContent, never through HTML parsing.
import { ChatClient } from './chat-client.js'
import { mountComposer } from './composer.js'
import { mountConnectionBanner } from './connection.js'
import { loadName, mountIdentity } from './identity.js'
import { Limits } from './limits.js'
import { mountMembers } from './members.js'
import { mountMessages } from './messages.js'
import { mountRooms } from './rooms.js'
import { PageState } from './state.js'
import { tokenFetcher } from './token.js'
import { mountTyping } from './typing-indicator.js'

const limits = await Limits.load(new URL('/config.json', location.href))
const state = new PageState()
const savedName = loadName()
const url = new URL('/ws', location.href)
url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
const tokenUrl = limits.tokenUrl === undefined ? undefined : new URL(limits.tokenUrl, location.href)
const client = new ChatClient({
  url,
  ...(savedName === undefined ? {} : { name: savedName }),
  ...(tokenUrl === undefined ? {} : { getToken: tokenFetcher(tokenUrl) })
})

mountConnectionBanner(client, { guestsRefused: limits.authRequired && tokenUrl === undefined })
const composer = mountComposer({ client, state, limits })
const identity = mountIdentity({ client, state, limits, onNameSet: () => rooms.focus() })
const rooms = mountRooms({ client, state, limits, identity, onJoin: composer.focus })
mountMessages({ client, state })
mountMembers({ client, state, limits })
mountTyping({ client, state, limits })

client.connect()
if (savedName === undefined) identity.focus()
else rooms.focus()
