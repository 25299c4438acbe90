"""fr32 padding: bit layout, round trips, sizes and rejection of non-padded input, on both paths."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import fr32

blocks = st.integers(min_value=0, max_value=6).flatmap(
    lambda n: st.binary(min_size=127 * n, max_size=127 * n)
)


def test_all_ones_fill_each_element_to_254_bits() -> None:
    padded = fr32.pad_python(b"\xff" * 127)
    element = b"\xff" * 31 + b"\x3f"
    assert padded == element * 4
    assert fr32.pad(b"\xff" * 127) == padded


def test_single_bits_land_where_the_254_bit_runs_put_them() -> None:
    # Input bit 254 is the first bit of the second element, i.e. padded bit 256 (byte 32, bit 0).
    for in_bit, out_bit in [(0, 0), (253, 253), (254, 256), (507, 509), (508, 512), (762, 768), (1015, 1021)]:
        data = (1 << in_bit).to_bytes(127, "little")
        assert int.from_bytes(fr32.pad_python(data), "little") == 1 << out_bit
        assert int.from_bytes(fr32.pad(data), "little") == 1 << out_bit


@settings(max_examples=150, deadline=None)
@given(blocks)
def test_round_trip_and_paths_agree(data: bytes) -> None:
    padded = fr32.pad_python(data)
    assert len(padded) == fr32.padded_size(len(data))
    assert fr32.pad(data) == padded
    assert fr32.unpad_python(padded) == data
    assert fr32.unpad(padded) == data
    for element in range(0, len(padded), 32):
        assert padded[element + 31] & 0xC0 == 0


@pytest.mark.parametrize("position", [31, 63, 95, 127, 128 + 31])
@pytest.mark.parametrize("bit", [0x40, 0x80])
def test_unpad_rejects_a_set_top_bit(position: int, bit: int) -> None:
    padded = bytearray(fr32.pad(bytes(range(127)) * 2))
    padded[position] |= bit
    block = position // 128 * 128
    for unpad in (fr32.unpad, fr32.unpad_python):
        with pytest.raises(fr32.Fr32Error, match=f"block at {block} has a top bit set"):
            unpad(bytes(padded))


@pytest.mark.parametrize("length", [1, 126, 128, 300])
def test_pad_rejects_partial_blocks(length: int) -> None:
    for pad in (fr32.pad, fr32.pad_python):
        with pytest.raises(fr32.Fr32Error, match="multiple of 127"):
            pad(bytes(length))


@pytest.mark.parametrize("length", [1, 127, 129, 300])
def test_unpad_rejects_partial_blocks(length: int) -> None:
    for unpad in (fr32.unpad, fr32.unpad_python):
        with pytest.raises(fr32.Fr32Error, match="multiple of 128"):
            unpad(bytes(length))


def test_sizes() -> None:
    assert fr32.padded_size(0) == 0
    assert fr32.padded_size(127) == 128
    assert fr32.padded_size(2032) == 2048
    assert fr32.unpadded_size(2048) == 2032
    assert fr32.unpadded_size(32 << 30) == (32 << 30) // 128 * 127
    for bad in (-127, 1, 128):
        with pytest.raises(fr32.Fr32Error):
            fr32.padded_size(bad)
    for bad in (-128, 1, 127):
        with pytest.raises(fr32.Fr32Error):
            fr32.unpadded_size(bad)
