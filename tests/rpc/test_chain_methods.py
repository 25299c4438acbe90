"""The Chain* methods over HTTP (ChainNotify and ChainExport over WebSocket) against a node with mined
blocks: each result compared with what the node holds, in Lotus's JSON shapes."""

import base64
import io
from typing import Any

import pytest
import trio

from chain.consensus.weight import weight_of
from chain.crypto.randomness import DomainSeparationTag
from chain.encoding import dagcbor
from chain.encoding.cid import CID, RAW
from chain.store.car import CarReader
from chain.types.message import SignedMessage
from chain.types.tipset import TipSet
from rpc.client import HttpClient, RpcCallError, WsClient
from rpc.errors import GENERIC_ERROR, METHOD_NOT_FOUND
from rpc.methods import chain as chain_methods
from rpc.registry import Method
from tests.rpc.chain_node import Served, mine

T = "t"  # the devnet's address prefix
PIECE = 4096


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tsk(ts: TipSet) -> list[dict[str, str]]:
    return ts.key.to_json(T)


async def test_head_genesis_blocks_and_tipsets(served: Served) -> None:
    node, mined = served.node, served.mined
    genesis = node.chain.genesis()
    async with HttpClient(served.url()) as api:
        assert await api.call("ChainHead") == node.chain.head().to_json(T) == mined.tipsets[-1].to_json(T)
        assert await api.call("ChainGetGenesis") == TipSet((genesis,)).to_json(T)
        for ts in mined.tipsets:
            assert await api.call("ChainGetTipSet", tsk(ts)) == ts.to_json(T)
            for block in ts.blocks:
                got = await api.call("ChainGetBlock", {"/": str(block.cid())})
                assert got == block.to_json(T)
                assert got["Height"] == ts.height and got["Miner"] == block.miner.to_string(T)
        missing = CID.hash_of(b"no such block")
        with pytest.raises(RpcCallError, match=f"loading block {missing}: block {missing} not found") as err:
            await api.call("ChainGetBlock", {"/": str(missing)})
        assert err.value.code == GENERIC_ERROR
        with pytest.raises(RpcCallError, match=r"loading tipset .*not found"):
            await api.call("ChainGetTipSet", [{"/": str(missing)}])
        with pytest.raises(RpcCallError, match="the empty tipset key names no tipset"):
            await api.call("ChainGetTipSet", None)
        # a message is not a block header
        secp = mined.secp[0].cid()
        with pytest.raises(RpcCallError, match=f"loading block {secp}: {secp} is not a block header: "):
            await api.call("ChainGetBlock", {"/": str(secp)})


async def test_head_answers_follow_head_changes(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """ChainHead's answer is encoded once per head (a memo method) and never outlives the head: after
    each change single calls, batches and WebSocket calls all answer the new head."""
    node = served.node
    encode = Method.encode_result
    encoded: list[Any] = []

    def counting(m: Method, value: Any, network: str) -> Any:
        encoded.append(value)
        return encode(m, value, network)

    monkeypatch.setattr(Method, "encode_result", counting)
    heads = []
    async with HttpClient(served.url()) as api, WsClient.connect(served.url(scheme="ws")) as ws:
        for _ in range(3):
            head = node.chain.head()
            heads.append(head)
            expected = head.to_json(T)
            for _ in range(3):
                assert await api.call("ChainHead") == expected
                assert await ws.call("ChainHead") == expected
            assert await api.batch([("ChainHead", []), ("ChainHead", [])]) == [expected, expected]
            mine(node, with_messages=False)
            assert node.chain.head() != head
    assert encoded == heads  # once per head, not once per call


async def test_tipsets_by_height_around_null_rounds(served: Served) -> None:
    node, mined = served.node, served.mined
    head = node.chain.head()
    heights = {ts.height for ts in [*mined.tipsets, TipSet((node.chain.genesis(),))]}
    nulls = [h for h in range(head.height) if not any(ts.height == h for ts in mined.tipsets) and h > 0]
    assert nulls, "the scenario mines after a null round"
    async with HttpClient(served.url()) as v1, HttpClient(served.url("v0")) as v0:
        for h in range(head.height + 1):
            below = node.chain.get_tipset_by_height(h, prev=True)
            above = node.chain.get_tipset_by_height(h, prev=False)
            assert await v1.call("ChainGetTipSetByHeight", h, None) == below.to_json(T)
            assert await v0.call("ChainGetTipSetByHeight", h, []) == below.to_json(T)
            assert await v1.call("ChainGetTipSetAfterHeight", h, None) == above.to_json(T)
            if h in heights:
                assert below == above and below.height == h
            else:
                assert below.height < h < above.height
        # anchored at an older tipset
        anchor = mined.tipsets[0]
        got = await v1.call("ChainGetTipSetByHeight", anchor.height, tsk(anchor))
        assert got == anchor.to_json(T)
        with pytest.raises(RpcCallError, match="height greater than start point"):
            await v1.call("ChainGetTipSetByHeight", anchor.height + 1, tsk(anchor))
        with pytest.raises(RpcCallError) as err:
            await v0.call("ChainGetTipSetAfterHeight", 1, None)
        assert err.value.code == METHOD_NOT_FOUND  # v1 only, as Lotus


async def test_block_messages_and_message_lookups(served: Served) -> None:
    node, mined = served.node, served.mined
    with_messages, empty = mined.tipsets[0].blocks[0], mined.tipsets[1].blocks[0]
    async with HttpClient(served.url()) as api:
        got = await api.call("ChainGetBlockMessages", {"/": str(with_messages.cid())})
        bls, secpk = node.chain.messages_for_block(with_messages)
        assert [m.cid() for m in secpk] == [m.cid() for m in mined.secp]
        assert [m.cid() for m in bls] == [m.message.cid() for m in mined.bls]
        assert got == {
            "BlsMessages": [m.to_json(T) for m in bls],
            "SecpkMessages": [m.to_json(T) for m in secpk],
            "Cids": [{"/": str(m.cid())} for m in [*bls, *secpk]],
        }
        # Lotus makes these slices with make(): an empty block has [] (not null)
        got = await api.call("ChainGetBlockMessages", {"/": str(empty.cid())})
        assert got == {"BlsMessages": [], "SecpkMessages": [], "Cids": []}

        for signed in mined.secp + mined.bls:
            got = await api.call("ChainGetMessage", {"/": str(signed.cid())})
            assert got == signed.message.to_json(T)
            assert got["CID"] == {"/": str(signed.message.cid())}
        missing = CID.hash_of(b"no such message")
        with pytest.raises(RpcCallError, match=f"loading message {missing}: block {missing} not found"):
            await api.call("ChainGetMessage", {"/": str(missing)})


def api_messages(msgs: list[SignedMessage]) -> list[dict[str, object]]:
    """Lotus api.Message values: the CID the chain knows the message by, and the unsigned message."""
    return [{"Cid": {"/": str(m.cid())}, "Message": m.message.to_json(T)} for m in msgs]


async def test_tipset_and_parent_messages_and_receipts(served: Served) -> None:
    node, mined = served.node, served.mined
    first, second = mined.tipsets[0], mined.tipsets[1]
    in_order = node.chain.messages_for_tipset(first)
    assert {m.cid() for m in in_order} == {m.cid() for m in mined.secp + mined.bls}
    expected = [
        {"Cid": {"/": str(m.cid())}, "Message": (m.message if isinstance(m, SignedMessage) else m).to_json(T)}
        for m in in_order
    ]
    genesis = node.chain.genesis()
    async with HttpClient(served.url()) as api:
        assert await api.call("ChainGetMessagesInTipset", tsk(first)) == expected
        assert await api.call("ChainGetMessagesInTipset", tsk(second)) == []
        assert await api.call("ChainGetMessagesInTipset", [{"/": str(genesis.cid())}]) == []
        for block in second.blocks:
            assert await api.call("ChainGetParentMessages", {"/": str(block.cid())}) == expected
            receipts = await api.call("ChainGetParentReceipts", {"/": str(block.cid())})
            stored = node.chain.read_receipts(block.parent_message_receipts)
            assert receipts == [r.to_json(T) for r in stored]
            assert len(receipts) == len(expected)
            assert all(r["ExitCode"] == 0 and r["GasUsed"] > 0 and r["Return"] is None for r in receipts)
        for method in ("ChainGetParentMessages", "ChainGetParentReceipts"):
            assert await api.call(method, {"/": str(genesis.cid())}) == []
    # the values api.Message shows are those of the messages pushed
    assert sorted(expected, key=str) == sorted(api_messages(mined.secp + mined.bls), key=str)


async def test_path_weight_and_objects(served: Served) -> None:
    node, mined = served.node, served.mined
    first, _, last = mined.tipsets
    store = node.chain.blockstore
    async with HttpClient(served.url()) as api:
        forward = await api.call("ChainGetPath", tsk(first), tsk(last))
        assert forward == [{"Type": "apply", "Val": ts.to_json(T)} for ts in mined.tipsets[1:]]
        back = await api.call("ChainGetPath", tsk(last), tsk(first))
        assert back == [{"Type": "revert", "Val": ts.to_json(T)} for ts in reversed(mined.tipsets[1:])]
        assert await api.call("ChainGetPath", tsk(last), None) == []  # the empty key is the head

        for ts in mined.tipsets:
            weight = await api.call("ChainTipSetWeight", tsk(ts))
            assert weight == str(node.chain.tipset_weight(ts)) == str(weight_of(store, ts))
        assert await api.call("ChainTipSetWeight", None) == str(node.chain.head_weight())

        block = last.blocks[0]
        raw = await api.call("ChainReadObj", {"/": str(block.cid())})
        assert base64.b64decode(raw) == block.to_bytes()
        assert await api.call("ChainHasObj", {"/": str(block.cid())}) is True
        missing = CID.hash_of(b"absent")
        assert await api.call("ChainHasObj", {"/": str(missing)}) is False
        with pytest.raises(RpcCallError, match=f"blockstore get: block {missing} not found"):
            await api.call("ChainReadObj", {"/": str(missing)})

        # a DAG of three blocks: root -> (middle -> leaf, leaf); the leaf is raw
        leaf_data = b"leaf bytes"
        leaf = CID.hash_of(leaf_data, codec=RAW)
        middle_data = dagcbor.encode([leaf])
        middle = CID.hash_of(middle_data)
        root_data = dagcbor.encode({"a": middle, "b": leaf, "n": 7})
        root = CID.hash_of(root_data)
        for cid, data in ((leaf, leaf_data), (middle, middle_data), (root, root_data)):
            store.put(cid, data)
        whole = await api.call("ChainStatObj", {"/": str(root)}, None)
        assert whole == {"Size": len(leaf_data) + len(middle_data) + len(root_data), "Links": 3}
        without_middle = await api.call("ChainStatObj", {"/": str(root)}, {"/": str(middle)})
        assert without_middle == {"Size": len(root_data), "Links": 1}
        with pytest.raises(RpcCallError, match=f"walking the DAG under {missing}"):
            await api.call("ChainStatObj", {"/": str(missing)}, None)


async def test_randomness_on_v0_only(served: Served) -> None:
    node, mined = served.node, served.mined
    head = node.chain.head()
    entropy = b"some entropy"
    tag = DomainSeparationTag.WinningPoStChallengeSeed
    async with HttpClient(served.url("v0")) as v0, HttpClient(served.url()) as v1:
        for ts, epoch in ((head, head.height), (mined.tipsets[1], mined.tipsets[0].height)):
            tickets = await v0.call("ChainGetRandomnessFromTickets", tsk(ts), tag, epoch, b64(entropy))
            assert base64.b64decode(tickets) == node.state.draw_chain_randomness(ts, tag, epoch, entropy)
            beacon = await v0.call("ChainGetRandomnessFromBeacon", tsk(ts), tag, epoch, b64(entropy))
            assert base64.b64decode(beacon) == node.state.draw_beacon_randomness(ts, tag, epoch, entropy)
            assert tickets != beacon
        with pytest.raises(RpcCallError, match="cannot draw randomness from the future"):
            await v0.call("ChainGetRandomnessFromTickets", None, tag, head.height + 5, None)
        with pytest.raises(RpcCallError) as err:
            await v1.call("ChainGetRandomnessFromTickets", None, tag, 1, None)
        assert err.value.code == METHOD_NOT_FOUND  # v1 has StateGetRandomnessFromTickets


async def test_chain_notify_current_then_apply(served: Served) -> None:
    node = served.node
    head = node.chain.head()
    async with WsClient.connect(served.url(scheme="ws")) as ws, ws.subscribe("ChainNotify") as changes:
        with trio.fail_after(30):
            first = await changes.__anext__()
            assert first == [{"Type": "current", "Val": head.to_json(T)}]
            new = await node.run_sync(mine, node)
            applied = await changes.__anext__()
            assert applied == [{"Type": "apply", "Val": new.to_json(T)}]
    async with HttpClient(served.url()) as api:
        with pytest.raises(RpcCallError, match="no out channel support") as err:
            await api.call("ChainNotify")
        assert err.value.code == METHOD_NOT_FOUND


async def test_chain_export_streams_the_car(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    # pieces of 4 KiB instead of 1 MiB, so that this small chain comes in many
    monkeypatch.setattr(chain_methods, "EXPORT_PIECE", PIECE)
    node = served.node
    head = node.chain.head()
    expected = io.BytesIO()
    node.chain.export(head, expected, recent_roots=2)
    async with WsClient.connect(served.url(scheme="ws")) as ws:
        with trio.fail_after(60):
            async with ws.subscribe("ChainExport", 2, False, None) as chunks:
                got = [c async for c in chunks]
            assert got[-1] == ""  # the empty piece (Go []byte{}) that ends a complete export
            pieces = [base64.b64decode(c) for c in got]
            assert (
                len(pieces) > 3 and {len(p) for p in pieces[:-2]} == {PIECE} and 0 < len(pieces[-2]) <= PIECE
            )
            data = b"".join(pieces)
            assert data == expected.getvalue()
            reader = CarReader(io.BytesIO(data))
            assert list(reader.roots) == list(head.cids)
            blocks = dict(reader)
            assert head.blocks[0].cid() in blocks and node.chain.genesis().cid() in blocks
            # an older tipset, skipping old messages: a smaller CAR rooted there
            first = served.mined.tipsets[0]
            async with ws.subscribe("ChainExport", 0, True, tsk(first)) as chunks:
                older = b"".join(base64.b64decode(c) for c in [c async for c in chunks] if c)
            assert list(CarReader(io.BytesIO(older)).roots) == list(first.cids)
            assert len(older) < len(data)
            with pytest.raises(RpcCallError, match="recent roots cannot be negative"):
                async with ws.subscribe("ChainExport", -1, False, None):
                    pass
            # a client that stops reading early cancels the export; the connection goes on
            async with ws.subscribe("ChainExport", 2, False, None) as chunks:
                assert len(base64.b64decode(await chunks.__anext__())) == PIECE
            assert await ws.call("ChainHead") == head.to_json(T)
