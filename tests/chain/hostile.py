"""Hostile input for the decoders: each one decodes it or refuses it with DecodeError, nothing else."""

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from chain.encoding.errors import DecodeError


def decodes_or_refuses(decoders: Iterable[Callable[[Any], object]], data: object) -> None:
    """Each decoder decodes data or raises DecodeError; any other exception fails the test."""
    for decode in decoders:
        with contextlib.suppress(DecodeError):
            decode(data)
