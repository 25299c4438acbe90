"""The issue's bad input for the chain, pool and wallet methods, sent to a node with mined blocks: each
is a clear JSON-RPC error, the pool is left as it was, and the server goes on serving.

Invalid JSON, wrong param counts and types, a message with a bad signature, a nonce gap beyond the
pool's limit, too little balance, an oversized message (and one at the pool's limit, which the server's
body limit must let through), and a read token calling sign methods."""

from dataclasses import replace

import orjson
import pytest

from chain.types.address import Address
from chain.types.message import SignedMessage, sign_message
from rpc.client import HttpClient, RpcCallError
from rpc.errors import GENERIC_ERROR, INVALID_PARAMS, PARSE_ERROR
from rpc.server import DEFAULT_MAX_BODY
from tests.consensus.devchain import ALICE, CAROL
from tests.rpc.chain_node import Served, transfer
from tests.rpc.conftest import chain_token

T = "t"
ALICE_ADDRESS = Address.of_key(ALICE)
CAROL_ADDRESS = Address.of_key(CAROL)
BIG_GAS_LIMIT = 3_000_000_000  # covers storing a message of about 1 MiB (OnChainMessage gas)


async def still_serving(api: HttpClient, served: Served) -> None:
    assert await api.call("ChainHead") == served.node.chain.head().to_json(T)


async def refused(api: HttpClient, code: int, match: str, method: str, *params: object) -> None:
    with pytest.raises(RpcCallError, match=match) as err:
        await api.call(method, *params)
    assert err.value.code == code


async def test_unreadable_requests_and_params(served: Served) -> None:
    async with HttpClient(served.url(), token=chain_token("admin")) as api:
        status, answer = await api.post(b'{"jsonrpc":"2.0","id":1,"method":"Filecoin.MpoolPush","params":[{')
        assert status == 500 and answer["id"] is None and answer["error"]["code"] == PARSE_ERROR
        await still_serving(api, served)
        signed = transfer(ALICE, 2, CAROL_ADDRESS).to_json(T)
        cases: list[tuple[str, str, tuple[object, ...]]] = [
            ("MpoolPush", r"wrong param count \(method 'Filecoin.MpoolPush'\): 0 != 1", ()),
            ("MpoolPush", r"wrong param count \(method 'Filecoin.MpoolPush'\): 2 != 1", (signed, signed)),
            ("ChainGetTipSetByHeight", r"wrong param count .*: 1 != 2", (5,)),
            (
                "ChainGetTipSetByHeight",
                r"decoding param 1 of 'Filecoin.ChainGetTipSetByHeight' \(Int64\)",
                ("ten", None),
            ),
            ("ChainGetBlock", r"decoding param 1 of 'Filecoin.ChainGetBlock' \(CID\)", ("bafy",)),
            (
                "MpoolPush",
                r"decoding param 1 of 'Filecoin.MpoolPush' \(SignedMessage\): .*missing field 'Signature'",
                ({"Message": signed["Message"]},),
            ),
            (
                "MpoolPush",
                r"\(SignedMessage\): message.Message.Value: expected a decimal string, got int",
                ({**signed, "Message": {**signed["Message"], "Value": 12}},),
            ),
            ("WalletBalance", r"decoding param 1 of 'Filecoin.WalletBalance' \(Address\)", (123,)),
            ("MpoolSelect", r"decoding param 2 of 'Filecoin.MpoolSelect' \(float64\)", (None, True)),
            (
                "MpoolPushMessage",
                r"decoding param 2 of 'Filecoin.MpoolPushMessage' \(MessageSendSpec \| null\)",
                (signed["Message"], {"MaxFee": 5}),
            ),
            ("MpoolGetNonce", r"params of 'Filecoin.MpoolGetNonce' must be a JSON array", ...),
        ]
        for method, match, params in cases:
            if params is ...:
                body = {"jsonrpc": "2.0", "id": 7, "method": f"Filecoin.{method}", "params": {"a": 1}}
                status, answer = await api.post(orjson.dumps(body))
                assert answer["error"]["code"] == INVALID_PARAMS
                assert "must be a JSON array" in answer["error"]["message"]
                continue
            await refused(api, INVALID_PARAMS, match, method, *params)
        await still_serving(api, served)
    assert served.node.mpool.size == 0


async def test_refused_messages_leave_the_pool_unchanged(served: Served) -> None:
    node = served.node
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    balance = node.mpool.state_actor(ALICE_ADDRESS)
    assert balance is not None
    good = transfer(ALICE, nonce, CAROL_ADDRESS)
    forged = sign_message(transfer(ALICE, nonce, CAROL_ADDRESS, 99).message, CAROL)
    gap = transfer(ALICE, nonce + 1 + node.mpool.config.max_nonce_gap + 1, CAROL_ADDRESS)
    rich = transfer(ALICE, nonce, CAROL_ADDRESS, balance.balance + 1)
    async with HttpClient(served.url(), token=chain_token("write")) as api:
        await refused(api, GENERIC_ERROR, "signature verification failed", "MpoolPush", forged.to_json(T))
        assert node.mpool.size == 0
        await refused(api, GENERIC_ERROR, "not enough funds", "MpoolPush", rich.to_json(T))
        assert node.mpool.size == 0
        assert await api.call("MpoolPush", good.to_json(T)) == {"/": str(good.cid())}
        await refused(
            api, GENERIC_ERROR, r"nonce has too big a gap.*unfulfilled nonce gap", "MpoolPush", gap.to_json(T)
        )
        await refused(
            api,
            GENERIC_ERROR,
            "message nonce too low",
            "MpoolPush",
            transfer(ALICE, 0, CAROL_ADDRESS).to_json(T),
        )
        await refused(api, GENERIC_ERROR, "already in mpool", "MpoolPush", good.to_json(T))
        # a recipient no Ethereum account can own (an f4 address outside the EAM's namespace)
        black_hole = replace(good.message, to=Address.new_delegated(32, b"\x01" * 20), nonce=nonce + 1)
        await refused(
            api,
            GENERIC_ERROR,
            "is a delegated address but not a valid Eth Address",
            "MpoolPush",
            sign_message(black_hole, ALICE).to_json(T),
        )
        assert node.mpool.pending()[0] == [good]
        await still_serving(api, served)


def sized_transfer(served: Served, nonce: int, size: int) -> SignedMessage:
    """A signed transfer of exactly `size` bytes, made so by its params."""
    base = transfer(ALICE, nonce, CAROL_ADDRESS, gas_limit=BIG_GAS_LIMIT)
    params_len = size - len(base.to_bytes())
    for _ in range(4):  # the params' CBOR header grows with their length
        signed = sign_message(replace(base.message, params=bytes(params_len)), ALICE)
        params_len += size - len(signed.to_bytes())
    assert len(signed.to_bytes()) == size
    return signed


async def test_oversized_message(served: Served) -> None:
    node = served.node
    limit = node.policy.max_message_size
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    at_limit = sized_transfer(served, nonce, limit)
    over = sized_transfer(served, nonce + 1, limit + 1)
    body = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "Filecoin.MpoolPush", "params": [over.to_json(T)]}
    )
    assert len(body) < DEFAULT_MAX_BODY  # a message the pool may hold always fits a request
    async with HttpClient(served.url(), token=chain_token("write")) as api:
        await refused(
            api,
            GENERIC_ERROR,
            rf"message too large \({limit + 1}B, limit {limit}B\)",
            "MpoolPush",
            over.to_json(T),
        )
        assert node.mpool.size == 0
        assert await api.call("MpoolPush", at_limit.to_json(T)) == {"/": str(at_limit.cid())}
        assert node.mpool.pending()[0] == [at_limit]
        await still_serving(api, served)


async def test_a_read_token_cannot_sign(served: Served) -> None:
    unsigned = transfer(ALICE, 0, CAROL_ADDRESS).message.to_json(T)
    async with HttpClient(served.url(), token=chain_token("read")) as api:
        for method, params in (
            ("WalletSign", (ALICE_ADDRESS.to_string(T), "aGk=")),
            ("WalletSignMessage", (ALICE_ADDRESS.to_string(T), unsigned)),
            ("MpoolPushMessage", (unsigned, None)),
        ):
            await refused(
                api,
                GENERIC_ERROR,
                rf"missing permission to invoke '{method}' \(need 'sign'\)",
                method,
                *params,
            )
        await still_serving(api, served)
    assert served.node.mpool.size == 0
