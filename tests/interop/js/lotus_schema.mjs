// @filecoin-shipyard/lotus-client-schema's full-node and storage-miner APIs (Lotus 1.15, generated from
// its Go interfaces): prints {"fullNode": {"<method>": <subscription flag>}, "storageMiner": {...}}.
// The package holds names and subscription flags only, no param counts.
//
//   node lotus_schema.mjs
import * as schema from '@filecoin-shipyard/lotus-client-schema'

const flags = (api) =>
  Object.fromEntries(Object.entries(api.methods).map(([name, m]) => [name, m.subscription === true]))
console.log(JSON.stringify({ fullNode: flags(schema.mainnet.fullNode), storageMiner: flags(schema.mainnet.storageMiner) }))
