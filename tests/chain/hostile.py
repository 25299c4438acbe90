"""Hostile input for the decoders: each one decodes it or refuses it with DecodeError, nothing else."""

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest

from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError

T = TypeVar("T")


def decodes_or_refuses(decoders: Iterable[Callable[[Any], object]], data: object) -> None:
    """Each decoder decodes data or raises DecodeError; any other exception fails the test."""
    for decode in decoders:
        with contextlib.suppress(DecodeError):
            decode(data)


def canonical_or_refused(decode: Callable[[bytes], T], encode: Callable[[T], bytes], data: bytes) -> T | None:
    """decode refuses data with DecodeError (None), or what it decodes encodes back to exactly data: a
    decoder that accepted a second spelling of a value would let two byte strings name one object."""
    try:
        value = decode(data)
    except DecodeError:
        return None
    assert encode(value) == data
    return value


def refuses_cut_or_extended(decode: Callable[[bytes], object], data: bytes, cuts: int, extra: bytes) -> None:
    """decode refuses with DecodeError the encoding data cut short (at about `cuts` lengths spread from the
    empty prefix on) and data with `extra` appended."""
    for cut in range(0, len(data), max(1, len(data) // cuts)):
        with pytest.raises(DecodeError):
            decode(data[:cut])
    with pytest.raises(DecodeError):
        decode(data + extra)


def names_the_bad_field(
    decode: Callable[[bytes], object], fields: list[Any], bad: dict[int, tuple[Any, str]]
) -> None:
    """decode refuses the CBOR array `fields` with one field changed: for each index in `bad`, the field
    set to its value gives a DecodeError that matches its reason."""
    for index, (value, reason) in bad.items():
        changed = list(fields)
        changed[index] = value
        with pytest.raises(DecodeError, match=reason):
            decode(dagcbor.encode(changed))
