// A WebSocket client (the `ws` package) against a running filpy devnet, speaking go-jsonrpc's channel
// protocol by hand: ChainNotify answers a channel id, then `xrpc.ch.val` notifications carry first
// [{Type: "current"}] and then "apply" changes; MpoolSub on the same connection sees a message the
// faucet pushes (over the same connection, with the admin token given on the upgrade); `xrpc.cancel`
// with ChainNotify's request id ends its channel (`xrpc.ch.close`), after which no value arrives on it.
// Prints one JSON object of what it saw; a timeout or an unexpected frame throws.
//
//   node ws_notify_flow.mjs <ws url of /rpc/v1> <token> <faucet recipient>
import WebSocket from 'ws'

const [url, token, recipient] = process.argv.slice(2)
const APPLIES = 3
const QUIET_MS = 2500 // after the close: more than two block delays of a 1 s devnet

const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } })
await new Promise((resolve, reject) => {
  ws.once('open', resolve)
  ws.once('error', reject)
})

const frames = [] // every frame received, in order
let waiting = null
ws.on('message', (data) => {
  frames.push(JSON.parse(data.toString()))
  if (waiting !== null) {
    waiting()
  }
})

// The next frame after index `from` that satisfies `test`, within `ms`.
async function next(test, from, ms = 30000) {
  const deadline = Date.now() + ms
  for (;;) {
    const i = frames.findIndex((f, j) => j >= from && test(f))
    if (i >= 0) {
      return i
    }
    const left = deadline - Date.now()
    if (left <= 0) {
      throw new Error(`timed out; frames so far: ${JSON.stringify(frames).slice(0, 2000)}`)
    }
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left)
      waiting = () => {
        clearTimeout(timer)
        waiting = null
        resolve()
      }
    })
  }
}

function send(frame) {
  ws.send(JSON.stringify({ jsonrpc: '2.0', ...frame }))
}

const answer = (id) => (f) => f.id === id && ('result' in f || 'error' in f)
const value = (chan) => (f) => f.method === 'xrpc.ch.val' && f.params[0] === chan

send({ id: 1, method: 'Filecoin.ChainNotify', params: [] })
const notifyChan = frames[await next(answer(1), 0)].result
// The first value: the current head.
let at = await next(value(notifyChan), 0)
const first = frames[at].params[1]
const applies = []
while (applies.length < APPLIES) {
  at = await next(value(notifyChan), at + 1)
  for (const change of frames[at].params[1]) {
    applies.push({ type: change.Type, height: change.Val.Height })
  }
}

// MpoolSub on the same connection, and a call answered while both channels are open.
send({ id: 2, method: 'Filecoin.MpoolSub', params: [] })
const mpoolChan = frames[await next(answer(2), 0)].result
send({ id: 3, method: 'Filpy.Faucet', params: [recipient, '1000000000000000000'] })
const faucetCid = frames[await next(answer(3), 0)].result
const update = frames[await next((f) => value(mpoolChan)(f) && f.params[1].Message.Message.To === recipient, 0)].params[1]

// Cancel ChainNotify by its request id: its channel closes, and stays quiet.
send({ method: 'xrpc.cancel', params: [1] })
const closedAt = await next((f) => f.method === 'xrpc.ch.close' && f.params[0] === notifyChan, 0)
await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
const afterClose = frames.slice(closedAt + 1).filter(value(notifyChan)).length
send({ id: 4, method: 'Filecoin.ChainHead' })
const head = frames[await next(answer(4), closedAt)].result
ws.close()

console.log(
  JSON.stringify({
    notify_channel: notifyChan,
    first: first.map((c) => ({ type: c.Type, height: c.Val.Height, cids: c.Val.Cids.length })),
    applies,
    mpool_channel: mpoolChan,
    faucet_cid: faucetCid['/'],
    mpool_update: { type: update.Type, to: update.Message.Message.To, signature_type: update.Message.Signature.Type, cid: update.Message.CID['/'] },
    values_after_close: afterClose,
    head_after_close: head.Height,
  })
)
