"""Message pool throughput: signed messages accepted per second, and block selection time.

A state with funded secp256k1 accounts; messages decoded from their wire bytes (nothing cached), each
one's signature checked against its sender, every entry rule run, and the message stored in a LevelDB
chain store as the node's pool does. The issue's target is MpoolPush over JSON-RPC >= 2,000 msgs/s, so
the pool alone must be well above it. Selection is timed on pools of 1,000 to 10,000 pending messages
from many senders, for a block of the full gas limit.
"""

import tempfile
import time
from pathlib import Path
from typing import Final

from bench.accounts import funded_state
from bench.common import report, section
from chain.chainstore.store import ChainStore
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.mpool.config import MpoolConfig
from chain.mpool.pool import MessagePool
from chain.params import DEVNET
from chain.state.amt import amt_v0_from_list
from chain.state.tree import Actor, StateTree
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.election import Ticket
from chain.types.message import Message, SignedMessage, sign_message
from chain.types.tipset import TipSet

SENDERS: Final = 100
PER_SENDER: Final = 100
TARGET: Final = 2000.0
FIL: Final = 10**18


class _TreeState:
    """The pool's StateAccess over one state tree: the state after the (only) tipset."""

    def __init__(self, tree: StateTree) -> None:
        self._tree = tree

    def actor_after(self, address: Address, ts: TipSet) -> Actor | None:
        return self._tree.get_actor(address)

    def resolve_to_key(self, address: Address, ts: TipSet) -> Address | None:
        return address if address.is_key_address() else None

    def base_fee(self, ts: TipSet) -> int:
        return 100


def _genesis(store: ChainStore, state_root: CID) -> TipSet:
    header = BlockHeader(
        miner=Address.new_id(1000),
        ticket=Ticket(b"bench"),
        election_proof=None,
        parents=(CID.hash_of(b"bench genesis parent"),),
        parent_weight=0,
        height=0,
        parent_state_root=state_root,
        parent_message_receipts=amt_v0_from_list(store.blockstore, []),
        messages=store.put_messages([], []),
        bls_aggregate=None,
        timestamp=0,
        block_sig=Signature(SigType.BLS, bytes(96)),
        parent_base_fee=100,
    )
    return store.set_genesis(header)


def _messages(keys: list[PrivateKey], senders: int, per_sender: int, premium_of: int = 0) -> list[bytes]:
    """Signed transfers as wire bytes, sender after sender in nonce order."""
    addresses = [Address.of_key(k) for k in keys]
    out = []
    for s in range(senders):
        for n in range(per_sender):
            msg = Message(
                to=addresses[(s + 1) % len(addresses)],
                from_=addresses[s],
                nonce=n,
                value=1000 + n,
                gas_limit=1_000_000 + 100_000 * ((s * 31 + n * 17) % 97),
                gas_fee_cap=200_000,
                gas_premium=100_000 + 1000 * ((s * 13 + n * premium_of) % 89),
                method=0,
            )
            out.append(sign_message(msg, keys[s]).to_bytes())
    return out


def _pool(store: ChainStore, tree: StateTree, genesis: TipSet) -> MessagePool:
    return MessagePool(store, _TreeState(tree), genesis, policy=DEVNET, config=MpoolConfig())


def _adds(store: ChainStore, tree: StateTree, genesis: TipSet, wire: list[bytes], local: bool) -> float:
    pool = _pool(store, tree, genesis)
    start = time.perf_counter()
    for raw in wire:
        pool.add(SignedMessage.from_bytes(raw), local=local)
    elapsed = time.perf_counter() - start
    if pool.size != len(wire):
        raise RuntimeError(f"the pool holds {pool.size} of {len(wire)} messages")
    return len(wire) / elapsed


def _verify_only(wire: list[bytes]) -> float:
    """Decoding and signature checks alone: the floor under any pool's cost per message."""
    start = time.perf_counter()
    for raw in wire:
        signed = SignedMessage.from_bytes(raw)
        signed.verify_signature(signed.message.from_)
    return len(wire) / (time.perf_counter() - start)


def _selection(store: ChainStore, tree: StateTree, genesis: TipSet, wire: list[bytes]) -> tuple[float, int]:
    pool = _pool(store, tree, genesis)
    for raw in wire:
        pool.add(SignedMessage.from_bytes(raw))
    best = float("inf")
    chosen = 0
    for _ in range(3):
        start = time.perf_counter()
        chosen = len(pool.select(genesis))
        best = min(best, time.perf_counter() - start)
    return best, chosen


def run() -> None:
    section("Message pool: signed secp256k1 messages accepted (signature and every entry check), selection")
    keys = [PrivateKey.derive(KeyType.SECP256K1, f"bench-mpool-{i}".encode()) for i in range(SENDERS)]
    with tempfile.TemporaryDirectory() as tmp, ChainStore.open(str(Path(tmp) / "datastore")) as store:
        tree = funded_state(store.blockstore, keys, 1_000_000 * FIL)
        genesis = _genesis(store, tree.flush())
        wire = _messages(keys, SENDERS, PER_SENDER)
        floor = _verify_only(wire)
        report("decode + signature check only", floor, "msgs/s", f"{len(wire)} msgs, {SENDERS} senders")
        rate = _adds(store, tree, genesis, wire, local=False)
        report(
            "add (from the network)",
            rate,
            "msgs/s",
            f"{rate / TARGET:.1f}x the RPC target, {rate / floor:.2f}x the above",
        )
        rate = _adds(store, tree, genesis, wire, local=True)
        report("push (local)", rate, "msgs/s", f"{rate / TARGET:.1f}x the RPC target of {TARGET:,.0f}")
        for senders, per_sender in ((100, 10), (100, 50), (100, 100)):
            pending = _messages(keys, senders, per_sender, premium_of=7)
            took, chosen = _selection(store, tree, genesis, pending)
            report(f"select from {len(pending):,} pending", took * 1000, "ms", f"{chosen} fit the block")
