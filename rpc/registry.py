"""Every RPC method declared once: its Lotus name, permission, paths and handler.

    @method("ChainHead", perm=READ)
    async def chain_head(node: FullNode) -> TipSet:
        '''The heaviest tipset.'''
        return node.chain.head()

The handler's first argument is the node facade; its other parameters are the call's positional params,
in order, and their annotations (as declared types write them: `CID`, `Address`, `Uint64`, `X | None`,
`tuple[X, ...]`, a declared class) give each param's JSON decoder, through `chain.encoding.schema.
kind_of`. The return annotation gives the result's JSON encoder (`None`: the call answers `null`;
`AsyncIterator[X]`: a channel method, served over WebSocket only, whose values are X). A parameter
annotated `CallContext` (right after the node) is not an RPC param: it receives what the call knows
about itself (path, permissions, registry). The docstring's first paragraph is the method's
description.

`run=` may give a handler for a run of consecutive calls of the method in one JSON-RPC batch, or
waiting together on one WebSocket connection (each call's arguments in order -> each call's result or
exception), with the same effect as the calls in turn: MpoolPush's queues a run's messages together so
that they share worker-thread passes.

`memo=True` says the handler's result is immutable (a frozen value the node keeps, e.g. the head
TipSet): its encoded JSON is then kept and reused while the handler returns the same object, so
ChainHead encodes the head once per head change instead of once per call.

A method serves both `/rpc/v0` and `/rpc/v1` unless `api="v0"` or `api="v1"` says otherwise; a
declaration for one path wins over a both-paths declaration of the same name on that path, so a method
whose v0 shape differs is declared twice, once plainly and once with `api="v0"`.
"""

import collections.abc
import inspect
import types
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar

from chain.encoding.errors import DecodeError
from chain.encoding.schema import BIGINT_KIND, INT64_KIND, UINT64_KIND, BytesKind, Kind, ListKind, kind_of
from rpc.errors import InvalidParams

Api = Literal["v0", "v1"]
APIS: Final[tuple[Api, ...]] = ("v0", "v1")
DEFAULT_NAMESPACE: Final = "Filecoin"


class Perm(StrEnum):
    """Lotus's permissions (api.AllPermissions), weakest first."""

    READ = "read"
    WRITE = "write"
    SIGN = "sign"
    ADMIN = "admin"


READ: Final = Perm.READ
WRITE: Final = Perm.WRITE
SIGN: Final = Perm.SIGN
ADMIN: Final = Perm.ADMIN
ALL_PERMS: Final[tuple[str, ...]] = tuple(p.value for p in Perm)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a handler may learn about the call it answers (declare a `CallContext` parameter)."""

    api: Api
    perms: frozenset[str]
    registry: "Registry"
    secret: bytes | None  # the JWT secret, for AuthNew/AuthVerify
    network: str  # the address prefix results are written with


@dataclass(frozen=True, slots=True)
class Param:
    name: str  # the handler's parameter name
    annotation: Any
    kind: Kind


@dataclass(frozen=True, slots=True)
class Method:
    name: str  # Lotus's name without the namespace, e.g. "ChainHead" (what permission errors say)
    namespace: str
    perm: Perm
    apis: tuple[Api, ...]
    handler: Callable[..., Any]
    params: tuple[Param, ...]
    result: Kind | None  # None: void, the call answers null
    result_annotation: Any
    channel: bool  # the handler gives an async iterator of values, sent as xrpc.ch.val
    wants_context: bool
    description: str
    aliases: tuple[str, ...] = ()
    # Optional: answers a run of consecutive calls of this method (one JSON-RPC batch's, or those waiting
    # on one WebSocket connection) at once, given each call's arguments in order; each call's result or
    # exception, with the same effect as calling the handler on each in turn (MpoolPush: the run shares
    # its worker-thread passes).
    run: "RunHandler | None" = None
    # The result is immutable: its encoding may be reused while the handler returns the same object.
    memo: bool = False
    full_name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "full_name", f"{self.namespace}.{self.name}")

    def decode_params(self, raw: Any) -> list[Any]:
        """The handler's arguments from the call's `params` (absent or null: none); InvalidParams
        names the param and what was wrong."""
        if raw is None:
            raw = []
        elif type(raw) is not list:
            raise InvalidParams(
                f"params of '{self.full_name}' must be a JSON array (positional), got {_json_kind(raw)}"
            )
        if len(raw) != len(self.params):
            # go-jsonrpc's wording, which clients match on.
            raise InvalidParams(
                f"wrong param count (method '{self.full_name}'): {len(raw)} != {len(self.params)}"
            )
        out = []
        for i, (param, value) in enumerate(zip(self.params, raw, strict=True), 1):
            try:
                out.append(param.kind.from_json(value, param.name))
            except (DecodeError, ValueError, TypeError) as exc:
                raise InvalidParams(
                    f"decoding param {i} of '{self.full_name}' ({type_name(param.annotation)}): {exc}"
                ) from None
        return out

    def encode_result(self, value: Any, network: str) -> Any:
        if self.result is None:
            return None
        if not value and isinstance(self.result, ListKind):
            return []  # a list result is [] when empty (JavaScript clients iterate it), not Go's nil
        return self.result.to_json(value, network)

    def encode_item(self, value: Any, network: str) -> Any:
        """A channel method's value."""
        assert self.result is not None
        return self.result.to_json(value, network)

    async def invoke(self, node: Any, ctx: CallContext | None, args: list[Any]) -> Any:
        """Run the handler; a channel method gives its async iterator."""
        call_args = [node, ctx, *args] if self.wants_context else [node, *args]
        if self.channel and inspect.isasyncgenfunction(self.handler):
            return self.handler(*call_args)
        return await self.handler(*call_args)


def _json_kind(raw: Any) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(raw), type(raw).__name__
    )


def type_name(annotation: Any) -> str:
    """A readable name of a declared annotation: `CID`, `Address | None`, `tuple[Message, ...]`."""
    if annotation is None or annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base = typing.get_args(annotation)[0]
        for marker in getattr(annotation, "__metadata__", ()):
            if isinstance(marker, Kind):
                return _kind_label(marker, base)
        return type_name(base)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is tuple:
        return f"tuple[{type_name(typing.get_args(annotation)[0])}, ...]"
    if origin in (collections.abc.AsyncIterator, collections.abc.AsyncGenerator):
        return f"channel of {type_name(typing.get_args(annotation)[0])}"
    return getattr(annotation, "__name__", repr(annotation))


def _kind_label(kind: Kind, base: Any) -> str:
    names = {id(UINT64_KIND): "Uint64", id(INT64_KIND): "Int64", id(BIGINT_KIND): "BigInt"}
    if id(kind) in names:
        return names[id(kind)]
    if isinstance(kind, BytesKind):
        return "bytes"
    label: str | None = getattr(kind, "label", None)
    return label or str(getattr(base, "__name__", "value"))


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any] | AsyncIterator[Any]])
# (node, each call's arguments) -> each call's result, or the exception it raised.
RunHandler = Callable[[Any, list[list[Any]]], Awaitable[list[Any]]]


def _channel_item(hint: Any) -> Any | None:
    """X when hint is AsyncIterator[X] or AsyncGenerator[X, ...]; else None."""
    origin = typing.get_origin(hint)
    if origin in (
        collections.abc.AsyncIterator,
        collections.abc.AsyncGenerator,
        collections.abc.AsyncIterable,
    ):
        return typing.get_args(hint)[0]
    return None


def describe(
    handler: Callable[..., Any],
    name: str,
    *,
    perm: Perm,
    apis: tuple[Api, ...],
    namespace: str = DEFAULT_NAMESPACE,
    aliases: tuple[str, ...] = (),
    run: RunHandler | None = None,
    memo: bool = False,
) -> Method:
    """Read a handler's signature into a Method; a declaration the RPC layer cannot serve is a
    TypeError at import time, naming the method and the parameter."""
    where = f"RPC method {namespace}.{name}"
    if not inspect.iscoroutinefunction(handler) and not inspect.isasyncgenfunction(handler):
        raise TypeError(f"{where}: the handler must be an async function")
    hints = typing.get_type_hints(handler, include_extras=True)
    sig = inspect.signature(handler)
    params = list(sig.parameters.values())
    if not params:
        raise TypeError(f"{where}: the handler's first argument is the node")
    wants_context = len(params) > 1 and hints.get(params[1].name) is CallContext
    rpc_params = []
    for p in params[1 + wants_context :]:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{where}: parameter {p.name!r} must be positional")
        if p.name not in hints:
            raise TypeError(f"{where}: parameter {p.name!r} has no annotation")
        rpc_params.append(Param(p.name, hints[p.name], kind_of(hints[p.name], f"{where} param {p.name}")))
    if "return" not in hints:
        raise TypeError(f"{where}: the handler has no return annotation (say -> None for a void method)")
    ret = hints["return"]
    item = _channel_item(ret)
    result: Kind | None
    if item is not None:
        result = kind_of(item, f"{where} channel value")
    elif ret is None or ret is type(None):
        result = None
    else:
        result = kind_of(ret, f"{where} result")
    if inspect.isasyncgenfunction(handler) and item is None:
        raise TypeError(f"{where}: an async generator handler must be annotated -> AsyncIterator[X]")
    if run is not None and (item is not None or wants_context):
        raise TypeError(f"{where}: a run handler serves plain calls only (no channel, no CallContext)")
    if memo and (item is not None or result is None):
        raise TypeError(f"{where}: memo= needs a plain call with a result")
    doc = inspect.getdoc(handler) or ""
    description = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    return Method(
        name=name,
        namespace=namespace,
        perm=Perm(perm),
        apis=apis,
        handler=handler,
        params=tuple(rpc_params),
        result=result,
        result_annotation=ret,
        channel=item is not None,
        wants_context=wants_context,
        description=description,
        aliases=aliases,
        run=run,
        memo=memo,
    )


class Registry:
    """Methods by path and full name; one per (path, name), aliases resolved to their method."""

    def __init__(self, include: Iterable["Registry"] = ()) -> None:
        self._table: dict[Api, dict[str, Method]] = {api: {} for api in APIS}
        self._explicit: set[tuple[Api, str]] = set()  # declared for that path alone
        self._aliases: dict[Api, dict[str, str]] = {api: {} for api in APIS}
        for other in include:
            self.include(other)

    def method(
        self,
        name: str,
        *,
        perm: Perm,
        api: Api | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        aliases: tuple[str, ...] = (),
        run: RunHandler | None = None,
        memo: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated handler as method `namespace.name` (see the module docstring)."""

        def declare(handler: Handler) -> Handler:
            apis = APIS if api is None else (api,)
            self.add(
                describe(
                    handler,
                    name,
                    perm=perm,
                    apis=apis,
                    namespace=namespace,
                    aliases=aliases,
                    run=run,
                    memo=memo,
                ),
                explicit=api is not None,
            )
            return handler

        return declare

    def add(self, m: Method, *, explicit: bool) -> None:
        for api in m.apis:
            table = self._table[api]
            key = (api, m.full_name)
            current = table.get(m.full_name)
            if current is not None:
                was_explicit = key in self._explicit
                if was_explicit == explicit:
                    raise ValueError(f"RPC method {m.full_name} declared twice for {api}")
                if was_explicit:
                    continue  # the path's own declaration stays
            table[m.full_name] = m
            if explicit:
                self._explicit.add(key)
            for alias in m.aliases:
                other = self._aliases[api].get(alias)
                if other is not None and other != m.full_name:
                    raise ValueError(f"RPC alias {alias} names both {other} and {m.full_name}")
                self._aliases[api][alias] = m.full_name

    def include(self, other: "Registry") -> None:
        """Add every method of another registry (each keeps how it was declared)."""
        for api in APIS:
            for m in other._table[api].values():
                explicit = (api, m.full_name) in other._explicit
                current = self._table[api].get(m.full_name)
                if current is not None and current.handler is m.handler:
                    continue  # included already
                self.add(_for_api(m, api), explicit=explicit)

    def lookup(self, api: Api, name: str) -> Method | None:
        table = self._table[api]
        m = table.get(name)
        if m is None:
            canonical = self._aliases[api].get(name)
            if canonical is not None:
                m = table.get(canonical)
        return m

    def methods(self, api: Api) -> list[Method]:
        """The path's methods, by full name."""
        return [self._table[api][n] for n in sorted(self._table[api])]

    def aliases(self, api: Api) -> Mapping[str, str]:
        return dict(self._aliases[api])


def _for_api(m: Method, api: Api) -> Method:
    return m if m.apis == (api,) else replace(m, apis=(api,))


# The full node's methods: rpc/methods/<area>.py declare theirs here (`from rpc.registry import method`)
# and rpc.methods.full_node_registry() imports them all.
FULL_NODE: Final = Registry()
method: Final = FULL_NODE.method
