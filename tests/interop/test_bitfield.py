"""ref/bitfield.json: RLE+ encodings as go-bitfield and fvm_ipld_bitfield write and reject them."""

import re
from typing import Any

import pytest

from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from chain.types.bitfield import BitField, encode_runs
from tests.vectors import cases

# Error names used by the vectors -> what our DecodeError messages say.
_ERRORS = {
    "UnsupportedVersion": "version",
    "invalid RLE+ version": "version",
    "NotMinimal": "minimal",
    "InvalidVarint": "varint",
    "invalid encoding (run too long)": "varint",
    "RLEOverflow": r"2\^64 - 1 bits",
}


def _pack_bitstream(bitstream: str) -> bytes:
    """Pack a written bit sequence LSB-first, keeping a final partial byte even if zero (finish_test)."""
    return bytes(int(bitstream[i : i + 8][::-1], 2) for i in range(0, len(bitstream), 8))


def _expect_rejected(data: bytes, error: str) -> None:
    with pytest.raises(DecodeError, match=re.compile(_ERRORS[error], re.IGNORECASE)):
        BitField.from_bytes(data)


def _check_valid(data: bytes, bits: BitField) -> None:
    assert BitField.from_bytes(data) == bits
    assert bits.to_bytes() == data
    assert dagcbor.encode(bits.to_cbor()) == dagcbor.encode(data)
    assert BitField.from_cbor(dagcbor.decode(dagcbor.encode(data))) == bits


@pytest.mark.parametrize("case", cases("ref/bitfield.json"))
def test_case(case: dict[str, Any]) -> None:
    if "runs" in case:
        runs = [(run["val"], run["len"]) for run in case["runs"]]
        with pytest.raises(ValueError, match="same value"):
            encode_runs(runs)
    elif "json_runs" in case:
        bits = BitField.from_bits(case["set_bits"])
        assert bits.to_json_runs() == case["json_runs"]
        assert BitField.from_json_runs(case["json_runs"]) == bits
    elif "rule" in case:
        _check_reader_rules()
    elif "cbor_hex_len" in case:
        empty = BitField.from_bits(case["set_bits"])
        assert len(dagcbor.encode(empty.to_cbor())) == case["cbor_hex_len"]
        assert empty.to_bytes() == b""
        assert BitField.from_bytes(b"") == empty
    elif "expected_last_set_bit" in case:
        bits = BitField.from_bytes(bytes.fromhex(case["bytes_hex"]))
        assert bits.last() == int(case["expected_last_set_bit"])
        assert bits.to_bytes().hex() == case["bytes_hex"]
    elif "length" in case:
        data = bytes.fromhex(case["bytes_hex"])
        assert len(data) == case["length"]
        bits = BitField.from_bytes(data)
        assert bits.to_bytes() == data
        assert BitField(bits.ranges()).to_bytes() == data
    elif case["valid"] is False:
        _expect_rejected(bytes.fromhex(case["bytes_hex"]), case["error"])
    elif case["valid"] is True and "set_bits" in case:
        _check_valid(bytes.fromhex(case["bytes_hex"]), BitField.from_bits(case["set_bits"]))
    elif case["valid"] is True and "set_bits_rule" in case:
        assert case["set_bits_rule"].startswith("2^63 .. 2^63+1023")
        _check_valid(bytes.fromhex(case["bytes_hex"]), BitField.from_range(1 << 63, (1 << 63) + 1024))
    elif isinstance(case["valid"], str):
        # The legacy encoder's bytes for bit 2^64 - 1: runs add up to 2^64, which both readers refuse.
        data = bytes.fromhex(case["bytes_hex"])
        assert encode_runs([(False, (1 << 64) - 1), (True, 1)]) == data
        _expect_rejected(data, "RLEOverflow")
        with pytest.raises(ValueError):
            BitField.from_bits([(1 << 64) - 1])
    else:
        pytest.fail(f"no handler for bitfield case from {case['source']}")


def _check_reader_rules() -> None:
    """go-bitfield DecodeRLE/ValidateRLE rules, each on a crafted input."""
    valid = bytes.fromhex("7c472202")
    BitField.from_bytes(valid)
    _expect_rejected(valid + b"\x00", "NotMinimal")  # trailing zero byte
    _expect_rejected(bytes([0x01]), "UnsupportedVersion")  # version bits 01
    _expect_rejected(bytes([0x02]), "UnsupportedVersion")  # version bits 10
    # A long block whose varint has ten bytes, the last above 1, overflows uint64.
    _expect_rejected(_pack_bitstream("001" + "00" + "11111111" * 9 + "01000000" + "1"), "InvalidVarint")
    # A varint that ends in a zero byte after a continuation is not minimal.
    _expect_rejected(_pack_bitstream("001" + "00" + "10000001" + "00000000" + "1"), "InvalidVarint")
    # Runs adding up to more than 2^64 - 1 bits.
    over = "001" + "00" + "11111111" * 9 + "10000000" + "1"
    _expect_rejected(_pack_bitstream(over), "RLEOverflow")


@pytest.mark.parametrize("case", cases("ref/bitfield.json", "bitstream_cases"))
def test_bitstream_case(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["bytes_hex"])
    assert _pack_bitstream(case["bitstream"]) == data
    if not case["valid"]:
        _expect_rejected(data, case["error"])
        return
    bits = BitField.from_bytes(data)
    if "set_bits" in case:
        assert bits == BitField.from_bits(case["set_bits"])
    else:
        assert case["set_bits_range"].startswith("[0, 2^64-1)")
        assert bits == BitField.from_range(0, (1 << 64) - 1)
    assert bits.to_bytes() == data
