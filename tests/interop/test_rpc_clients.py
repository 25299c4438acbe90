"""Real JSON-RPC clients from npm against a running `filpy devnet` (a child process on a temp repo, RPC on
a free port of 127.0.0.1, `--block-delay 1`, stopped by its PID): iso-filecoin's RPC and Wallet,
@zondax/filecoin-signing-tools' signer and RPC client, a raw /rpc/v0 client in the shapes of filecoin.js
and Glif's confirmer, and a WebSocket client (`ws`) on ChainNotify and MpoolSub. Each client runs as a
script of tests/interop/js (pinned in its package-lock.json) and prints what it saw; the tests check
that against the chain, read back over RPC with filpy's own client.

Each client sends from its own devnet account, so that their nonces do not interleave.
"""

import base64
import json
from collections.abc import Iterator
from typing import Any, Final

import pytest
import trio

from chain.crypto.keys import KeyType
from chain.types.address import Address
from node.devnet import account_key
from node.genesis_template import FIL
from rpc.client import HttpClient
from tests.e2e.devnet_process import DevnetProcess
from tests.interop.js_env import JS_DIR, node_with_packages

CLIENT_TIMEOUT: Final = 120.0  # one client script's whole flow, a few blocks at 1 s each
ISO_FUNDER, ZONDAX_FUNDER, V0_SENDER, V0_RECIPIENT = 1, 2, 3, 7
DEVNET_TOKEN_FILE: Final = "token"


class Devnet:
    def __init__(self, proc: DevnetProcess, url: str) -> None:
        self.proc, self.url = proc, url
        self.token = (proc.repo / DEVNET_TOKEN_FILE).read_text().strip()

    def endpoint(self, scheme: str, api: str) -> str:
        return f"{scheme}://{self.url.split('/')[2]}/rpc/{api}"

    def client(self) -> HttpClient:
        return self.proc.client(self.url)


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_packages("the JSON-RPC client interop tests")


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory, node: str) -> Iterator[Devnet]:
    proc = DevnetProcess(tmp_path_factory.mktemp("rpc-clients") / "repo", "--block-delay", "1")
    try:
        yield Devnet(proc, proc.wait_ready())
    finally:
        proc.kill()


async def run_client(node: str, script: str, *args: str) -> dict[str, Any]:
    """Run tests/interop/js/<script> and return the JSON object it prints."""
    with trio.fail_after(CLIENT_TIMEOUT):
        done = await trio.run_process(
            [node, str(JS_DIR / script), *args],
            cwd=JS_DIR,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, f"{script} failed:\n{done.stderr.decode(errors='replace')}"
    out: dict[str, Any] = json.loads(done.stdout.decode())
    return out


def account(index: int) -> str:
    return Address.of_key(account_key(index)).to_string("t")


async def including_block_messages(api: HttpClient, cid: str) -> dict[str, Any]:
    """ChainGetBlockMessages of the block that included the message: the parents of the tipset its
    lookup names (the tipset where it executed)."""
    lookup = await api.call("StateSearchMsg", [], {"/": cid}, -1, True)
    executed = await api.call("ChainGetTipSet", lookup["TipSet"])
    for parent in executed["Blocks"][0]["Parents"]:
        messages: dict[str, Any] = await api.call("ChainGetBlockMessages", parent)
        if any(c["/"] == cid for c in messages["Cids"]):
            return messages
    raise AssertionError(f"no parent block of {lookup['TipSet']} includes {cid}")


async def fee_bound(api: HttpClient, cid: str) -> int:
    """The most the message could cost its sender in gas: GasLimit x GasFeeCap."""
    msg = await api.call("ChainGetMessage", {"/": cid})
    return int(msg["GasLimit"]) * int(msg["GasFeeCap"])


async def test_iso_filecoin_funds_fresh_keys_signs_locally_and_sees_balances(
    devnet: Devnet, node: str
) -> None:
    funder = account_key(ISO_FUNDER)
    out = await run_client(
        node, "iso_filecoin_flow.mjs", devnet.endpoint("http", "v1"), devnet.token, funder.to_lotus_export()
    )
    assert out["version"]["APIVersion"] == 131840 and out["version"]["BlockDelay"] == 1
    assert out["network"] == "devnet"
    assert out["funder"] == account(ISO_FUNDER)  # iso-filecoin read the `lotus wallet export` hex
    assert out["secp"].startswith("t1") and out["bls"].startswith("t3")
    # prepare(): the second push's nonce counted the first, still pending; gas came from the estimate
    assert [f["nonce"] for f in out["funding"]] == [0, 1]
    assert all(f["gas_limit"] > 0 for f in out["funding"])
    assert out["secp_funded"] == str(20 * FIL) and out["bls_funded"] == str(30 * FIL)
    assert out["secp_id"].startswith("t0") and out["bls_id_latest"].startswith("t0")
    assert out["bls_key"] == out["bls"] and out["secp_robust"] == out["secp"]

    async with devnet.client() as api:
        # Each fresh key paid its transfer and at most its gas; the recipients got the values exactly.
        secp_fee = 15 * FIL - int(out["secp_final"])
        assert 0 < secp_fee <= await fee_bound(api, out["secp_send"]["cid"])
        bls_fee = 28 * FIL - int(out["bls_final"])
        assert 0 < bls_fee <= await fee_bound(api, out["bls_send"]["cid"])
        for address, balance in ((out["secp"], out["secp_final"]), (out["bls"], out["bls_final"])):
            actor = await api.call("StateGetActor", address, [])
            assert actor["Balance"] == balance
        # The BLS-signed message went into a block as a BLS message, the secp256k1 one as a secp one.
        bls_block = await including_block_messages(api, out["bls_send"]["cid"])
        assert [m["CID"]["/"] for m in bls_block["BlsMessages"]] == [out["bls_send"]["cid"]]
        secp_block = await including_block_messages(api, out["secp_send"]["cid"])
        assert [m["Message"]["From"] for m in secp_block["SecpkMessages"]] == [out["secp"]]
        assert secp_block["SecpkMessages"][0]["Signature"]["Type"] == 1


async def test_zondax_signs_secp256k1_and_bls_messages_the_node_accepts(devnet: Devnet, node: str) -> None:
    key = account_key(ZONDAX_FUNDER)
    assert key.type is KeyType.SECP256K1
    private = base64.b64encode(key.data).decode()
    out = await run_client(node, "zondax_flow.mjs", devnet.endpoint("http", "v1"), devnet.token, private)
    assert out["funder"] == account(ZONDAX_FUNDER) and out["bls"].startswith("t3")
    assert out["secp_signature_type"] == 1 and out["bls_signature_type"] == 2
    assert out["bls_from_as_sent"] == "f" + out["bls"][1:]  # Zondax wrote the mainnet prefix; accepted
    async with devnet.client() as api:
        assert await api.call("WalletBalance", out["bls"]) != "0"
        bls_fee = 8 * FIL - int(await api.call("WalletBalance", out["bls"]))
        assert 0 < bls_fee <= int(out["bls_send"]["gas_limit"]) * int(out["bls_send"]["gas_fee_cap"])
        block = await including_block_messages(api, out["bls_send"]["cid"])
        assert [m["From"] for m in block["BlsMessages"]] == [out["bls"]]
        lookup = await api.call("StateSearchMsg", [], {"/": out["secp"]["cid"]}, -1, True)
        assert lookup["Receipt"]["ExitCode"] == 0 and lookup["Height"] == out["secp"]["height"]


async def test_raw_v0_client_uses_v0_shapes(devnet: Devnet, node: str) -> None:
    sender, recipient = account(V0_SENDER), account(V0_RECIPIENT)
    async with devnet.client() as api:
        before = int(await api.call("WalletBalance", recipient))
    url = devnet.endpoint("http", "v0")
    out = await run_client(node, "v0_raw_flow.mjs", url, devnet.token, sender, recipient)
    assert out["version"]["APIVersion"] == 66816  # 1.5.0 on /rpc/v0
    assert out["signed_from"] == sender and out["signature_type"] == 1
    # Glif's confirmer saw null while the message was pending, then the lookup.
    assert out["searches"][-1] == "found" and out["searches"][0] == "null"
    lookup = out["found"]
    assert lookup["Message"] == {"/": out["cid"]} and lookup["Receipt"]["ExitCode"] == 0
    assert out["waited"] == lookup == out["limited"] == out["searched_limited"]
    assert out["receipt"] == lookup["Receipt"]
    assert out["message"]["From"] == sender and out["message"]["Value"] == str(3 * FIL)
    assert out["v1_shape_error"] == {
        "code": -32602,
        "message": "wrong param count (method 'Filecoin.StateWaitMsg'): 4 != 2",
    }
    assert int(out["balance"]) == before + 3 * FIL
    async with devnet.client() as api:
        # the same lookup on /rpc/v1's shapes
        assert await api.call("StateSearchMsg", [], {"/": out["cid"]}, -1, True) == lookup
        executed = await api.call("ChainGetTipSet", lookup["TipSet"])
        beacon = executed["Blocks"][0]["BeaconEntries"]
        assert out["beacon_round"] >= beacon[-1]["Round"]


async def test_websocket_client_gets_chain_notify_current_then_apply_and_cancels(
    devnet: Devnet, node: str
) -> None:
    recipient = Address.of_key(account_key(9)).to_string("t")
    out = await run_client(node, "ws_notify_flow.mjs", devnet.endpoint("ws", "v1"), devnet.token, recipient)
    [current] = out["first"]
    assert current["type"] == "current" and current["cids"] >= 1
    heights = [a["height"] for a in out["applies"]]
    assert {a["type"] for a in out["applies"]} == {"apply"}
    assert heights == sorted(heights) and heights[0] > current["height"]
    assert out["mpool_channel"] != out["notify_channel"]
    update = out["mpool_update"]
    assert update == {"type": 0, "to": recipient, "signature_type": 1, "cid": out["faucet_cid"]}
    assert out["values_after_close"] == 0 and out["head_after_close"] > heights[-1]
