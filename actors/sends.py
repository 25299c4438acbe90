"""Calling other actors from an actor: send, require success, decode the return.

A failed callee aborts the caller with the callee's exit code (as builtin-actors' `?` on a send); a
return value that does not decode is the callee's fault and aborts with ErrSerialization.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from actors.dispatch import encode_params
from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime

T = TypeVar("T")


def send_or_abort(rt: Runtime, to: Address, method: int, params: Any, value: int, what: str) -> bytes:
    """Send params (a value with to_cbor(), a plain CBOR value, or None) and return the return bytes."""
    result = rt.send(to, method, encode_params(params), value)
    if not result.ok:
        raise ActorError(result.exit_code, f"{what} failed with exit code {int(result.exit_code)}")
    return result.return_data


def decode_return(data: bytes, decoder: Callable[[Any], T], what: str) -> T:
    try:
        return decoder(dagcbor.decode(data))
    except DecodeError as exc:
        raise ActorError(ExitCode.ErrSerialization, f"{what}: bad return value: {exc}") from None


def call(rt: Runtime, to: Address, method: int, params: Any, decoder: Callable[[Any], T], what: str) -> T:
    """Send without value, require success and decode the return."""
    return decode_return(send_or_abort(rt, to, method, params, 0, what), decoder, what)
