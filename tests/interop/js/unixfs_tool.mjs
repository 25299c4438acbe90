// UnixFS interop helper for tests/interop/test_unixfs_js.py, built on ipfs-unixfs-importer/-exporter.
//
//   node unixfs_tool.mjs import <file> [<out.car>]  import as `ipfs add --cid-version=1` (raw leaves,
//       256 KiB fixed chunks, balanced layout of 174 links); print {root, blocks: [{cid, size}]} in the
//       order the importer emitted them, and write them in that order as a CAR when asked
//   node unixfs_tool.mjs export <in.car> <out>       read a CAR with @ipld/car, check every block
//       against its CID, export the root's UnixFS file with ipfs-unixfs-exporter into <out>; print
//       {root, type, size, blocks}
//   node unixfs_tool.mjs dagpb <hex>                 decode a DAG-PB block with @ipld/dag-pb; print its
//       links and data and whether re-encoding gives the same bytes
import fs from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarReader } from '@ipld/car/reader'
import { CarWriter } from '@ipld/car/writer'
import * as dagPb from '@ipld/dag-pb'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { exporter } from 'ipfs-unixfs-exporter'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { sha256 } from 'multiformats/hashes/sha2'

function equalBytes (a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

class RecordingBlockstore extends MemoryBlockstore {
  order = []

  put (cid, bytes, options) {
    this.order.push({ cid, bytes })
    return super.put(cid, bytes, options)
  }
}

async function importFile (path, carPath) {
  const store = new RecordingBlockstore()
  const options = {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 })
  }
  let root
  for await (const entry of importer([{ content: fs.createReadStream(path) }], store, options)) {
    root = entry.cid
  }
  if (carPath) {
    const { writer, out } = CarWriter.create([root])
    const done = pipeline(Readable.from(out), fs.createWriteStream(carPath))
    for (const { cid, bytes } of store.order) await writer.put({ cid, bytes })
    await writer.close()
    await done
  }
  return { root: root.toString(), blocks: store.order.map(({ cid, bytes }) => ({ cid: cid.toString(), size: bytes.length })) }
}

async function exportCar (carPath, outPath) {
  const reader = await CarReader.fromIterable(fs.createReadStream(carPath))
  const store = new MemoryBlockstore()
  let blocks = 0
  for await (const { cid, bytes } of reader.blocks()) {
    if (cid.multihash.code !== sha256.code) throw new Error(`unexpected multihash in ${cid}`)
    const digest = await sha256.digest(bytes)
    if (!equalBytes(digest.digest, cid.multihash.digest)) throw new Error(`block ${cid} does not match its hash`)
    await store.put(cid, bytes)
    blocks++
  }
  const [root] = await reader.getRoots()
  const entry = await exporter(root, store)
  const out = fs.createWriteStream(outPath)
  let size = 0
  for await (const chunk of entry.content()) {
    size += chunk.length
    if (!out.write(chunk)) await new Promise(resolve => out.once('drain', resolve))
  }
  await new Promise((resolve, reject) => out.end(err => err ? reject(err) : resolve()))
  return { root: root.toString(), type: entry.type, size, blocks }
}

function decodePb (hex) {
  const bytes = Uint8Array.from(Buffer.from(hex, 'hex'))
  const node = dagPb.decode(bytes)
  return {
    links: node.Links.map(l => ({ hash: l.Hash.toString(), name: l.Name ?? null, tsize: l.Tsize ?? null })),
    data: node.Data ? Buffer.from(node.Data).toString('hex') : null,
    canonical: equalBytes(dagPb.encode(node), bytes)
  }
}

const [command, ...args] = process.argv.slice(2)
let result
if (command === 'import') result = await importFile(args[0], args[1])
else if (command === 'export') result = await exportCar(args[0], args[1])
else if (command === 'dagpb') result = decodePb(args[0])
else throw new Error(`unknown command ${command}`)
process.stdout.write(JSON.stringify(result) + '\n')
