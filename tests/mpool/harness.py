"""A small chain for message pool tests: a real state (tests/chain/vm_helpers), a chain store, tipsets
whose states are computed by apply_tipset, and `TreeState`, the pool's StateAccess over those states
(what the state manager will offer, done the simplest correct way).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from actors import builtin
from actors.account.types import AccountState
from chain.chainstore.metadata import MemoryMetadata, MetadataStore
from chain.chainstore.store import ChainStore
from chain.crypto.signature import SigType
from chain.encoding.cid import CID
from chain.mpool.config import MpoolConfig
from chain.mpool.pool import MessagePool
from chain.mpool.provider import ChainMessage
from chain.state.tree import Actor, StateTree
from chain.store.blockstore import get_cbor
from chain.types.address import Address
from chain.types.message import SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet, TipSetKey
from chain.vm.gas import compute_next_base_fee
from chain.vm.tipset_apply import BlockMessages, apply_tipset
from chain.vm.vm import VM, ApplyRet
from tests.chain.chain_helpers import ChainBuilder
from tests.chain.vm_helpers import FIL, World, make_world

GAS_LIMIT = 10_000_000
FEE_CAP = 1_000
PREMIUM = 100


@dataclass
class TreeState:
    """StateAccess and GasStateAccess over the states a Harness computed (state after each tipset)."""

    world: World
    store: ChainStore
    after: dict[TipSetKey, CID] = field(default_factory=dict)
    reads: int = 0

    def tree(self, ts: TipSet) -> StateTree:
        return StateTree.load(self.world.store, self.after[ts.key])

    def actor_after(self, address: Address, ts: TipSet) -> Actor | None:
        self.reads += 1
        return self.tree(ts).get_actor(address)

    def resolve_to_key(self, address: Address, ts: TipSet) -> Address | None:
        if address.is_key_address():
            return address
        actor = self.tree(ts).get_actor(address)
        if actor is None or actor.code != builtin.ACCOUNT_ACTOR_CODE:
            return None
        return AccountState.from_cbor(get_cbor(self.world.store, actor.head)).address

    def base_fee(self, ts: TipSet) -> int:
        used = sum(
            (m.message if isinstance(m, SignedMessage) else m).gas_limit
            for m in self.store.messages_for_tipset(ts)
        )
        return compute_next_base_fee(ts.blocks[0].parent_base_fee, used, len(ts.blocks), self.world.policy)

    def call_with_gas(self, message: ChainMessage, prior: Sequence[SignedMessage], ts: TipSet) -> ApplyRet:
        vm = VM(
            self.tree(ts),
            epoch=ts.height + 1,
            base_fee=ts.blocks[0].parent_base_fee,
            randomness=self.world.randomness,
            policy=self.world.policy,
            invoker=self.world.invoker,
        )
        for msg in prior:
            vm.apply_message(msg)
        return vm.apply_message(message)


@dataclass
class Harness:
    world: World
    store: ChainStore
    builder: ChainBuilder
    state: TreeState
    genesis: TipSet
    pool: MessagePool
    miner: Address
    mined: int = 0
    receipts: dict[TipSetKey, tuple[MessageReceipt, ...]] = field(default_factory=dict)

    def message(
        self,
        sender: int,
        *,
        nonce: int,
        value: int = 0,
        to: Address | None = None,
        gas_limit: int = GAS_LIMIT,
        fee_cap: int = FEE_CAP,
        premium: int = PREMIUM,
        params: bytes = b"",
        method: int = 0,
    ) -> SignedMessage:
        addresses = self.world.addresses
        return self.world.message(
            sender,
            addresses[(sender + 1) % len(addresses)] if to is None else to,
            value=value,
            method=method,
            params=params,
            nonce=nonce,
            gas_limit=gas_limit,
            fee_cap=fee_cap,
            premium=premium,
        )

    def mine(self, parent: TipSet, messages: Sequence[SignedMessage] = (), *, label: str = "") -> TipSet:
        """A one-block tipset on parent carrying messages, its state computed, stored (not the head)."""
        self.mined += 1
        bls = [m for m in messages if m.signature.type == SigType.BLS]
        secpk = [m for m in messages if m.signature.type != SigType.BLS]
        meta = self.store.put_messages(bls, secpk)
        header = self.builder.header(
            parent,
            miner=self.miner.id,
            label=label or str(self.mined),
            messages=meta,
            state_root=self.state.after[parent.key],
        )
        ts = TipSet((header,))
        self.store.put_tipset(ts)
        result = apply_tipset(
            self.world.store,
            self.state.after[parent.key],
            parent.height,
            ts.height,
            [BlockMessages(self.miner, [m.message for m in bls], secpk)],
            base_fee=header.parent_base_fee,
            randomness=self.world.randomness,
            policy=self.world.policy,
            invoker=self.world.invoker,
        )
        self.state.after[ts.key] = result.state_root
        self.receipts[ts.key] = result.receipts
        return ts

    def set_head(self, ts: TipSet) -> None:
        self.store.set_head(ts, ts.height)


def make_harness(
    accounts: int = 4,
    balance: int = 1_000 * FIL,
    *,
    config: MpoolConfig | None = None,
    base_fee: int = 100,
    local_store: MetadataStore | None = None,
    bls_accounts: bool = False,
) -> Harness:
    from chain.crypto.keys import KeyType

    world = make_world(
        accounts=accounts, balance=balance, key_type=KeyType.BLS if bls_accounts else KeyType.SECP256K1
    )
    store = ChainStore(world.store, MemoryMetadata())
    root = world.tree.flush()
    builder = ChainBuilder(store, root, base_fee=base_fee)
    state = TreeState(world, store)
    genesis = builder.genesis()
    state.after[genesis.key] = root
    pool = MessagePool(store, state, genesis, policy=world.policy, config=config, local_store=local_store)
    store.on_head_change(pool.head_change)
    # The last account mines (the stand-in reward actor pays it the tips).
    return Harness(world, store, builder, state, genesis, pool, world.ids[-1])
