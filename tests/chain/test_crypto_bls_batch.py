"""BLS batch verification (`verify_bls_batch`): the same outcome for each signature as `verify_bls`,
whatever is wrong with the others; and pyblst refusing the encodings blspy refuses."""

import pytest
from blspy import G1Element, G2Element
from hypothesis import given, settings
from hypothesis import strategies as st
from pyblst import BlstP1Element, BlstP2Element, final_verify, miller_loop

from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import (
    BLS_BATCH_MAX,
    BLS_DST,
    BLS_G1_GENERATOR,
    BLS_G1_INFINITY,
    BLS_G2_INFINITY,
    SignatureError,
    verify_bls,
    verify_bls_batch,
)

KEYS = [PrivateKey.derive(KeyType.BLS, f"batch {i}".encode()) for i in range(8)]

# BLS12-381: the base field's modulus; E1: y^2 = x^3 + 4 over Fp, E2: y^2 = x^3 + 4(1 + i) over Fp2.
P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
Fp2 = tuple[int, int]


def _sqrt(a: int) -> int | None:
    root = pow(a, (P + 1) // 4, P)  # P = 3 mod 4
    return root if root * root % P == a % P else None


def _mul2(a: Fp2, b: Fp2) -> Fp2:
    return (a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P


def _sqrt2(a: Fp2) -> Fp2 | None:
    norm = _sqrt(a[0] * a[0] + a[1] * a[1])
    if norm is None:
        return None
    for n in (norm, P - norm):
        x0 = _sqrt((a[0] + n) * pow(2, P - 2, P) % P)
        if x0:
            root = (x0, a[1] * pow(2 * x0, P - 2, P) % P)
            if _mul2(root, root) == (a[0] % P, a[1] % P):
                return root
    return None


def _g1_off_subgroup() -> bytes:
    """A compressed point of E1(Fp) outside the prime-order subgroup (the cofactor is large)."""
    x = next(x for x in range(1, 100) if _sqrt(x**3 + 4) is not None)
    encoded = bytearray(x.to_bytes(48, "big"))
    encoded[0] |= 0x80
    return bytes(encoded)


def _g2_off_subgroup() -> bytes:
    """A compressed point of E2(Fp2) outside the prime-order subgroup."""
    for x in range(1, 100):
        cube = _mul2(_mul2((x, 0), (x, 0)), (x, 0))
        if _sqrt2(((cube[0] + 4) % P, (cube[1] + 4) % P)) is not None:
            encoded = bytearray(bytes(48) + x.to_bytes(48, "big"))  # x = c0 + c1 i is written c1 || c0
            encoded[0] |= 0x80
            return bytes(encoded)
    raise AssertionError("no x found")


def _valid(count: int, tag: bytes = b"") -> list[tuple[bytes, bytes, bytes]]:
    items = []
    for i in range(count):
        key = KEYS[i % len(KEYS)]
        message = tag + f"message {i}".encode()
        items.append((key.sign(message).data, key.public_key, message))
    return items


def test_off_subgroup_points_are_on_the_curve_and_refused_by_both_libraries() -> None:
    bad_key, bad_sig = _g1_off_subgroup(), _g2_off_subgroup()
    for parse in (G1Element.from_bytes, BlstP1Element.uncompress):
        with pytest.raises(ValueError):
            parse(bad_key)
    for parse in (G2Element.from_bytes, BlstP2Element.uncompress):
        with pytest.raises(ValueError):
            parse(bad_sig)
    assert "NOT_IN_GROUP" in _error(BlstP1Element.uncompress, bad_key)  # not a bad encoding
    assert "NOT_IN_GROUP" in _error(BlstP2Element.uncompress, bad_sig)


def _error(parse: object, data: bytes) -> str:
    try:
        parse(data)  # type: ignore[operator]
    except ValueError as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize(
    "encoding",
    [
        b"\xc0" + bytes(46) + b"\x01",  # infinity with a non-zero x
        b"\xe0" + bytes(47),  # infinity with the sign bit
        bytes(48),  # no compression flag
        b"\x9a" + bytes(47),  # x >= p
        b"\x80" + bytes(46) + b"\x01",  # x = 1: no such point
    ],
)
def test_pyblst_refuses_the_g1_encodings_blspy_refuses(encoding: bytes) -> None:
    with pytest.raises(ValueError):
        G1Element.from_bytes(encoding)
    with pytest.raises(ValueError):
        BlstP1Element.uncompress(encoding)


def test_valid_batch_passes() -> None:
    assert verify_bls_batch([]) == []
    for count in (1, 3, BLS_BATCH_MAX + 5):
        assert verify_bls_batch(_valid(count)) == [True] * count


def test_bad_entries_are_found_exactly() -> None:
    items = _valid(12)
    sig, key, message = items[3]
    other_sig, _, other_message = items[4]
    cases = {
        1: (other_sig, key, message),  # another message's signature
        2: (sig, key, other_message),  # a message it does not sign
        5: (sig, KEYS[7].public_key, message),  # another key
        6: (_g2_off_subgroup(), key, message),
        7: (sig, _g1_off_subgroup(), message),
        8: (BLS_G2_INFINITY, BLS_G1_INFINITY, message),  # the infinity key would verify this
        9: (BLS_G2_INFINITY, key, message),
        10: (sig[:95], key, message),
        11: (sig, key[:47], message),
    }
    bad = list(items)
    for i, item in cases.items():
        bad[i] = item
    expected = [i not in cases for i in range(len(bad))]
    assert verify_bls_batch(bad) == expected
    for i, item in cases.items():  # each alone among valid ones
        alone = list(items)
        alone[i] = item
        assert verify_bls_batch(alone) == [j != i for j in range(len(items))]
    with pytest.raises(SignatureError, match="infinity"):
        verify_bls(*cases[8])


def test_one_keys_signatures_are_checked_each() -> None:
    """A key's signatures share one pairing in the batch; a bad one among them is still found."""
    key = KEYS[0]
    items = [(key.sign(m).data, key.public_key, m) for m in (b"block", b"ticket", b"election", b"more")]
    assert verify_bls_batch(items) == [True] * 4
    items[2] = (items[1][0], *items[2][1:])
    assert verify_bls_batch(items) == [True, True, False, True]
    items[0], items[2] = items[2], items[0]
    assert verify_bls_batch(items) == [False, True, True, True]


def test_errors_that_cancel_in_a_plain_sum_are_caught() -> None:
    """sig_0 + d and sig_1 - d sum to the same point: an unweighted batch would pass them."""
    items = _valid(4)
    shift = BlstP2Element.hash_to_group(b"shift", b"any")
    first = (BlstP2Element.uncompress(items[0][0]) + shift).compress()
    second = (BlstP2Element.uncompress(items[1][0]) + -shift).compress()
    items[0] = (first, *items[0][1:])
    items[1] = (second, *items[1][1:])
    total = BlstP2Element.uncompress(items[0][0])
    pairings = miller_loop(
        BlstP1Element.uncompress(items[0][1]), BlstP2Element.hash_to_group(items[0][2], BLS_DST)
    )
    for sig, key, message in items[1:]:
        total += BlstP2Element.uncompress(sig)
        pairings *= miller_loop(BlstP1Element.uncompress(key), BlstP2Element.hash_to_group(message, BLS_DST))
    assert final_verify(miller_loop(BlstP1Element.uncompress(BLS_G1_GENERATOR), total), pairings)
    assert verify_bls_batch(items) == [False, False, True, True]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.binary(max_size=40), st.integers(0, 3)), max_size=10))
def test_same_outcomes_as_one_by_one(entries: list[tuple[int, bytes, int]]) -> None:
    items = []
    for key_index, message, fault in entries:
        key = KEYS[key_index]
        sig = key.sign(message).data
        if fault == 1:
            message += b"!"
        elif fault == 2:
            key = KEYS[(key_index + 1) % len(KEYS)]
        elif fault == 3:
            sig = bytes(96)
        items.append((sig, key.public_key, message))
    expected = []
    for item in items:
        try:
            expected.append(verify_bls(*item))
        except SignatureError:
            expected.append(False)
    assert verify_bls_batch(items) == expected


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 24), st.data(), st.booleans())
def test_one_bad_signature_among_many_is_the_only_false(
    size: int, data: st.DataObject, one_key: bool
) -> None:
    """The weighted sums (chain.crypto.msm) over a batch with one bad signature: the batch fails, and
    exactly that one comes out False, whether the others share its key (one sum of hashes) or not."""
    keys = KEYS[:1] if one_key else KEYS
    items = []
    for i in range(size):
        key = keys[i % len(keys)]
        message = f"signed {i}".encode()
        items.append((key.sign(message).data, key.public_key, message))
    bad = data.draw(st.integers(0, size - 1))
    sig, key, message = items[bad]
    items[bad] = (sig, key, message + b"!")
    assert verify_bls_batch(items) == [i != bad for i in range(size)]
