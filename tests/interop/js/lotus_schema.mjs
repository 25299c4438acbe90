// @filecoin-shipyard/lotus-client-schema's full-node API (Lotus 1.15, generated from its Go interfaces):
// prints {"<method>": <subscription flag>} for every method it lists. The package holds names and
// subscription flags only, no param counts.
//
//   node lotus_schema.mjs
import * as schema from '@filecoin-shipyard/lotus-client-schema'

const methods = schema.mainnet.fullNode.methods
console.log(JSON.stringify(Object.fromEntries(Object.entries(methods).map(([name, m]) => [name, m.subscription === true]))))
