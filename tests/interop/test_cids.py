"""cids.json: DAG-CBOR bytes and CIDs as @ipld/dag-cbor and multiformats produce them."""

from typing import Any

import pytest

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.multihash import BLAKE2B_256, SHA2_256
from tests.interop import dagjson
from tests.vectors import cases


@pytest.mark.parametrize("case", cases("cids.json"))
def test_dagcbor_case(case: dict[str, Any]) -> None:
    value = dagjson.loads(case["dag_json"])
    data = bytes.fromhex(case["cbor_hex"])
    assert dagcbor.encode(value) == data
    decoded = dagcbor.decode(data)
    assert dagcbor.encode(decoded) == data
    assert decoded == value or (value != value)  # NaN never appears; equality is exact otherwise
    blake = CID.hash_of(data)
    assert str(blake) == case["cid_blake2b_256"]
    assert blake.bytes.hex() == case["cid_blake2b_256_bytes_hex"]
    sha = CID.hash_of(data, mh_code=SHA2_256)
    assert str(sha) == case["cid_sha2_256"]
    assert sha.bytes.hex() == case["cid_sha2_256_bytes_hex"]
    assert CID.parse(case["cid_blake2b_256"]) == blake
    assert CID.decode(blake.bytes).multihash.code == BLAKE2B_256


@pytest.mark.parametrize("case", cases("cids.json", "link_cids"))
def test_link_cid(case: dict[str, Any]) -> None:
    cid = CID.parse(case["cid"])
    assert cid.version == case["version"]
    assert cid.codec == case["codec"]
    assert cid.multihash.code == case["multihash_code"]
    assert cid.multihash.digest.hex() == case["digest_hex"]
    assert cid.bytes.hex() == case["bytes_hex"]
    assert str(cid) == case["cid"]
    assert str(cid.to_v1()) == case["base32"]
    assert CID.decode(bytes.fromhex(case["bytes_hex"])) == cid
