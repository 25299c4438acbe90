"""An independent libp2p implementation understands our host: js-libp2p 2.x with gossipsub 14, noise,
yamux, tcp and identify (tests/interop/js/p2p_peer.mjs) dials a filpy node, receives a block on
/fil/blocks/<network> and decodes it with @ipld/dag-cbor as a BlockMsg, speaks hello both ways, and
publishes a signed message on /fil/msgs/<network> that our message sink receives.

The npm packages are pinned in tests/interop/js (package-lock.json) and installed with `npm ci` on
first use; the node process is stopped by its PID whatever happens.
"""

import json
import subprocess
from typing import Any

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair as new_ed25519
from libp2p.crypto.secp256k1 import create_new_key_pair as new_secp256k1

from chain.types.message import SignedMessage
from node.p2p.chainview import IncludedMessages
from node.p2p.hello import HelloMessage
from node.p2p.identity import marshal_private_key, peer_id_of
from node.p2p.protocols import PeerID, block_topic, message_topic
from tests.interop.js_env import JS_DIR, node_with_packages
from tests.p2p.chain_fixtures import BLS, block_msg, build_chain, header, message, signed
from tests.p2p.harness import make_node, running, wait_until

PEER = JS_DIR / "p2p_peer.mjs"


@pytest.fixture(scope="module")
def node_bin() -> str:
    return node_with_packages("the js-libp2p interop test")


class Lines:
    """JSON events from the js peer's stdout, read as they come."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.events: list[dict[str, Any]] = []

    async def until(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        with trio.fail_after(timeout):
            while True:
                for event in self.events:
                    if event["event"] == name:
                        self.events.remove(event)
                        return event
                chunk = await self.stream.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"the js peer exited before {name!r}")
                self.buffer += chunk
                *lines, self.buffer = self.buffer.split(b"\n")
                self.events.extend(json.loads(line) for line in lines if line.strip())


async def test_js_libp2p_peer_speaks_gossip_and_hello_with_us(node_bin: str) -> None:
    chain, tipsets = build_chain(2)
    ours, got = make_node(chain)
    to_publish: SignedMessage = signed(77)
    messages = IncludedMessages((message(5, key=BLS),), (signed(5), signed(6)))
    block = block_msg(header(height=3, parents=tipsets[2].cids, messages=messages), messages)
    assert block.header is not None

    async with running(ours):
        address = f"{ours.host.addrs_listen().addrs[0]}/p2p/{ours.host.id()}"
        args = [node_bin, str(PEER), address, "devnet", str(chain.genesis_cid()), to_publish.to_bytes().hex()]
        process = await trio.lowlevel.open_process(
            args, cwd=JS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            events = Lines(process.stdout)
            js = PeerID.from_base58((await events.until("ready"))["peer"])
            assert (await events.until("connected"))["peer"] == ours.host.id()

            # Hello both ways: ours reached them with our head; theirs reached our sink; they got latency.
            theirs = await events.until("hello_received")
            assert theirs["from"] == ours.host.id() and theirs["fields"] == 4
            assert theirs["head"] == [str(c) for c in tipsets[2].cids]
            assert (theirs["height"], theirs["weight"], theirs["genesis"]) == (
                2,
                "0007d0",
                str(chain.genesis_cid()),
            )
            latency = await events.until("latency")
            assert latency["fields"] == 2 and int(latency["sent"]) >= int(latency["arrival"]) > 0
            await wait_until(lambda: any(peer == js for peer, _ in got.hellos), what="their hello")
            assert got.hellos[0][1] == HelloMessage((chain.genesis_cid(),), 0, 0, chain.genesis_cid())
            await wait_until(lambda: js in ours.hello.latency, what="their answer to our hello")

            identified = await events.until("identified")
            assert identified["agent"] == ours.host.agent
            assert {"/fil/hello/1.0.0", "/fil/chain/xchg/0.0.1", "/meshsub/1.1.0"} <= set(
                identified["protocols"]
            )
            await wait_until(
                lambda: ours.host.agent_version(js).startswith("js-libp2p/"), what="identify of js"
            )

            # A block from us, decoded by @ipld/dag-cbor as [Header (16 fields), [cid], [cid]].
            await wait_until(
                lambda: js in ours.gossip.topic_peers(block_topic("devnet")), what="their subscription"
            )
            await ours.gossip.publish_block(block)
            seen = await events.until("block")
            assert (seen["tuple"], seen["headerFields"], seen["height"]) == (3, 16, 3)
            assert seen["cid"] == str(block.header.cid()) and seen["reencoded"] is True
            assert seen["bls"] == [str(c) for c in block.bls_messages]
            assert seen["secpk"] == [str(c) for c in block.secpk_messages]
            assert seen["parents"] == [str(c) for c in tipsets[2].cids]
            assert seen["messagesRoot"] == str(block.header.messages)

            # Their signed message reached our message sink, checked and unchanged.
            assert js in ours.gossip.topic_peers(message_topic("devnet"))
            published = await events.until("published")
            assert ours.host.id() in published["recipients"]
            await wait_until(lambda: len(got.messages) == 1, what="their message in our sink")
            assert got.messages[0] == (to_publish, js)
            assert ours.gossip.score(js) >= 0
        finally:
            process.kill()  # by its PID, whatever happened above
            with trio.move_on_after(5):
                await process.wait()


def test_js_libp2p_reads_our_host_keys(node_bin: str) -> None:
    """The host key as we keep it (go-libp2p's marshalling: Ed25519 data = seed || public key) is read
    by @libp2p/crypto as the same identity."""
    pairs = [new_ed25519(), new_secp256k1()]
    done = subprocess.run(
        [node_bin, str(JS_DIR / "key_tool.mjs"), *(marshal_private_key(p.private_key).hex() for p in pairs)],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = [json.loads(line) for line in done.stdout.splitlines()]
    assert [s["type"] for s in seen] == ["Ed25519", "secp256k1"]
    assert [s["peer"] for s in seen] == [peer_id_of(p).to_base58() for p in pairs]
