// CAR interop helper for tests/interop/test_car_js.py, built on @ipld/car.
//
//   node car_tool.mjs read <file.car>   verify a CAR and print {version, roots, blocks} as JSON
//   node car_tool.mjs write <file.car>  write a sample DAG with CarWriter and print what it wrote
//
// Block entries: {cid, codec, hash, size, links, canonical, hex?}. links are the CIDs inside a
// dag-cbor block in encoding order; canonical says whether @ipld/dag-cbor re-encodes the decoded value
// to the same bytes.
import fs from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarReader } from '@ipld/car/reader'
import { CarWriter } from '@ipld/car/writer'
import * as dagCbor from '@ipld/dag-cbor'
import { blake2b256 } from '@multiformats/blake2/blake2b'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'

const hashers = new Map([[sha256.code, sha256], [blake2b256.code, blake2b256], [identity.code, identity]])

function equalBytes (a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function hex (bytes) {
  return Buffer.from(bytes).toString('hex')
}

function linksIn (value, out = []) {
  const cid = CID.asCID(value)
  if (cid) {
    out.push(cid)
  } else if (Array.isArray(value)) {
    for (const item of value) linksIn(item, out)
  } else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    for (const item of Object.values(value)) linksIn(item, out)
  }
  return out
}

async function describe (cid, bytes, withHex) {
  const hasher = hashers.get(cid.multihash.code)
  if (!hasher) throw new Error(`no hasher for multihash 0x${cid.multihash.code.toString(16)} (${cid})`)
  const digest = await hasher.digest(bytes)
  if (!equalBytes(digest.digest, cid.multihash.digest)) throw new Error(`block ${cid} does not match its hash`)
  const entry = { cid: cid.toString(), codec: cid.code, hash: cid.multihash.code, size: bytes.length, links: [] }
  if (cid.code === dagCbor.code) {
    const value = dagCbor.decode(bytes)
    entry.links = linksIn(value).map(String)
    entry.canonical = equalBytes(dagCbor.encode(value), bytes)
  }
  if (withHex) entry.hex = hex(bytes)
  return entry
}

async function read (path) {
  const reader = await CarReader.fromIterable(fs.createReadStream(path))
  const blocks = []
  for await (const { cid, bytes } of reader.blocks()) {
    blocks.push(await describe(cid, bytes, false))
  }
  const roots = (await reader.getRoots()).map(String)
  return { version: reader.version, roots, blocks }
}

async function block (value, codec = dagCbor, hasher = blake2b256) {
  const bytes = codec.encode(value)
  return { cid: CID.create(1, codec.code, await hasher.digest(bytes)), bytes }
}

// A DAG covering what a chain snapshot holds: blake2b dag-cbor nodes, raw leaves, a sha2-256 node,
// an identity-hashed inline block, shared children, 64-bit extremes, floats, bytes and unicode text.
async function sampleDag () {
  const leafA = await block(new TextEncoder().encode('leaf a'), raw)
  const leafB = await block(new Uint8Array(300).fill(7), raw)
  const inline = await block(new TextEncoder().encode('inline'), raw, identity)
  const shaNode = await block({ sha: true, leaf: leafA.cid }, dagCbor, sha256)
  const shared = await block([leafA.cid, { deep: [leafB.cid, null] }])
  const big = await block({
    max: 18446744073709551615n,
    min: -18446744073709551616n,
    neg: -1,
    half: 1.5,
    tenth: -0.1,
    text: 'héllo ✓',
    bytes: new Uint8Array([0, 1, 2, 255]),
    bools: [true, false],
    empty: {},
    shared: shared.cid
  })
  const root = await block({
    zz: inline.cid,
    a: [shared.cid, big.cid],
    bb: { sha: shaNode.cid, again: shared.cid },
    height: 12345
  })
  return { root: root.cid, blocks: [leafA, leafB, inline, shaNode, shared, big, root] }
}

// Depth-first pre-order from the root, links in encoding order, each block once: the order filpy's
// export uses, so that both sides should produce the same bytes.
function dfsOrder (root, blocks) {
  const byCid = new Map(blocks.map((b) => [b.cid.toString(), b]))
  const seen = new Set()
  const order = []
  const visit = (cid) => {
    const key = cid.toString()
    if (seen.has(key)) return
    seen.add(key)
    const b = byCid.get(key)
    order.push(b)
    if (cid.code === dagCbor.code) for (const link of linksIn(dagCbor.decode(b.bytes))) visit(link)
  }
  visit(root)
  return order
}

async function write (path) {
  const { root, blocks } = await sampleDag()
  const order = dfsOrder(root, blocks)
  const { writer, out } = CarWriter.create([root])
  const done = pipeline(Readable.from(out), fs.createWriteStream(path))
  for (const b of order) await writer.put(b)
  await writer.close()
  await done
  const described = []
  for (const b of order) described.push(await describe(b.cid, b.bytes, true))
  return { roots: [root.toString()], blocks: described }
}

const [command, path] = process.argv.slice(2)
const commands = { read, write }
if (!commands[command] || !path) {
  console.error('usage: node car_tool.mjs read|write <file.car>')
  process.exit(2)
}
console.log(JSON.stringify(await commands[command](path)))
