"""ref/blockheader.json: golden facts from lotus's own tests (signing bytes, tipset keys, BlockMsg,
message CIDs and JSON)."""

import json
from typing import Any

import pytest

from chain.crypto.signature import Signature, SigType
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.state.hamt import Hamt
from chain.store.blockstore import MemoryBlockstore
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, BlockMsg, PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSetKey
from tests.vectors import CaseChecks, cases

CHECKS = CaseChecks("blockheader")

# Lotus field names -> BlockHeader attributes, in the order filpy declares (and encodes) them.
_HEADER_FIELDS = {
    "Miner": "miner",
    "Ticket": "ticket",
    "ElectionProof": "election_proof",
    "BeaconEntries": "beacon_entries",
    "WinPoStProof": "win_post_proof",
    "Parents": "parents",
    "ParentWeight": "parent_weight",
    "Height": "height",
    "ParentStateRoot": "parent_state_root",
    "ParentMessageReceipts": "parent_message_receipts",
    "Messages": "messages",
    "BLSAggregate": "bls_aggregate",
    "Timestamp": "timestamp",
    "BlockSig": "block_sig",
    "ForkSignaling": "fork_signaling",
    "ParentBaseFee": "parent_base_fee",
}


@CHECKS.on("TestInteropBH signing bytes")
def _interop_header(case: dict[str, Any]) -> None:
    f = case["fields"]
    miner = Address.new_secp256k1(b"address0")
    assert miner.to_bytes().hex() in f["Miner"]
    link = CID.parse(f["Parents"][0])
    assert f["ParentStateRoot"] == f["ParentMessageReceipts"] == f["Messages"] == str(link)
    assert f["WinPoStProof"][0]["PoStProof"].endswith("(=0)")
    assert f["BlockSig"]["Type"] == "BLS (2)"
    header = BlockHeader(
        miner=miner,
        ticket=Ticket(bytes.fromhex(f["Ticket.VRFProof"])),
        election_proof=ElectionProof(
            f["ElectionProof"]["WinCount"], bytes.fromhex(f["ElectionProof"]["VRFProof"])
        ),
        beacon_entries=tuple(BeaconEntry(e["Round"], bytes.fromhex(e["Data"])) for e in f["BeaconEntries"]),
        win_post_proof=(PoStProof(0, bytes.fromhex(f["WinPoStProof"][0]["ProofBytes"])),),
        parents=(link,),
        parent_weight=int(f["ParentWeight"]),
        height=f["Height"],
        parent_state_root=link,
        parent_message_receipts=link,
        messages=link,
        # Lotus's zero-value Signature{}: type 0, no data.
        bls_aggregate=Signature(0, b""),
        timestamp=f["Timestamp"],
        block_sig=Signature(SigType.BLS, bytes.fromhex(f["BlockSig"]["Data"])),
        fork_signaling=f["ForkSignaling"],
        parent_base_fee=int(f["ParentBaseFee"]),
    )
    expected = bytes.fromhex(case["expected_signing_bytes_hex"])
    assert header.signing_bytes() == expected
    assert list(_HEADER_FIELDS) == case["field_order"]
    declared = [name for name in BlockHeader.__dataclass_fields__ if not name.startswith("_")]
    assert declared == list(_HEADER_FIELDS.values())

    # The notes' encodings, one by one.
    assert dagcbor.encode(encode_bigint(1000)).hex() == "430003e8"
    assert dagcbor.encode(encode_bigint(1000000000)).hex() == "45003b9aca00"
    assert dagcbor.encode(Signature(0, b"").to_cbor()).hex() == "4100"
    assert "f6" in case["signing_bytes_note"] and expected[0] == 0x90  # 16-element array

    # The full header differs only by BlockSig; decoding it fails on the type-0 BLSAggregate, exactly
    # as lotus's decoder refuses signature type 0.
    full = header.to_bytes()
    assert full != expected
    assert dagcbor.decode(full)[:13] == dagcbor.decode(expected)[:13]
    assert dagcbor.decode(full)[13] == Signature(SigType.BLS, b"\x03").to_bytes()
    with pytest.raises(DecodeError, match="BLSAggregate: invalid signature type 0"):
        BlockHeader.from_bytes(full)


@CHECKS.on("TipSetKey CIDs")
def _tipset_keys(case: dict[str, Any]) -> None:
    named = {}
    for name, text in case["inputs"].items():
        letter = text.split("'")[1]
        cid = CID.hash_of(letter.encode())
        assert str(cid) == text.rsplit("= ", 1)[1]
        named[name] = cid
    for expected in case["expected"]:
        key = TipSetKey(tuple(named[name] for name in expected["tsk"]))
        assert str(key.cid()) == expected["cid"]
        assert key.to_bytes() == b"".join(named[name].bytes for name in expected["tsk"])
        assert TipSetKey.from_bytes(key.to_bytes()) == key
        assert TipSetKey.from_cbor(dagcbor.decode(dagcbor.encode(key.to_cbor()))) == key
        assert TipSetKey.from_json(key.to_json()) == key
    # "also": a key cut by one byte does not decode; order is kept and nothing is deduplicated.
    with pytest.raises(DecodeError):
        TipSetKey.from_bytes(TipSetKey((named["c1"],)).to_bytes()[1:])
    c1, c2 = named["c1"], named["c2"]
    assert TipSetKey((c1, c2)) != TipSetKey((c2, c1))
    assert TipSetKey((c1, c1)).cids == (c1, c1)
    assert TipSetKey((c1,)).to_json() == [{"/": str(c1)}]


@CHECKS.on("BlockMsg decode")
def _block_msg(case: dict[str, Any]) -> None:
    for item in case["cases"]:
        data = bytes.fromhex(item["hex"])
        if item["expect"].startswith("error"):
            with pytest.raises(DecodeError):
                BlockMsg.from_bytes(data)
        else:
            assert item["expect"].startswith("ok")
            decoded = BlockMsg.from_bytes(data)
            assert decoded == BlockMsg(None, (), ())
            assert decoded.to_bytes() == data


@CHECKS.on("Message / SignedMessage CID")
def _message_cids(case: dict[str, Any]) -> None:
    m = case["message"]
    message = Message(
        version=m["Version"],
        to=Address.parse(m["To"].split()[0]),
        from_=Address.parse(m["From"].split()[0]),
        nonce=m["Nonce"],
        value=int(m["Value"]),
        gas_limit=m["GasLimit"],
        gas_fee_cap=int(m["GasFeeCap"]),
        gas_premium=int(m["GasPremium"]),
        method=m["Method"],
        params=bytes.fromhex(m["Params_hex"]),
    )
    assert str(message.cid()) == case["expected_message_cid"]
    assert "Signature{Type:0, Data:nil}" in case["signed_message"]
    signed = SignedMessage(message, Signature(0, b""))
    assert str(signed.cid()) == case["expected_signed_message_cid"]
    text = json.dumps(message.to_json("f"), separators=(",", ":"))
    assert text == case["expected_message_json"]
    signed_json = signed.to_json("f")
    assert signed_json["CID"] == {"/": case["expected_signed_message_cid"]}
    assert signed_json["Signature"] == {"Type": 0, "Data": None}


@CHECKS.on("State tree v0 root")
def _state_tree_v0(case: dict[str, Any]) -> None:
    # The actors-v0 state tree: a bare HAMT root (legacy pointer layout, bitwidth 5, sha256) mapping
    # address bytes to Actor [Code, Head, Nonce, Balance]. Lotus's test inserts 50 actors.
    setup = case["setup"]
    assert "for i in 0..50" in setup and "ID address 100+i" in setup
    code = CID.parse(setup.rsplit("C = ", 1)[1].strip())
    store = MemoryBlockstore()
    tree = Hamt.new(store, bitwidth=5, legacy=True)
    for i in range(50):
        tree.set(Address.new_id(100 + i).to_bytes(), [code, code, 1000 - i, encode_bigint(10000 + i)])
    root = tree.flush()
    assert str(root) == case["expected_root_cid"]
    reloaded = Hamt.load(store, root, bitwidth=5, legacy=True)
    assert reloaded.get(Address.new_id(149).to_bytes()) == [code, code, 951, encode_bigint(10049)]
    with pytest.raises(DecodeError, match="neither a link nor a bucket"):
        Hamt.load(store, root, bitwidth=5)  # today's layout refuses the old pointers


@pytest.mark.parametrize("case", cases("ref/blockheader.json"))
def test_blockheader_case(case: dict[str, Any]) -> None:
    CHECKS.run(case)
