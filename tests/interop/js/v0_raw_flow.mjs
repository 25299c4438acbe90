// A raw /rpc/v0 client against a running filpy devnet: plain JSON-RPC over HTTP with fetch, in the
// shapes filecoin.js and Glif's message confirmer send. The node's wallet signs a transfer
// (MpoolPushMessage); the client polls StateSearchMsg [cid] until it finds it (as Glif's confirmer does),
// waits with StateWaitMsg [cid, confidence] (filecoin.js), and reads StateGetReceipt [cid, tsk], the
// Limited variants, ChainGetMessage and BeaconGetEntry; the v1 shape of StateWaitMsg is refused.
// Prints one JSON object of what it saw; an unexpected answer throws.
//
//   node v0_raw_flow.mjs <rpc v0 url> <token> <from address> <to address>
const [url, token, from, to] = process.argv.slice(2)

let nextId = 1
async function raw(method, params) {
  const body = { jsonrpc: '2.0', id: nextId++, method: `Filecoin.${method}` }
  if (params !== undefined) {
    body.params = params
  }
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  })
  const answer = await res.json()
  if (answer.id !== body.id || answer.jsonrpc !== '2.0') {
    throw new Error(`${method}: not a JSON-RPC answer to request ${body.id}: ${JSON.stringify(answer)}`)
  }
  return answer
}

async function call(method, params) {
  const answer = await raw(method, params)
  if (answer.error) {
    throw new Error(`${method}: ${answer.error.code} ${answer.error.message}`)
  }
  return answer.result
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const version = await call('Version') // no params at all, as iso-filecoin and others send it
const msg = { Version: 0, To: to, From: from, Nonce: 0, Value: '3000000000000000000', GasLimit: 0, GasFeeCap: '0', GasPremium: '0', Method: 0, Params: null }
const signed = await call('MpoolPushMessage', [msg, null])
const cid = signed.CID

// Glif's confirmer: StateSearchMsg [cid] answers null until the message has executed.
const searches = []
let found = null
for (let i = 0; i < 120 && found === null; i++) {
  found = await call('StateSearchMsg', [cid])
  searches.push(found === null ? 'null' : 'found')
  if (found === null) {
    await sleep(250)
  }
}
if (found === null) {
  throw new Error(`StateSearchMsg never found ${cid['/']}`)
}
const waited = await call('StateWaitMsg', [cid, 1])
const limited = await call('StateWaitMsgLimited', [cid, 1, 100])
const searchedLimited = await call('StateSearchMsgLimited', [cid, 100])
const receipt = await call('StateGetReceipt', [cid, null])
const message = await call('ChainGetMessage', [cid])
const beacon = await call('BeaconGetEntry', [found.Height])
const v1Shape = await raw('StateWaitMsg', [cid, 1, 100, false])
const balance = await call('WalletBalance', [to])

console.log(
  JSON.stringify({
    version,
    cid: cid['/'],
    signed_from: signed.Message.From,
    signature_type: signed.Signature.Type,
    nonce: signed.Message.Nonce,
    gas_limit: signed.Message.GasLimit,
    searches,
    found,
    waited,
    limited,
    searched_limited: searchedLimited,
    receipt,
    message,
    beacon_round: beacon.Round,
    v1_shape_error: v1Shape.error ?? null,
    balance,
  })
)
