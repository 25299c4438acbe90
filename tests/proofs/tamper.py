"""Tampering with proofs and replicas for the soundness tests: one byte changed."""

from collections.abc import Callable

from hypothesis import strategies as st

from proofs.vanilla import ProofDecodeError


def flipped(data: bytes, position: int, flip: int) -> bytes:
    """data with the byte at position XORed with flip (1 to 255: the byte changes)."""
    tampered = bytearray(data)
    tampered[position] ^= flip
    return bytes(tampered)


def draw_flipped(draw: st.DataObject, data: bytes) -> tuple[int, bytes]:
    """A position in data and data with that byte changed, both drawn by hypothesis."""
    position = draw.draw(st.integers(0, len(data) - 1), label="position")
    return position, flipped(data, position, draw.draw(st.integers(1, 255), label="flip"))


def assert_flip_refused(
    draw: st.DataObject, proof: bytes, verify: Callable[[bytes], bool], *, unreadable_below: int
) -> None:
    """proof with one byte changed (drawn by hypothesis) does not verify; a change at a position below
    unreadable_below may instead make it unreadable (ProofDecodeError)."""
    position, tampered = draw_flipped(draw, proof)
    try:
        assert not verify(tampered)
    except ProofDecodeError:
        assert position < unreadable_below
