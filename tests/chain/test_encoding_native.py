"""The C DAG-CBOR encoder (chain/encoding/_dagcbor.c) against the pure-Python reference encoder: the same
bytes for every value, the same ValueError message for every value DAG-CBOR cannot hold."""

import enum
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import build_ext, dagcbor
from chain.encoding.cid import CID
from tests.chain.test_encoding_properties import _INT_EDGES, cids, values
from tests.vectors import require

needs_native = pytest.mark.skipif(not dagcbor.NATIVE, reason="chain/encoding/_dagcbor not built (make ext)")
pytestmark = needs_native


class _Kind(enum.IntEnum):
    SEVEN = 7
    BIG = 2**64 - 1


def _both(value: Any, max_depth: int = dagcbor.MAX_DEPTH) -> bytes:
    python = dagcbor.encode_python(value, max_depth)
    native = dagcbor._encode_native(value, max_depth)
    assert native == python, value
    return native


@settings(max_examples=400, deadline=None)
@given(values)
def test_native_encoder_gives_the_reference_bytes(value: Any) -> None:
    data = _both(value)
    assert dagcbor.decode(data) is not None or data == b"\xf6"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_INT_EDGES), cids(), st.binary(max_size=300)), max_size=8))
def test_tuples_ints_cids_and_long_byte_strings(items: list[tuple[int, CID, bytes]]) -> None:
    _both(items)


def test_edge_values() -> None:
    for value in (
        *_INT_EDGES,
        _Kind.SEVEN,
        _Kind.BIG,
        bytearray(b"ab"),
        memoryview(b"xyz"),
        "\u00e9\U0001f600",
        {"bb": 1, "a": 2, "\u00e9": 3, "c": [None, True, False]},
        b"\x00" * 70_000,
        [0.0, -0.0, 1.5, 5e-324],
        (),
        {},
    ):
        _both(value)


@pytest.mark.parametrize(
    "value",
    [
        2**64,
        -(2**64) - 1,
        10**40,
        -(10**40),
        [1, {"k": 2**70}],
        {1: "x"},
        {"a": 1, b"b": 2},
        math.inf,
        -math.inf,
        math.nan,
        {1, 2},
        1j,
        object(),
        True.__class__,
    ],
)
def test_native_encoder_rejects_what_the_reference_rejects(value: Any) -> None:
    with pytest.raises(ValueError) as python:
        dagcbor.encode_python(value)
    with pytest.raises(ValueError) as native:
        dagcbor._encode_native(value)
    assert str(native.value) == str(python.value)


def test_nesting_limit_is_the_same() -> None:
    deep: Any = 1
    for _ in range(5):
        deep = [deep]
    assert _both(deep, 5)
    for limit in (4, 0):
        with pytest.raises(ValueError, match=f"nesting deeper than {limit}"):
            dagcbor._encode_native(deep, limit)
        with pytest.raises(ValueError, match=f"nesting deeper than {limit}"):
            dagcbor.encode_python(deep, limit)
    with pytest.raises(ValueError, match="nesting deeper than 64"):
        dagcbor.encode(_nest(70))


def _nest(levels: int) -> Any:
    out: Any = None
    for _ in range(levels):
        out = {"x": out}
    return out


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("cids.json", "cbor_hex"),
        ("messages.json", "cbor_hex"),
        ("signatures.json", "signed_message_cbor_hex"),
    ],
)
def test_interop_vectors_encode_identically(name: str, field: str) -> None:
    """The vectors' DAG-CBOR (made by other implementations) decode and re-encode to the same bytes by
    both encoders."""
    cases = require(name)["cases"]
    for case in cases:
        data = bytes.fromhex(case[field])
        assert _both(dagcbor.decode(data)) == data
    assert cases


def test_module_entry_point_reports_up_to_date() -> None:
    if not build_ext.up_to_date(build_ext.target()):
        pytest.skip("the built module is older than its source (run make ext)")
    result = subprocess.run(
        [sys.executable, "-m", "chain.encoding.build_ext"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0
    assert "up to date" in result.stdout
