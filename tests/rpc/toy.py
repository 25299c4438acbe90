"""A fake node and toy methods that exercise the RPC machinery without a chain."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio

from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.encoding.schema import BigInt, ChainEpoch, LotusJson, Uint64
from chain.params import DEVNET, Policy
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.tipset import TipSet, TipSetKey
from rpc.errors import RpcError, actor_not_found, null_round
from rpc.methods import full_node_registry
from rpc.registry import ADMIN, READ, SIGN, WRITE, Registry

SECRET = b"k" * 32


@dataclass
class FakeNode:
    """What the common methods read of a node, and a record of what toy methods did."""

    policy: Policy = DEVNET
    peer_id: str = "12D3KooWToyPeer"
    start_time: datetime = field(default_factory=lambda: datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))
    shutdowns: int = 0
    head: TipSet | None = None
    channel_closed: trio.Event = field(default_factory=trio.Event)
    produced: int = 0

    def request_shutdown(self) -> None:
        self.shutdowns += 1


def sample_tipset(blocks: int = 2, height: int = 100) -> TipSet:
    link = CID.hash_of(b"parent")
    headers = [
        BlockHeader(
            miner=Address.new_id(1000 + i),
            ticket=Ticket(bytes([i + 1]) * 96),
            election_proof=ElectionProof(1, b"\x02" * 96),
            beacon_entries=(BeaconEntry(height, b"\x03" * 96),),
            win_post_proof=(PoStProof(3, b"\x04" * 192),),
            parents=(link,),
            parent_weight=123456789,
            height=height,
            parent_state_root=link,
            parent_message_receipts=link,
            messages=link,
            bls_aggregate=Signature(SigType.BLS, b"\xc0" + bytes(95)),
            timestamp=1_700_000_000,
            block_sig=Signature(SigType.BLS, b"\xa0" + bytes(95)),
            parent_base_fee=100,
        )
        for i in range(blocks)
    ]
    return TipSet(tuple(headers))


TOY = Registry(include=[full_node_registry()])


@TOY.method("ToyHead", perm=READ)
async def toy_head(node: FakeNode) -> TipSet:
    """The fake head."""
    assert node.head is not None
    return node.head


@TOY.method("ToyEcho", perm=READ)
async def toy_echo(
    node: FakeNode, cid: CID, amount: BigInt, to: Address | None, keys: tuple[TipSetKey, ...]
) -> str:
    """Echo the decoded params as text."""
    return f"{cid} {amount} {to} {len(keys)}"


@TOY.method("ToyVoid", perm=WRITE)
async def toy_void(node: FakeNode) -> None:
    """Nothing."""


@TOY.method("ToySign", perm=SIGN)
async def toy_sign(node: FakeNode) -> str:
    return "signed"


@TOY.method("ToyAdmin", perm=ADMIN)
async def toy_admin(node: FakeNode) -> str:
    return "admin"


@TOY.method("ToyEmptyList", perm=READ)
async def toy_empty_list(node: FakeNode) -> tuple[Address, ...]:
    return ()


@TOY.method("ToyCrash", perm=READ)
async def toy_crash(node: FakeNode) -> str:
    raise RuntimeError("secret internals /home/node/key")


@TOY.method("ToyActorNotFound", perm=READ)
async def toy_actor_not_found(node: FakeNode) -> str:
    raise actor_not_found()


@TOY.method("ToyNullRound", perm=READ)
async def toy_null_round(node: FakeNode, epoch: ChainEpoch) -> str:
    raise null_round(epoch)


@TOY.method("ToyRefuse", perm=READ)
async def toy_refuse(node: FakeNode) -> str:
    raise RpcError("refused for a reason")


@TOY.method("ToyShape", perm=READ)
async def toy_shape_v1(
    node: FakeNode, cid: CID, confidence: Uint64, limit: ChainEpoch | None, replaced: bool
) -> str:
    """The v1 shape: four params."""
    return f"v1 {confidence} {limit} {replaced}"


@TOY.method("ToyShape", perm=READ, api="v0")
async def toy_shape_v0(node: FakeNode, cid: CID, confidence: Uint64) -> str:
    """The v0 shape: two params."""
    return f"v0 {confidence}"


@TOY.method("ToyOnlyV0", perm=READ, api="v0")
async def toy_only_v0(node: FakeNode) -> str:
    return "v0 only"


@TOY.method("ToySleep", perm=READ)
async def toy_sleep(node: FakeNode, seconds: Uint64) -> str:
    await trio.sleep(seconds)
    return "woke"


@TOY.method("ToyTicks", perm=READ)
async def toy_ticks(node: FakeNode, count: Uint64) -> AsyncIterator[Uint64]:
    """count values, then the channel closes."""
    for i in range(count):
        yield i


@TOY.method("ToyForever", perm=READ)
async def toy_forever(node: FakeNode, size: Uint64) -> AsyncIterator[str]:
    """Values of `size` characters as fast as they are taken, until cancelled."""
    try:
        while True:
            node.produced += 1
            yield "x" * size
            await trio.sleep(0)
    finally:
        node.channel_closed.set()


@TOY.method("ToyRefusedChannel", perm=READ)
async def toy_refused_channel(node: FakeNode, ok: bool) -> AsyncIterator[Uint64]:
    """A channel method that may fail before its channel opens."""
    if not ok:
        raise RpcError("no channel for you")
    return _ticks(3)


async def _ticks(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class ToyHeadChange(LotusJson):
    """The shape of Lotus's api.HeadChange: a JSON-only type holding a TipSet."""

    type: str
    val: TipSet


@TOY.method("ToyNotify", perm=READ)
async def toy_notify(node: FakeNode) -> AsyncIterator[tuple[ToyHeadChange, ...]]:
    """[current], then one apply."""
    assert node.head is not None
    yield (ToyHeadChange("current", node.head),)
    yield (ToyHeadChange("apply", sample_tipset(1, height=101)),)


@TOY.method("ToyQuiet", perm=READ)
async def toy_quiet(node: FakeNode) -> AsyncIterator[Uint64]:
    """A channel that stays open and sends nothing."""
    await trio.sleep_forever()
    yield 0
