// An independent Filecoin-speaking libp2p peer for tests/interop/test_p2p_js.py (js-libp2p 2.x).
//
//   node p2p_peer.mjs <filpy multiaddr with /p2p/...> <network name> <genesis CID> <signed message hex>
//
// It dials the filpy host, subscribes to /fil/blocks/<net> and /fil/msgs/<net> (message ID =
// blake2b-256 of the data, as Lotus), answers hello on /fil/hello/1.0.0, says hello itself, and once
// the filpy host is subscribed publishes the given SignedMessage bytes on /fil/msgs/<net>. Every event
// is one JSON line on stdout; the test stops the process by its PID.

// js-libp2p 2.x uses Promise.withResolvers, which Node 20 lacks.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { gossipsub } = await import('@chainsafe/libp2p-gossipsub')
const { multiaddr } = await import('@multiformats/multiaddr')
const dagCbor = await import('@ipld/dag-cbor')
const { CID } = await import('multiformats/cid')
const { blake2b256 } = await import('@multiformats/blake2/blake2b')

const [filpyAddr, network, genesisText, messageHex] = process.argv.slice(2)
const blocksTopic = `/fil/blocks/${network}`
const msgsTopic = `/fil/msgs/${network}`
const genesis = CID.parse(genesisText)

const say = (event) => process.stdout.write(JSON.stringify(event, (_, v) => typeof v === 'bigint' ? v.toString() : v) + '\n')
const hex = (bytes) => Buffer.from(bytes).toString('hex')

async function readAll (source) {
  const parts = []
  for await (const chunk of source) parts.push(chunk.subarray())
  return Buffer.concat(parts)
}

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    pubsub: gossipsub({
      emitSelf: false,
      allowPublishToZeroTopicPeers: true,
      msgIdFn: (msg) => blake2b256.digest(msg.data).digest
    })
  }
})

// Hello from filpy: read it, answer [TArrival, TSent] in nanoseconds, report what it said.
await node.handle('/fil/hello/1.0.0', async ({ stream, connection }) => {
  const data = await readAll(stream.source)
  const arrival = BigInt(Date.now()) * 1000000n
  const hello = dagCbor.decode(data)
  say({
    event: 'hello_received',
    from: connection.remotePeer.toString(),
    fields: hello.length,
    head: hello[0].map(String),
    height: hello[1],
    weight: hex(hello[2]),
    genesis: String(hello[3])
  })
  await stream.sink([dagCbor.encode([arrival, BigInt(Date.now()) * 1000000n])])
})

const pubsub = node.services.pubsub
pubsub.addEventListener('message', (evt) => {
  const { topic, data } = evt.detail
  if (topic === blocksTopic) {
    const block = dagCbor.decode(data)
    const header = block[0]
    say({
      event: 'block',
      tuple: block.length,
      headerFields: header.length,
      miner: hex(header[0]),
      height: header[7],
      parents: header[5].map(String),
      messagesRoot: String(header[10]),
      bls: block[1].map(String),
      secpk: block[2].map(String),
      cid: String(CID.create(1, dagCbor.code, blake2b256.digest(dagCbor.encode(header)))),
      reencoded: hex(dagCbor.encode(block)) === hex(data)
    })
  } else {
    say({ event: 'message', topic, data: hex(data) })
  }
})
pubsub.subscribe(blocksTopic)
pubsub.subscribe(msgsTopic)

say({ event: 'ready', peer: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

const connection = await node.dial(multiaddr(filpyAddr))
const filpy = connection.remotePeer
say({ event: 'connected', peer: filpy.toString() })

// Say hello: genesis as the head, height 0, weight 0 (empty big-integer bytes).
const helloStream = await node.dialProtocol(filpy, '/fil/hello/1.0.0')
await helloStream.sink([dagCbor.encode([[genesis], 0, new Uint8Array(), genesis])])
const latency = dagCbor.decode(await readAll(helloStream.source))
say({ event: 'latency', fields: latency.length, arrival: latency[0], sent: latency[1] })

// What identify told us about the filpy host.
for (let i = 0; i < 100; i++) {
  const peer = await node.peerStore.get(filpy).catch(() => null)
  const agent = peer?.metadata.get('AgentVersion')
  if (agent) {
    say({ event: 'identified', agent: new TextDecoder().decode(agent), protocols: peer.protocols })
    break
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
}

// Publish the signed message once filpy has subscribed to the messages topic.
for (let i = 0; i < 200; i++) {
  if (pubsub.getSubscribers(msgsTopic).some((p) => p.equals(filpy))) break
  await new Promise((resolve) => setTimeout(resolve, 50))
}
const published = await pubsub.publish(msgsTopic, Buffer.from(messageHex, 'hex'))
say({ event: 'published', recipients: published.recipients.map(String) })

// Run until the test stops us.
setInterval(() => {}, 1 << 30)
