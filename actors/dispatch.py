"""How an actor declares itself: its code CID, its state type and its methods.

An actor's methods are one IntEnum in its types module (numbers and names as builtin-actors) and one
handler per method, marked with the member it serves:

    @exports(PowerMethod.CreateMiner)
    def create_miner(rt: Runtime, params: CreateMinerParams) -> CreateMinerReturn: ...

    ACTOR = ActorDef.of(POWER_ACTOR_CODE, "storagepower", PowerState, exported(PowerMethod, globals()))

`exported` collects the (enum member, handler) pairs of the handlers marked with the enum's members
in the namespaces given (an actor whose handlers live in several modules passes them all), and each
MethodDef reads the rest from its handler: the name from the enum member, the params type from the
annotation of the handler's second argument (a handler taking only `rt` takes no params) and the
return type from its return annotation, each turned into a codec by `chain.encoding.schema.kind_of`.
The VM's invoker maps code CIDs to these definitions and calls `invoke`, which decodes the CBOR params,
runs the handler and encodes its return value. Send = 0 never reaches an actor; Constructor = 1.
"""

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import ModuleType
from typing import Any, Final, TypeVar

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import Kind, kind_of
from chain.vm.exitcode import ActorError, ExitCode, serialization
from chain.vm.runtime import Runtime

METHOD_SEND: Final = 0
METHOD_CONSTRUCTOR: Final = 1

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)
_EXPORTS: Final = "__actor_methods__"


def exports(*methods: IntEnum) -> Callable[[H], H]:
    """Mark a handler as serving these methods (usually one; an alias number adds another)."""

    def mark(handler: H) -> H:
        setattr(handler, _EXPORTS, (*getattr(handler, _EXPORTS, ()), *methods))
        return handler

    return mark


def exported(
    methods: type[IntEnum], *namespaces: Mapping[str, Any] | ModuleType
) -> tuple[tuple[IntEnum, Handler], ...]:
    """The (method, handler) pairs of the handlers marked with `exports` for a member of `methods`
    in these namespaces (a module's globals(), or modules), in method number order."""
    pairs: dict[tuple[int, int], tuple[IntEnum, Handler]] = {}
    for namespace in namespaces:
        values = vars(namespace) if isinstance(namespace, ModuleType) else namespace
        for value in list(values.values()):
            for method in getattr(value, _EXPORTS, ()):
                if isinstance(method, methods):
                    pairs[(int(method), id(value))] = (method, value)
    return tuple(pairs[key] for key in sorted(pairs))


@dataclass(frozen=True, slots=True)
class MethodDef:
    """One exported method: number, name, handler, and the codecs of its params and return value
    (None: the method takes no params / returns nothing)."""

    number: int
    name: str
    handler: Handler
    params: Kind | None = None
    returns: Kind | None = None

    @classmethod
    def of(cls, method: IntEnum, handler: Handler) -> "MethodDef":
        """The method `method` served by `handler(rt[, params]) -> return`, typed by its annotations."""
        where = f"{type(method).__name__}.{method.name} ({handler.__qualname__})"
        hints = typing.get_type_hints(handler, include_extras=True)
        arguments = list(inspect.signature(handler).parameters)
        if not 1 <= len(arguments) <= 2:
            raise TypeError(f"{where}: a handler takes (rt) or (rt, params)")
        params = kind_of(hints[arguments[1]], f"{where} params") if len(arguments) == 2 else None
        returned = hints.get("return")
        returns = None if returned in (None, type(None)) else kind_of(returned, f"{where} return")
        return cls(int(method), method.name, handler, params, returns)

    def decode_params(self, params: bytes, what: str) -> Any:
        """The handler's argument from CBOR params; malformed params are the caller's ErrSerialization."""
        assert self.params is not None
        if not params:
            raise serialization(f"{what}: params are required")
        try:
            return self.params.decode(dagcbor.decode(params), f"{what} params")
        except DecodeError as exc:
            raise serialization(f"{what}: bad params", exc) from None

    def encode_return(self, result: Any) -> bytes:
        if self.returns is None:
            return b""
        encode = self.returns.encode
        return dagcbor.encode(result if encode is None else encode(result))


@dataclass(frozen=True, slots=True)
class ActorDef:
    code: CID
    name: str
    state_type: type
    methods: tuple[MethodDef, ...]
    _by_number: dict[int, MethodDef] = field(init=False, repr=False, compare=False)

    @classmethod
    def of(
        cls, code: CID, name: str, state_type: type, methods: Iterable[tuple[IntEnum, Handler]]
    ) -> "ActorDef":
        """An actor from (method enum member, handler) pairs."""
        return cls(code, name, state_type, tuple(MethodDef.of(m, h) for m, h in methods))

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
        what = f"{self.name}.{method.name}"
        if method.params is None:
            if params:
                raise serialization(f"{what} takes no params")
            result = method.handler(rt)
        else:
            result = method.handler(rt, method.decode_params(params, what))
        return method.encode_return(result)


def encode_params(params: Any) -> bytes:
    """CBOR params for rt.send: a value with to_cbor(), a plain DAG-CBOR value, or None for none."""
    if params is None:
        return b""
    to_cbor = getattr(params, "to_cbor", None)
    return dagcbor.encode(to_cbor() if to_cbor is not None else params)
