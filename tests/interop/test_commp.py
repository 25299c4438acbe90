"""commp.json (@web3-storage/data-segment, FRC-0069 v2 CIDs) and ref/commd.json (go-commp-utils goldens)."""

import hashlib
import io
from typing import Any

import pytest

from chain.encoding.cid import CID, FIL_COMMITMENT_SEALED, FIL_COMMITMENT_UNSEALED
from chain.encoding.commcid import (
    FR32_SHA2_256_TRUNC254_PADDED_BINARY_TREE,
    commitment_of_v1,
    parse_piece_cid_v2,
    piece_cid_v1,
    piece_cid_v2,
    v1_to_v2,
    v2_to_v1,
)
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import SHA2_256, Multihash
from proofs import commp
from tests.vectors import cases, require


def payload(case: dict[str, Any]) -> bytes:
    """Rebuild a commp.json payload from its rule (see the file's description)."""
    size = case["unpadded_size"]
    rule = case["payload_rule"]
    if rule == "mod256":
        return bytes(i % 256 for i in range(size))
    if rule == "zero":
        return bytes(size)
    assert rule == "sha256ctr", rule
    label = case["payload_label"].encode()
    blocks = (hashlib.sha256(label + j.to_bytes(4, "big")).digest() for j in range(-(-size // 32)))
    return b"".join(blocks)[:size]


@pytest.mark.parametrize("case", cases("commp.json"))
def test_commp_case(case: dict[str, Any]) -> None:
    data = payload(case)
    assert hashlib.sha256(data).hexdigest() == case["payload_sha256_hex"]
    assert "data_segment_error" not in case and "fr32_wasm_error" not in case
    for native in (None, False):
        result = commp.commp_of_bytes(data, native=native)
        assert result.commitment.hex() == case["commp_hex"]
        assert result.padded_size == case["padded_piece_size"]
        assert result.height == case["tree_height"]
        assert result.padding == case["padding"]
        assert result.payload_size == case["unpadded_size"]
    assert commp.padded_piece_size(case["unpadded_size"]) == case["padded_piece_size"]
    assert (case["unpadded_size"] == commp.unpadded_piece_size(case["padded_piece_size"])) == case[
        "is_127_times_power_of_2"
    ]


@pytest.mark.parametrize("case", cases("commp.json"))
def test_commp_case_streamed_in_small_chunks(case: dict[str, Any]) -> None:
    data = payload(case)
    # A tiny chunk size forces many chunk roots, stack merges and a partial tail through the threads.
    with commp.CommPWriter(threads=2, chunk_size=127 * 4) as writer:
        for start in range(0, len(data), 1000):
            writer.write(data[start : start + 1000])
        assert writer.finish().commitment.hex() == case["commp_hex"]
    streamed = commp.commp_of_stream(io.BytesIO(data), threads=2)
    assert streamed.commitment.hex() == case["commp_hex"]


@pytest.mark.parametrize("case", cases("commp.json"))
def test_piece_cids_case(case: dict[str, Any]) -> None:
    commitment = bytes.fromhex(case["commp_hex"])
    v1 = piece_cid_v1(commitment)
    assert str(v1) == case["piece_cid_v1"]
    assert commitment_of_v1(CID.parse(case["piece_cid_v1"])) == commitment
    v2 = piece_cid_v2(commitment, case["unpadded_size"])
    assert str(v2) == case["piece_cid_v2"]
    assert v2.multihash.to_bytes().hex() == case["piece_cid_v2_multihash_hex"]
    assert v1_to_v2(v1, case["unpadded_size"]) == v2
    parsed = parse_piece_cid_v2(CID.parse(case["piece_cid_v2"]))
    assert parsed.commitment == commitment
    assert parsed.height == case["tree_height"]
    assert parsed.padding == case["padding"]
    assert parsed.padded_size == case["padded_piece_size"]
    assert parsed.payload_size == case["unpadded_size"]
    assert v2_to_v1(v2) == (v1, case["unpadded_size"])


# FRC-0069's own test cases (FRCs/frc-0069.md, "Test Cases").
_QUAD = bytes(127) + bytes([1]) * 127 + bytes([2]) * 127 + bytes([3]) * 127
FRC_0069_CASES = [
    (
        _QUAD,
        "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
        "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
    ),
    (b"", None, "bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"),
    (bytes(127), None, "bafkzcibcaabdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"),
    (bytes(128), None, "bafkzcibcpybwiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy"),
    (
        _QUAD + bytes(127 * 4),
        "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
        "bafkzcibcaac542av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
    ),
    (
        _QUAD + bytes(4),
        "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
        "bafkzcibd7abqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4",
    ),
    (
        _QUAD + bytes(5),
        "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
        "bafkzcibd64bqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4",
    ),
]


@pytest.mark.parametrize(("data", "v1", "v2"), FRC_0069_CASES, ids=[f"frc69:{i}" for i in range(7)])
def test_frc_0069_examples(data: bytes, v1: str | None, v2: str) -> None:
    result = commp.commp_of_bytes(data)
    if v1 is not None:
        assert str(piece_cid_v1(result.commitment)) == v1
    assert str(piece_cid_v2(result.commitment, len(data))) == v2


@pytest.mark.parametrize(
    ("height", "v1", "v2"),
    [
        (
            30,
            "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
            "bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
        ),
        (
            31,
            "baga6ea4seaqomqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq",
            "bafkzcibcaap6mqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq",
        ),
    ],
)
def test_frc_0069_empty_sector_pieces(height: int, v1: str, v2: str) -> None:
    zero = commp.zero_commitment(height)
    assert str(piece_cid_v1(zero)) == v1
    assert str(piece_cid_v2(zero, commp.unpadded_piece_size(32 << height))) == v2


def test_v1_decoder_rejects_other_cids() -> None:
    poseidon_bls12_381_a1_fc1 = 0xB401
    sealed = CID.v1(FIL_COMMITMENT_SEALED, Multihash(poseidon_bls12_381_a1_fc1, bytes(32)))
    with pytest.raises(DecodeError, match="codec"):
        commitment_of_v1(sealed)
    with pytest.raises(DecodeError, match="incorrect hashing function"):
        commitment_of_v1(CID.v1(FIL_COMMITMENT_UNSEALED, Multihash(SHA2_256, bytes(32))))
    with pytest.raises(DecodeError, match="codec"):
        commitment_of_v1(CID.hash_of(b"block"))
    v2 = CID.parse(FRC_0069_CASES[0][2])
    with pytest.raises(DecodeError, match="codec"):
        commitment_of_v1(v2)
    with pytest.raises(DecodeError, match="codec raw"):
        parse_piece_cid_v2(piece_cid_v1(bytes(32)))
    with pytest.raises(DecodeError, match="0x1011"):
        parse_piece_cid_v2(CID.hash_of(b"x", codec=0x55))


@pytest.mark.parametrize(
    ("digest", "reason"),
    [
        (bytes([0, 2]) + bytes(31), "32 root bytes"),
        (bytes([0, 1]) + bytes(32), "height"),
        (bytes([128, 2]) + bytes(32), "padding"),  # 128 > the 127 bytes a height-2 tree holds
        (bytes([127, 3]) + bytes(32), "padding"),  # a 254-byte tree may not be half (or more) padding
        (bytes([0x80]) + bytes(33), "varint"),
    ],
)
def test_v2_decoder_rejects_bad_digests(digest: bytes, reason: str) -> None:
    cid = CID.v1(0x55, Multihash(FR32_SHA2_256_TRUNC254_PADDED_BINARY_TREE, digest))
    with pytest.raises(DecodeError, match=reason):
        parse_piece_cid_v2(CID.decode(cid.bytes))


# ref/commd.json -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", cases("ref/commd.json", "zero_piece_commitments"))
def test_zero_piece_commitment_table(entry: dict[str, Any]) -> None:
    padded = entry["padded_size"]
    assert padded == 128 << entry["level_index"]
    assert commp.unpadded_piece_size(padded) == entry["unpadded_size"]
    assert commp.zero_piece_commitment(padded).hex() == entry["commP_hex"]


def test_zero_piece_commitment_small_levels_from_data() -> None:
    table = require("ref/commd.json")
    for entry in table["zero_piece_commitments"][:8]:
        data = bytes(entry["unpadded_size"])
        assert commp.commp_of_bytes(data, native=False).commitment.hex() == entry["commP_hex"]


def _commd_case(name_part: str) -> dict[str, Any]:
    data = require("ref/commd.json")
    return next(c for c in data["cases"] if name_part in c["name"])


def test_32gib_sector_commd_from_deal_pieces() -> None:
    case = _commd_case("32GiB sector")
    pieces = []
    for entry in case["pieces_in_order"]:
        size = entry["padded_size"]
        if entry["piece_cid"].startswith("zero piece commitment"):
            commitment = commp.zero_piece_commitment(size)
        else:
            commitment = commitment_of_v1(CID.parse(entry["piece_cid"]))
        pieces.append(commp.PieceInfo(size, commitment))
    sector = case["expected_total_padded_size"]
    assert sum(p.padded_size for p in pieces) < sector  # alignment adds gaps the layout must fill
    assert str(piece_cid_v1(commp.comm_d(pieces, sector))) == case["expected_commD"]
    # Without the test's trailing zero pieces the sector padding fills the same space.
    deals_only = [
        p for p, e in zip(pieces, case["pieces_in_order"], strict=True) if e["piece_cid"][:4] == "baga"
    ]
    assert str(piece_cid_v1(commp.comm_d(deals_only, sector))) == case["expected_commD"]


def test_piece_cid_of_127_bytes_and_its_zero_padding() -> None:
    case = _commd_case("piece CID of 127 bytes")
    content = b"i am the biggest cat, what do you think about that"
    data = content + bytes(127 - len(content))
    result = commp.commp_of_bytes(data)
    assert str(piece_cid_v1(result.commitment)) == case["expected_piece_cid"]
    assert commp.commp_of_stream(io.BytesIO(data), size=127).commitment == result.commitment
    # "also": ZeroPadPieceCommitment(pcid, 127, 508) equals the CID of the content zero-filled to 508 bytes.
    grown = commp.zero_pad_commitment(result.commitment, 128, 512)
    assert grown == commp.commp_of_bytes(content + bytes(508 - len(content))).commitment


def test_declared_size_longer_than_the_data_is_an_error() -> None:
    case = _commd_case("size errors")
    assert "EOF" in case["expect"]
    with pytest.raises(commp.PieceError, match="ended after 21 of the 127 bytes"):
        commp.commp_of_stream(io.BytesIO(b"i am the smallest cat"), size=127)


def test_writer_zero_padding_sizes() -> None:
    case = _commd_case("writer zero padding sizes")
    for sub in case["cases"]:
        writer = commp.CommPWriter()
        for count in sub["writes_zero_bytes"]:
            writer.write(bytes(count))
        result = writer.finish()
        assert result.padded_size == sub["expected_padded_piece_size"]
        assert result.commitment == commp.zero_piece_commitment(sub["expected_padded_piece_size"])
