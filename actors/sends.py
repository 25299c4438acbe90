"""Calling other actors from an actor: send, require success, decode the return.

The callee's method is its enum member and its params and return are the callee's declared types,
imported from its types module. A failed callee aborts the caller with the callee's exit code (as
builtin-actors' `?` on a send); a return value that does not decode is the callee's fault and aborts
with ErrSerialization.
"""

from enum import IntEnum
from typing import Any, TypeVar

from actors.dispatch import encode_params
from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from chain.encoding.schema import Kind, kind_of
from chain.types.address import Address
from chain.vm.exitcode import ActorError, serialization
from chain.vm.runtime import Runtime

T = TypeVar("T")


def describe(method: int) -> str:
    """A method for messages: `PowerMethod.CurrentTotalPower`, or its number."""
    return f"{type(method).__name__}.{method.name}" if isinstance(method, IntEnum) else f"method {method}"


def send_or_abort(
    rt: Runtime, to: Address, method: int, params: Any, value: int, what: str | None = None
) -> bytes:
    """Send params (a declared value, a plain CBOR value, or None) and return the return bytes."""
    result = rt.send(to, method, encode_params(params), value)
    if not result.ok:
        raise ActorError(
            result.exit_code, f"{what or describe(method)} failed with exit code {int(result.exit_code)}"
        )
    return result.return_data


_RETURN_KINDS: dict[type, Kind] = {}


def _return_kind(returns: type) -> Kind:
    kind = _RETURN_KINDS.get(returns)
    if kind is None:
        kind = _RETURN_KINDS[returns] = kind_of(returns, f"return of {returns.__name__}")
    return kind


def decode_return(data: bytes, returns: type[T], what: str) -> T:
    """The callee's return bytes as a `returns` (ErrSerialization if they do not decode as one)."""
    try:
        value: T = _return_kind(returns).decode(dagcbor.decode(data), f"{what} return")
    except DecodeError as exc:
        raise serialization(f"{what}: bad return value", exc) from None
    return value


def call(
    rt: Runtime,
    to: Address,
    method: IntEnum,
    params: Any,
    returns: type[T],
    *,
    value: int = 0,
    what: str | None = None,
) -> T:
    """Send (with no value unless given), require success and decode the return as a `returns`."""
    what = what or describe(method)
    return decode_return(send_or_abort(rt, to, method, params, value, what), returns, what)
