"""Lotus JSON of the chain types, from their declarations: round trips and clear errors."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import cid_from_json
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet, TipSetKey
from tests.chain.hostile import decodes_or_refuses
from tests.chain.type_strategies import block_headers, cids, messages, receipts, signed_messages


@given(messages(), st.sampled_from(["f", "t"]))
def test_message_json_round_trip(message: Message, network: str) -> None:
    written = json.loads(json.dumps(message.to_json(network)))
    assert Message.from_json(written) == message
    assert written["CID"] == {"/": str(message.cid())}
    assert written["To"][0] == network


@given(signed_messages)
def test_signed_message_json_round_trip(signed: SignedMessage) -> None:
    written = json.loads(json.dumps(signed.to_json()))
    assert SignedMessage.from_json(written) == signed
    assert written["CID"] == {"/": str(signed.cid())}


def _message_json(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "Version": 0,
        "To": "t01",
        "From": "t1npyyppwthnyphi3itsbvslfmfufcp75plylkoxq",
        "Nonce": 1,
        "Value": "10",
        "GasLimit": 100,
        "GasFeeCap": "5",
        "GasPremium": "4",
        "Method": 0,
        "Params": None,
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not _DROP}


_DROP = object()


def test_optional_fields_and_unknown_keys() -> None:
    base = Message.from_json(_message_json())
    assert Message.from_json(_message_json(Version=_DROP, Params=_DROP)) == base
    assert Message.from_json(_message_json(Params="")) == base
    assert Message.from_json({**_message_json(), "CID": {"/": "ignored"}, "Extra": 1}) == base
    assert base.to_json()["Params"] is None


def test_message_json_errors() -> None:
    refused = {
        "Nonce": (-1, "Message.Nonce: expected an unsigned 64-bit integer"),
        "GasLimit": (1.5, "Message.GasLimit"),
        "Method": (True, "Message.Method"),
        "Value": (10, "Message.Value: expected a decimal string"),
        "GasFeeCap": ("0x10", "Message.GasFeeCap: '0x10' is not a decimal integer"),
        "GasPremium": ("1" * 400, "too large"),
        "To": ("x01", "Message.To: unknown address network"),
        "From": (None, "Message.From: expected an address string"),
        "Params": ("a", "Message.Params: invalid base64"),
        "Version": ("0", "Message.Version"),
    }
    for key, (value, reason) in refused.items():
        with pytest.raises(DecodeError, match=reason):
            Message.from_json(_message_json(**{key: value}))
    with pytest.raises(DecodeError, match="missing field 'Nonce'"):
        Message.from_json(_message_json(Nonce=_DROP))
    with pytest.raises(DecodeError, match="expected a JSON object"):
        Message.from_json([])
    assert Message.from_json(_message_json(Value="-5")).value == -5  # Go big.Int accepts a sign


def test_signature_json() -> None:
    signature = Signature(SigType.SECP256K1, b"\x01" * 65)
    assert Signature.from_json(signature.to_json()) == signature
    for raw, reason in (
        ({"Type": 0, "Data": None}, "invalid signature type 0"),
        ({"Type": "1", "Data": None}, "invalid signature type"),
        ({"Type": 1}, "missing field 'Data'"),
        ({"Type": 2, "Data": "!!"}, "invalid base64"),
        ({"Type": 2, "Data": "AAAA" * 100}, "exceeds"),
    ):
        with pytest.raises(DecodeError, match=reason):
            Signature.from_json(raw)


def test_cid_and_key_json() -> None:
    with pytest.raises(DecodeError, match="expected a CID"):
        cid_from_json({"/": 5}, "Cid")
    with pytest.raises(DecodeError, match="Cid: unsupported multibase"):
        cid_from_json({"/": "xyz"}, "Cid")
    assert TipSetKey.from_json(None).is_empty()
    with pytest.raises(DecodeError, match=r"TipSetKey\[0\]"):
        TipSetKey.from_json([{"/": "bad"}])
    with pytest.raises(DecodeError, match="expected an array"):
        TipSetKey.from_json({})


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
        max_leaves=20,
    )
)
def test_random_json_never_crashes(value: object) -> None:
    decodes_or_refuses(
        (
            Message.from_json,
            SignedMessage.from_json,
            Signature.from_json,
            TipSetKey.from_json,
        ),
        value,
    )


@given(block_headers())
@settings(max_examples=50)
def test_block_header_json_round_trip(header: BlockHeader) -> None:
    written = json.loads(json.dumps(header.to_json()))
    assert BlockHeader.from_json(written) == header
    # Lotus writes the empty arrays of a header read from chain as null.
    for key, values in (("Parents", header.parents), ("BeaconEntries", header.beacon_entries)):
        assert (written[key] is None) == (not values)


@given(
    st.lists(
        block_headers(height=3, parents=(CID.hash_of(b"p"),)),
        min_size=1,
        max_size=3,
        unique_by=lambda b: b.cid(),
    )
)
@settings(max_examples=20)
def test_tipset_json_round_trip(blocks: list[BlockHeader]) -> None:
    tipset = TipSet(tuple(blocks))
    written = json.loads(json.dumps(tipset.to_json("f")))
    assert written["Height"] == 3
    assert written["Cids"] == tipset.key.to_json()
    assert TipSet.from_json(written) == tipset


@given(receipts)
def test_receipt_json_round_trip(receipt: MessageReceipt) -> None:
    read = MessageReceipt.from_json(json.loads(json.dumps(receipt.to_json())))
    assert (read.exit_code, read.return_data, read.gas_used, read.events_root) == (
        receipt.exit_code,
        receipt.return_data,
        receipt.gas_used,
        receipt.events_root,
    )


@given(cids)
def test_header_json_errors(link: CID) -> None:
    header = BlockHeader.from_json(
        {
            "Miner": "f01000",
            "Ticket": {"VRFProof": "AQID"},
            "ElectionProof": None,
            "BeaconEntries": [],
            "WinPoStProof": None,
            "Parents": [{"/": str(link)}],
            "ParentWeight": "10",
            "Height": 1,
            "ParentStateRoot": {"/": str(link)},
            "ParentMessageReceipts": {"/": str(link)},
            "Messages": {"/": str(link)},
            "BLSAggregate": None,
            "Timestamp": 5,
            "BlockSig": {"Type": 2, "Data": None},
            "ForkSignaling": 0,
            "ParentBaseFee": "100",
        }
    )
    good = header.to_json()
    for key, value, reason in (
        ("Ticket", {"VRFProof": 1}, "BlockHeader.Ticket.VRFProof"),
        ("BeaconEntries", [{"Round": -1, "Data": None}], r"BlockHeader\.BeaconEntries\[0\]\.Round"),
        ("WinPoStProof", {}, "BlockHeader.WinPoStProof: expected an array"),
        ("Height", "1", "BlockHeader.Height"),
        ("BlockSig", {"Type": 7, "Data": None}, "BlockHeader.BlockSig.Type"),
    ):
        with pytest.raises(DecodeError, match=reason):
            BlockHeader.from_json({**good, key: value})
    with pytest.raises(DecodeError, match="missing field 'Messages'"):
        BlockHeader.from_json({k: v for k, v in good.items() if k != "Messages"})
    other_height = BlockHeader.from_bytes(header.to_bytes()).to_json()
    other_height["Height"] = 2
    with pytest.raises(DecodeError, match="different heights"):
        TipSet.from_json({"Blocks": [good, other_height]})
    with pytest.raises(DecodeError, match="at least one block"):
        TipSet.from_json({"Blocks": None})
