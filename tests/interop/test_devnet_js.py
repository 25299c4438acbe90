"""An independent implementation on a running devnet (issue 10's last test on real processes): a
js-libp2p 2.x peer (tests/interop/js/p2p_peer.mjs: gossipsub 14, noise, yamux, tcp, identify) dials a
`filpy devnet` child process at the address NetAddrsListen gives, speaks hello, receives the blocks the
devnet mines on /fil/blocks/devnet and decodes them with @ipld/dag-cbor as BlockMsg, and publishes on
/fil/msgs/devnet a message signed here with a well-known devnet account's key, which only the JS peer
has; the devnet's miner includes it (StateWaitMsg and StateSearchMsg find it executed, ChainGetMessage
returns it, ChainGetBlockMessages shows it in t01000's block). Both processes are stopped by their PIDs
whatever happens."""

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from chain.mpool.push import message_to_push
from chain.types.address import Address
from chain.types.message import Message, sign_message
from node.devnet import account_key
from rpc.client import RpcCallError
from tests.e2e.devnet_process import DevnetProcess
from tests.interop.js_env import JS_DIR, node_with_packages
from tests.interop.test_p2p_js import Lines

pytestmark = pytest.mark.slow

PEER = JS_DIR / "p2p_peer.mjs"
FIL = 10**18
T = "t"


@pytest.fixture(scope="module")
def node_bin() -> str:
    return node_with_packages("the js-libp2p devnet test")


async def test_js_libp2p_peer_on_a_running_devnet(node_bin: str, tmp_path: Path) -> None:
    devnet = DevnetProcess(tmp_path / "repo", "--block-delay", "1")
    process: trio.Process | None = None
    try:
        url = devnet.wait_ready()
        genesis = devnet.genesis()
        async with devnet.client(url) as api:
            listen = await api.call("NetAddrsListen")
            address = f"{listen['Addrs'][0]}/p2p/{listen['ID']}"

            # A transfer from account 1 to account 2, signed here as any wallet would.
            key = account_key(1)
            sender = Address.of_key(key)
            to = Address.of_key(account_key(2))
            nonce = await api.call("MpoolGetNonce", sender.to_string(T))
            draft = replace(message_to_push(to, sender, value=FIL), nonce=nonce)
            estimated = Message.from_json(
                await api.call("GasEstimateMessageGas", draft.to_json(T), None, None)
            )
            signed = sign_message(estimated, key)

            process = await trio.lowlevel.open_process(
                [node_bin, str(PEER), address, "devnet", genesis, signed.to_bytes().hex()],
                cwd=JS_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert process.stdout is not None
            events = Lines(process.stdout)
            assert (await events.until("connected", timeout=60))["peer"] == listen["ID"]
            hello = await events.until("hello_received")
            assert hello["from"] == listen["ID"] and hello["genesis"] == genesis and hello["fields"] == 4
            block: dict[str, Any] = await events.until("block", timeout=60)
            assert block["tuple"] == 3 and block["headerFields"] == 16 and block["reencoded"] is True
            header = await api.call("ChainGetBlock", {"/": block["cid"]})
            assert header["Height"] == block["height"] and header["Miner"] == "t01000"
            published = await events.until("published", timeout=60)
            assert listen["ID"] in published["recipients"]

            # Only the JS peer ever had the message: it reached the devnet by gossip.
            cid = {"/": str(signed.cid())}
            with trio.fail_after(60):
                # "published" is the JS side's word: the devnet may take a moment to validate the gossip,
                # and StateWaitMsg refuses a message the node has not seen (as Lotus's does).
                while True:
                    try:
                        lookup = await api.call("StateWaitMsg", cid, 1, -1, True)
                        break
                    except RpcCallError as exc:
                        if "not found" not in str(exc):
                            raise
                        await trio.sleep(0.2)
            assert lookup["Receipt"]["ExitCode"] == 0
            found = await api.call("StateSearchMsg", None, cid, None, True)
            assert (found["Height"], found["TipSet"]) == (lookup["Height"], lookup["TipSet"])
            assert found["Receipt"]["ExitCode"] == 0
            on_chain = await api.call("ChainGetMessage", cid)
            assert Message.from_json(on_chain) == signed.message
            # included by the devnet's miner: in a block of the tipset its execution is recorded after
            executed = await api.call("ChainGetTipSet", lookup["TipSet"])
            parent = await api.call("ChainGetTipSet", executed["Blocks"][0]["Parents"])
            including = []
            for header, block_cid in zip(parent["Blocks"], parent["Cids"], strict=True):
                messages = await api.call("ChainGetBlockMessages", block_cid)
                if cid in messages["Cids"]:
                    including.append(header["Miner"])
            assert including == ["t01000"]
            assert int(await api.call("WalletBalance", to.to_string(T))) >= FIL
            agent = await api.call("NetAgentVersion", (await events.until("ready", timeout=1))["peer"])
            assert agent.startswith("js-libp2p/")
    finally:
        if process is not None:
            process.kill()  # by its PID
            with trio.move_on_after(5):
                await process.wait()
        devnet.kill()
