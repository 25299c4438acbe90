"""DAG-CBOR encode/decode throughput on a block-header-shaped value."""

from bench.common import per_second, report, section
from chain.encoding import dagcbor
from chain.encoding.cid import CID


def _header_shaped() -> list[object]:
    # Same shape and sizes as a mainnet block header: 16 fields, BLS VRF proofs, two beacon entries,
    # one Winning PoSt proof, three parents.
    parent = CID.hash_of(b"parent")
    return [
        b"\x00\x81\x08",
        [b"\xaa" * 96],
        [1, b"\xbb" * 96],
        [[12345, b"\xcc" * 96], [12346, b"\xdd" * 96]],
        [[3, b"\xee" * 192]],
        [parent, CID.hash_of(b"p2"), CID.hash_of(b"p3")],
        b"\x00\x10\x00\x00\x00",
        1234567,
        CID.hash_of(b"state"),
        CID.hash_of(b"receipts"),
        CID.hash_of(b"messages"),
        b"\x02" + b"\x11" * 96,
        1700000000,
        b"\x02" + b"\x22" * 96,
        0,
        b"\x00\x64",
    ]


def run() -> None:
    section("DAG-CBOR (block-header-shaped value, generic encoder)")
    value = _header_shaped()
    data = dagcbor.encode(value)
    report("encode", per_second(lambda: dagcbor.encode(value)), "ops/s", f"{len(data)} bytes")
    report("decode (strict)", per_second(lambda: dagcbor.decode(data)), "ops/s")
