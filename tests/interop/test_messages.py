"""messages.json: unsigned messages in Lotus JSON -> DAG-CBOR bytes -> CID."""

import base64
from typing import Any

import pytest

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.types.message import Message
from tests.vectors import cases


@pytest.mark.parametrize("case", cases("messages.json"))
def test_message_case(case: dict[str, Any]) -> None:
    fields = case["message"]
    message = Message.from_json(fields)
    data = bytes.fromhex(case["cbor_hex"])
    assert message.params.hex() == case["params_hex"]
    assert base64.b64decode(fields["Params"]) == message.params
    assert message.to_bytes() == data
    assert dagcbor.encode(message.to_cbor()) == data
    assert str(message.cid()) == case["cid"]
    assert message.cid().bytes.hex() == case["cid_bytes_hex"]
    assert message.cid() == CID.hash_of(data)
    assert message.signing_bytes().hex() == case["cid_bytes_hex"]

    decoded = Message.from_bytes(data)
    assert decoded == message
    assert decoded.cid() == message.cid()
    assert Message.from_cbor(dagcbor.decode(data)) == message

    # Back to Lotus JSON with the vector's "f" prefix: the same fields, plus the CID Lotus adds, and
    # empty Params written as null like Lotus writes a message read from chain.
    written = decoded.to_json("f")
    assert written.pop("CID") == {"/": case["cid"]}
    expected = dict(fields)
    if expected["Params"] == "":
        expected["Params"] = None
    assert written == expected
