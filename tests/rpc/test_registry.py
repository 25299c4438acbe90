"""Declaring methods: what a declaration reads from the handler, and what it refuses."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from chain.encoding.cid import CID
from chain.encoding.schema import Uint64
from chain.types.address import Address
from rpc.dispatch import Dispatcher
from rpc.errors import InvalidParams
from rpc.methods import full_node_registry
from rpc.registry import ADMIN, READ, CallContext, Method, Registry


def test_a_declaration_reads_the_handler() -> None:
    reg = Registry()

    @reg.method("Thing", perm=ADMIN)
    async def thing(
        node: Any, ctx: CallContext, cid: CID, who: Address | None, n: Uint64
    ) -> tuple[Address, ...]:
        """Do a thing.

        More words that are not the summary."""
        return ()

    m = reg.lookup("v1", "Filecoin.Thing")
    assert m is not None and reg.lookup("v0", "Filecoin.Thing") is m
    assert [p.name for p in m.params] == ["cid", "who", "n"]
    assert m.wants_context and not m.channel and m.perm == "admin" and m.description == "Do a thing."
    assert m.decode_params([{"/": str(CID.hash_of(b"a"))}, None, 3])[1:] == [None, 3]
    with pytest.raises(
        InvalidParams, match=r"decoding param 3 of 'Filecoin.Thing' \(Uint64\): n: expected an unsigned"
    ):
        m.decode_params([{"/": str(CID.hash_of(b"a"))}, None, -1])


def test_channel_methods_and_void_results() -> None:
    reg = Registry()

    @reg.method("Sub", perm=READ)
    async def sub(node: Any) -> AsyncIterator[Uint64]:
        yield 1

    @reg.method("Nothing", perm=READ)
    async def nothing(node: Any) -> None:
        pass

    sub_m, nothing_m = reg.lookup("v1", "Filecoin.Sub"), reg.lookup("v1", "Filecoin.Nothing")
    assert sub_m is not None and sub_m.channel
    assert nothing_m is not None and nothing_m.result is None and nothing_m.encode_result(None, "t") is None


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("def h(node): return 1", "must be an async function"),
        ("async def h(node, x: int) -> None: pass", "say Uint64, Int64 or BigInt"),
        ("async def h(node, x) -> None: pass", "parameter 'x' has no annotation"),
        ("async def h(node, *xs: Uint64) -> None: pass", "must be positional"),
        ("async def h(node): pass", "no return annotation"),
        ("async def h(node) -> dict: return {}", "no codec"),
        ("async def h(node) -> Uint64:\n    yield 1", "must be annotated -> AsyncIterator"),
        ("async def h() -> None: pass", "first argument is the node"),
    ],
)
def test_bad_declarations_fail_at_import(source: str, fragment: str) -> None:
    scope: dict[str, Any] = {"Uint64": Uint64}
    exec(source, scope)
    with pytest.raises(TypeError, match=fragment):
        Registry().method("Bad", perm=READ)(scope["h"])


def test_path_specific_declarations_win_in_either_order() -> None:
    for v0_first in (False, True):
        reg = Registry()

        async def both(node: Any, a: Uint64, b: Uint64) -> Uint64:
            return a

        async def only_v0(node: Any, a: Uint64) -> Uint64:
            return a

        decls = [(only_v0, "v0"), (both, None)] if v0_first else [(both, None), (only_v0, "v0")]
        for handler, api in decls:
            reg.method("Shape", perm=READ, api=api)(handler)  # type: ignore[arg-type]
        v0, v1 = reg.lookup("v0", "Filecoin.Shape"), reg.lookup("v1", "Filecoin.Shape")
        assert v0 is not None and v1 is not None
        assert (len(v0.params), len(v1.params)) == (1, 2)


def test_duplicates_are_refused() -> None:
    reg = Registry()

    async def h(node: Any) -> None:
        pass

    reg.method("Dup", perm=READ)(h)
    with pytest.raises(ValueError, match="declared twice for v0"):
        reg.method("Dup", perm=READ)(h)
    reg.method("Only1", perm=READ, api="v1")(h)
    with pytest.raises(ValueError, match="declared twice for v1"):
        reg.method("Only1", perm=READ, api="v1")(h)


def test_include_keeps_declarations_and_is_idempotent() -> None:
    full = full_node_registry()
    reg = Registry(include=[full])
    reg.include(full)
    assert [m.full_name for m in reg.methods("v1")] == [m.full_name for m in full.methods("v1")]
    assert reg.lookup("v1", "rpc.discover") is not None


async def test_a_memo_result_is_encoded_once_per_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """A memo method's encoding is reused while the handler returns the very same object; another
    object, even an equal one, is encoded anew, and the answers carry each request's own id."""
    reg = Registry()

    @dataclass
    class Node:
        value: tuple[Address, ...]

    @reg.method("Held", perm=READ, memo=True)
    async def held(node: Node) -> tuple[Address, ...]:
        return node.value

    node = Node((Address.new_id(1),))
    dispatcher = Dispatcher(reg, node, secret=None, network="t")
    m = reg.lookup("v1", "Filecoin.Held")
    assert m is not None and m.memo
    seen: list[Any] = []

    def body(request_id: int) -> bytes:
        return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "Filecoin.Held"})

    async def answer(request_id: int) -> Any:
        status, out = await dispatcher.handle_body("v1", frozenset({"read"}), body(request_id))
        assert status == 200
        return orjson.loads(out)

    original = Method.encode_result

    def counting(self: Method, value: Any, network: str) -> Any:
        seen.append(value)
        return original(self, value, network)

    monkeypatch.setattr(Method, "encode_result", counting)
    assert await answer(1) == {"jsonrpc": "2.0", "id": 1, "result": ["t01"]}
    assert await answer(2) == {"jsonrpc": "2.0", "id": 2, "result": ["t01"]}
    assert len(seen) == 1
    node.value = (Address.new_id(2), Address.new_id(3))
    assert (await answer(3))["result"] == ["t02", "t03"]
    node.value = (Address.new_id(2), Address.new_id(3))  # equal, not the same object
    assert (await answer(4))["result"] == ["t02", "t03"]
    assert len(seen) == 3


@pytest.mark.parametrize(
    "source",
    ["async def h(node) -> None: pass", "async def h(node) -> AsyncIterator[Uint64]:\n    yield 1"],
)
def test_memo_needs_a_plain_result(source: str) -> None:
    scope: dict[str, Any] = {"Uint64": Uint64, "AsyncIterator": AsyncIterator}
    exec(source, scope)
    with pytest.raises(TypeError, match="memo= needs a plain call with a result"):
        Registry().method("Bad", perm=READ, memo=True)(scope["h"])
