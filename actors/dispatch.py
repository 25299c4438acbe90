"""How an actor declares itself: its code CID, its state type and its method table.

Each actor module ends with one `ACTOR = ActorDef(...)`. The VM's invoker maps code CIDs to these
definitions and calls `invoke`, which decodes the CBOR params, runs the handler and encodes the return
value. Method numbers are those of builtin-actors (Send = 0 never reaches an actor; Constructor = 1).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime

METHOD_SEND = 0
METHOD_CONSTRUCTOR = 1

ParamsDecoder = Callable[[Any], Any]
Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class MethodDef:
    """One exported method: number, name (as builtin-actors), handler and params decoder.

    `params` turns the decoded CBOR value into the handler's argument (usually `SomeParams.from_cbor`);
    None means the method takes no params, and the handler is called with the runtime only.
    """

    number: int
    name: str
    handler: Handler
    params: ParamsDecoder | None = None


@dataclass(frozen=True, slots=True)
class ActorDef:
    code: CID
    name: str
    state_type: type
    methods: tuple[MethodDef, ...]
    _by_number: dict[int, MethodDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table: dict[int, MethodDef] = {}
        for method in self.methods:
            if method.number in table:
                raise ValueError(f"{self.name}: method number {method.number} declared twice")
            table[method.number] = method
        object.__setattr__(self, "_by_number", table)

    def method(self, number: int) -> MethodDef | None:
        return self._by_number.get(number)

    def invoke(self, rt: Runtime, number: int, params: bytes) -> bytes:
        """Run method `number` with CBOR `params`; return the CBOR-encoded return value (b"" for none)."""
        method = self._by_number.get(number)
        if method is None:
            raise ActorError(ExitCode.ErrUnhandledMessage, f"{self.name} actor has no method {number}")
        if method.params is None:
            if params:
                raise ActorError(ExitCode.ErrSerialization, f"{self.name}.{method.name} takes no params")
            result = method.handler(rt)
        else:
            argument = decode_params(params, method.params, f"{self.name}.{method.name}")
            result = method.handler(rt, argument)
        return encode_return(result)


def decode_params(params: bytes, decoder: ParamsDecoder, what: str) -> Any:
    """Decode CBOR params for a method; malformed params are the caller's ErrSerialization."""
    if not params:
        raise ActorError(ExitCode.ErrSerialization, f"{what}: params are required")
    try:
        return decoder(dagcbor.decode(params))
    except DecodeError as exc:
        raise ActorError(ExitCode.ErrSerialization, f"{what}: bad params: {exc}") from None


def encode_return(result: Any) -> bytes:
    if result is None:
        return b""
    to_cbor = getattr(result, "to_cbor", None)
    return dagcbor.encode(to_cbor() if to_cbor is not None else result)


def encode_params(params: Any) -> bytes:
    """CBOR params for rt.send: a value with to_cbor(), a plain DAG-CBOR value, or None for none."""
    return encode_return(params)
