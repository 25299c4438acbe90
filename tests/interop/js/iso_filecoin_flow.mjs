// iso-filecoin (its RPC and Wallet) against a running filpy devnet, as a wallet uses a Lotus node:
// fund a fresh secp256k1 and a fresh BLS key from a devnet account imported from its `lotus wallet
// export` hex, each message prepared with iso-filecoin's own nonce and gas estimate calls, signed
// locally, pushed with MpoolPush and waited for with StateWaitMsg; then each fresh key signs a
// transfer of its own. Prints one JSON object of what it saw; any refusal or failed check throws.
//
//   node iso_filecoin_flow.mjs <rpc v1 url> <token> <funder lotus hex>
import { Message } from 'iso-filecoin/message'
import { RPC } from 'iso-filecoin/rpc'
import * as Wallet from 'iso-filecoin/wallet'

const [url, token, funderHex] = process.argv.slice(2)
const rpc = new RPC({ api: url, token, network: 'testnet' })

// iso-filecoin answers { result } or { error }: an error is the node refusing, so it stops the flow.
function ok(what, answer) {
  if (answer.error) {
    throw new Error(`${what}: ${answer.error.message}`)
  }
  return answer.result
}

const FIL = 10n ** 18n

async function send(from, to, value) {
  // prepare(): MpoolGetNonce for the nonce (pending messages counted), GasEstimateMessageGas for gas
  const msg = await new Message({ from: from.address.toString(), to, value: value.toString() }).prepare(rpc)
  const signature = Wallet.signMessage(from.privateKey, from.type, msg)
  const cid = ok('MpoolPush', await rpc.pushMessage({ msg, signature }))
  return { msg, cid }
}

// confidence undefined: iso-filecoin's defaults, [cid, 2, 100, false]
async function wait(sent, confidence) {
  const lookup = ok('StateWaitMsg', await rpc.waitMsg({ cid: sent.cid, confidence }))
  if (lookup.Receipt.ExitCode !== 0) {
    throw new Error(`message ${sent.cid['/']} failed with exit code ${lookup.Receipt.ExitCode}`)
  }
  return lookup
}

async function balance(address) {
  return BigInt(ok('WalletBalance', await rpc.balance(address)))
}

const version = ok('Version', await rpc.version())
const network = ok('StateNetworkName', await rpc.networkName())
// lookBackTipSet(0) is iso-filecoin's "is the node synced" check: the head's timestamp near the clock.
const head = ok('ChainHead (synced check)', await rpc.lookBackTipSet(0))

const funder = Wallet.accountFromLotus(funderHex, 'testnet')
const secp = Wallet.create('SECP256K1', 'testnet')
const bls = Wallet.create('BLS', 'testnet')
const funderBefore = await balance(funder.address.toString())

// Two pushes from the funder back to back: the second's nonce comes from MpoolGetNonce, which must
// count the first (still pending).
const toSecp = await send(funder, secp.address.toString(), 20n * FIL)
const toBls = await send(funder, bls.address.toString(), 30n * FIL)
const funded = [await wait(toSecp, 1), await wait(toBls, 1)]
const secpFunded = await balance(secp.address.toString())
const blsFunded = await balance(bls.address.toString())

// The fresh keys sign their own transfers: a secp256k1 signature and a BLS one.
const secpToBls = await send(secp, bls.address.toString(), 5n * FIL)
const secpLookup = await wait(secpToBls, 1)
const blsToFunder = await send(bls, funder.address.toString(), 7n * FIL)
const blsLookup = await wait(blsToFunder)

// The ID addresses the chain gave the new accounts, and back (Glif and iso-filecoin resolve both ways).
const secpId = ok('StateLookupID', await rpc.stateLookupID({ address: secp.address.toString() }))
const blsKey = ok(
  'StateAccountKey',
  await rpc.stateAccountKey({ address: ok('StateLookupID', await rpc.stateLookupID({ address: bls.address.toString() })) })
)
const secpRobust = ok('StateLookupRobustAddress', await rpc.stateLookupRobustAddress({ address: secpId }))
const latestId = ok('getIDAddress', await rpc.getIDAddress({ address: bls.address.toString(), safety: 'latest' }))

const out = {
  version,
  network,
  head_height: head.Height,
  funder: funder.address.toString(),
  secp: secp.address.toString(),
  bls: bls.address.toString(),
  secp_type: secp.type,
  bls_type: bls.type,
  funder_before: funderBefore.toString(),
  secp_funded: secpFunded.toString(),
  bls_funded: blsFunded.toString(),
  funding: [toSecp, toBls].map((s) => ({ cid: s.cid['/'], nonce: s.msg.nonce, gas_limit: s.msg.gasLimit })),
  funded_heights: funded.map((l) => l.Height),
  secp_send: { cid: secpToBls.cid['/'], height: secpLookup.Height, gas_used: secpLookup.Receipt.GasUsed },
  bls_send: { cid: blsToFunder.cid['/'], height: blsLookup.Height, gas_used: blsLookup.Receipt.GasUsed },
  secp_final: (await balance(secp.address.toString())).toString(),
  bls_final: (await balance(bls.address.toString())).toString(),
  funder_final: (await balance(funder.address.toString())).toString(),
  secp_id: secpId,
  bls_key: blsKey,
  secp_robust: secpRobust,
  bls_id_latest: latestId,
}
console.log(JSON.stringify(out))
