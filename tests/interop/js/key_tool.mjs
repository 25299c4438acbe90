// Reads libp2p private keys as go-libp2p marshals them (protobuf {Type, Data}), for
// test_js_libp2p_reads_our_host_keys in tests/interop/test_p2p_js.py:
//
//   node key_tool.mjs <hex of a marshalled private key> ...
//
// prints one JSON line per key: its type and the peer ID js-libp2p derives from it.
const { privateKeyFromProtobuf } = await import('@libp2p/crypto/keys')
const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')

for (const hex of process.argv.slice(2)) {
  const key = privateKeyFromProtobuf(Buffer.from(hex, 'hex'))
  process.stdout.write(JSON.stringify({ type: key.type, peer: peerIdFromPrivateKey(key).toString() }) + '\n')
}
