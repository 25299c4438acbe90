// @zondax/filecoin-signing-tools against a running filpy devnet: its signer (the wasm build, which
// signs secp256k1 and BLS) signs transfers, its FilecoinRPC client (axios) gets the nonce, estimates
// gas, pushes with MpoolPush and waits with StateWaitMsg as it does ([cid, 0, null, false]).
// A devnet account (its secp256k1 key as base64) funds a fresh BLS key; the BLS key sends part back.
// Prints one JSON object of what it saw; any refusal or failed check throws.
//
//   node zondax_flow.mjs <rpc v1 url> <token> <funder private key, base64>
import crypto from 'node:crypto'
import * as signer from '@zondax/filecoin-signing-tools'
import FilecoinRPC from '@zondax/filecoin-signing-tools/rpc'

const [url, token, funderKey] = process.argv.slice(2)
const client = new FilecoinRPC({ url, token })

function ok(what, answer) {
  if (answer.error) {
    throw new Error(`${what}: ${answer.error.message}`)
  }
  return answer.result
}

async function estimate(from, to, value, nonce) {
  const draft = { To: to, From: from, Nonce: nonce, Value: value, GasLimit: 0, GasFeeCap: '0', GasPremium: '0', Method: 0, Params: '' }
  const gas = ok('GasEstimateMessageGas', await client.getGasEstimation(draft))
  return { ...draft, GasLimit: gas.GasLimit, GasFeeCap: gas.GasFeeCap, GasPremium: gas.GasPremium }
}

async function pushAndWait(signed) {
  const lookup = ok('StateWaitMsg', await client.sendSignedMessage(signed))
  if (lookup.Receipt.ExitCode !== 0) {
    throw new Error(`message ${lookup.Message['/']} failed with exit code ${lookup.Receipt.ExitCode}`)
  }
  return lookup
}

const funder = signer.keyRecover(funderKey, true) // testnet: t1 addresses
// A fresh BLS key: 32 random bytes, little-endian, kept below the curve order.
const seed = crypto.randomBytes(32)
seed[31] &= 0x1f
const bls = signer.keyRecoverBLS(seed.toString('base64'), true)

// secp256k1: signed with transactionSignLotus (t-prefixed Lotus JSON)
const nonce = ok('MpoolGetNonce', await client.getNonce(funder.address))
const toBls = await estimate(funder.address, bls.address, '12000000000000000000', nonce)
const signedSecp = signer.transactionSignLotus(toBls, funder.private_base64)
const secpLookup = await pushAndWait(signedSecp)

// BLS: signed with transactionSign, whose JSON writes addresses with the mainnet prefix 'f' (a Lotus
// node reads both prefixes)
const back = await estimate(bls.address, funder.address, '4000000000000000000', ok('MpoolGetNonce', await client.getNonce(bls.address)))
const signedBls = signer.transactionSign(back, bls.private_base64)
const blsLookup = await pushAndWait(signedBls)

console.log(
  JSON.stringify({
    funder: funder.address,
    bls: bls.address,
    secp_signature_type: signedSecp.Signature.Type,
    bls_signature_type: signedBls.Signature.Type,
    bls_from_as_sent: signedBls.Message.From,
    secp: { cid: secpLookup.Message['/'], height: secpLookup.Height, nonce: toBls.Nonce, gas_limit: toBls.GasLimit },
    bls_send: { cid: blsLookup.Message['/'], height: blsLookup.Height, gas_limit: back.GasLimit, gas_fee_cap: back.GasFeeCap },
  })
)
