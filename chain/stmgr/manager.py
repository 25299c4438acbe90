"""The StateManager: the state after each tipset, and everything asked of the state at a tipset.

`state_of(ts)` is the state after applying ts's messages to ts's parent state (with the block rewards
and cron, chain/vm/tipset_apply.py): the ParentStateRoot and ParentMessageReceipts that ts's children
carry. It is computed once: kept in a bounded LRU in memory and in a StateIndex (the repo's LevelDB), so
a restarted node does not execute the chain again. The state tree of the last computed tipset stays
open, so that the next tipset on top of it starts from decoded HAMT nodes and cached actors instead of
loading everything from the root again. The VM writes through a buffer (chain/stmgr/buffered.py) whose
blocks reach the store in one batch once the tipset is computed, before its index entry.

Queries "at a tipset" read the tipset's parent state, as Lotus's StateManager does (StateGetActor at
the head answers from the head's ParentStateRoot): that state is in every header and needs no
execution.

Which messages a tipset applies is the chain store's rule (Lotus BlockMsgsForTipset): blocks in tipset
order, each block's BLS then secp256k1 messages, and of a sender's messages only those continuing its
nonce sequence (the first message seen fixes the start), so a message two blocks both carry is applied
once.

The message pool reads the state through this class too (chain/mpool/provider.py StateAccess and
GasStateAccess: actor_after, resolve_to_key, base_fee, call_with_gas), all in the state *after* a
tipset, which is what a message mined on it executes on.

Thread safety: state_of computes under one lock (one writer); every query loads its own StateTree from
the store, so queries may run in other threads meanwhile. Execution is CPU-bound and synchronous:
callers on the trio loop use trio.to_thread.run_sync.
"""

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import structlog

from actors.miner.deadlines import Deadline, Partition
from actors.miner.policy import DeadlineInfo
from actors.miner.state import MinerInfo, SectorOnChainInfo
from actors.multisig.types import Transaction
from chain.chainstore.store import ChainStoreError
from chain.consensus.base_fee import compute_base_fee
from chain.encoding.cid import CID
from chain.params import Policy
from chain.state.amt import amt_v0_to_list
from chain.state.tree import Actor, StateTree
from chain.stmgr import actors as actor_queries
from chain.stmgr import market as market_queries
from chain.stmgr import miners as miner_queries
from chain.stmgr import multisig as multisig_queries
from chain.stmgr.buffered import BufferedBlockstore
from chain.stmgr.chain import LOOKBACK_NO_LIMIT, ChainMessage, ChainReader
from chain.stmgr.index import StateIndex
from chain.stmgr.randomness import BeaconRounds, ChainRandomness
from chain.stmgr.search import MsgLookup, search_msg
from chain.stmgr.stretch import ChainStretches
from chain.store.blockstore import Blockstore
from chain.store.lru import Lru
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.bitfield import BitField
from chain.types.message import BLOCK_GAS_LIMIT, Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet, TipSetKey
from chain.vm.abort import StoreFailed
from chain.vm.circulating import circulating_supply
from chain.vm.invoker import DEFAULT_INVOKER, Invoker
from chain.vm.syscalls import LookbackState
from chain.vm.tipset_apply import BlockMessages, TipsetResult, apply_tipset
from chain.vm.vm import NETWORK_VERSION, VM, ApplyRet

DEFAULT_CACHE_SIZE: Final = 256
LOOKBACK_CACHE_SIZE: Final = 256
# State trees read_tree keeps open per thread: a block's parent and lookback states, and the next ones.
READ_TREES: Final = 8

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TipsetState:
    """The state after a tipset's messages: its root, the root of its receipts AMT, and the receipts
    (one per applied message, in messages_for_tipset order)."""

    state_root: CID
    receipts_root: CID
    receipts: tuple[MessageReceipt, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class CallResult:
    """What applying a message on top of a tipset without keeping it gave (Lotus InvocResult)."""

    message: Message
    receipt: MessageReceipt
    error: str | None
    duration: float  # seconds


class NoLookbackState(ValueError):
    """No lookback state for a round on a chain (the VM reads this as "no answer")."""


class MessageNotFound(LookupError):
    """A message that is not where the caller said it would be."""


class StateManager:
    """See the module doc. `beacon` maps epochs to beacon rounds (chain/consensus/beacon.py MockBeacon);
    `index` persists computed states (None: memory only); `cache_size` bounds the in-memory cache."""

    def __init__(
        self,
        chain: ChainReader,
        *,
        policy: Policy,
        beacon: BeaconRounds,
        index: StateIndex | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        keep_tree_open: bool = True,
        invoker: Invoker = DEFAULT_INVOKER,
        network_version: int = NETWORK_VERSION,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self.chain = chain
        self.policy = policy
        self.beacon = beacon
        self.invoker = invoker
        self.network_version = network_version
        self._index = index
        self._cache: Lru[TipSetKey, TipsetState] = Lru(cache_size)
        self._compute_lock = threading.Lock()
        self._keep_tree_open = keep_tree_open
        self._buffer = BufferedBlockstore(chain.blockstore)
        self._open_tree: StateTree | None = None
        self._open_root: CID | None = None
        self._lookbacks: Lru[tuple[TipSetKey, int], tuple[TipSet, CID]] = Lru(LOOKBACK_CACHE_SIZE)
        self._stretches = ChainStretches(policy.chain_finality)
        self.executions = 0  # tipsets executed by this manager (not found in the cache or the index)
        self.tree_reuses = 0  # executions that started from the open state tree
        self._read_trees = threading.local()  # its "lru": this thread's read_tree trees

    @property
    def store(self) -> Blockstore:
        return self.chain.blockstore

    @property
    def cached(self) -> int:
        """How many tipset states the in-memory cache holds."""
        return len(self._cache)

    # -- the state after a tipset ---------------------------------------------------------------------
    def state_of(self, ts: TipSet) -> TipsetState:
        """The state after ts's messages (the ParentStateRoot and ParentMessageReceipts of its children).

        Raises what execution raises (chain/vm/tipset_apply.py ImplicitMessageFailed, a missing block)
        when the state cannot be computed; nothing is cached then.
        """
        found = self._cache.get(ts.key)
        if found is not None:
            return found
        with self._compute_lock:
            found = self._cache.get(ts.key)
            if found is not None:
                return found
            state = self._load_indexed(ts) or self._compute(ts)
            self._cache.put(ts.key, state)
            return state

    def _load_indexed(self, ts: TipSet) -> TipsetState | None:
        if ts.height == 0:
            # The genesis executes nothing: its own roots are its state (Lotus TipSetState).
            header = ts.blocks[0]
            return TipsetState(header.parent_state_root, header.parent_message_receipts, ())
        if self._index is None:
            return None
        roots = self._index.get(ts.key)
        if roots is None:
            return None
        state_root, receipts_root = roots
        receipts = tuple(MessageReceipt.from_cbor(r) for r in amt_v0_to_list(self.store, receipts_root))
        return TipsetState(state_root, receipts_root, receipts)

    def _compute(self, ts: TipSet) -> TipsetState:
        start = time.perf_counter()
        tree = self._open_tree if self._open_root == ts.parent_state_root else None
        self._open_tree = self._open_root = None
        reused = tree is not None
        buffer = self._buffer
        try:
            if tree is None:
                tree = StateTree.load(buffer, ts.parent_state_root)
            result = self._execute(ts, buffer, tree)
            written = buffer.commit()
        except BaseException:
            buffer.discard()
            raise
        if self._index is not None:
            self._index.put(ts.key, result.state_root, result.receipts_root)
        if self._keep_tree_open:
            self._open_tree, self._open_root = tree, result.state_root
        self.executions += 1
        self.tree_reuses += reused
        _log.debug(
            "tipset executed",
            height=ts.height,
            blocks=len(ts.blocks),
            messages=len(result.receipts),
            blocks_written=written,
            open_tree=reused,
            ms=round((time.perf_counter() - start) * 1000, 1),
        )
        return TipsetState(result.state_root, result.receipts_root, result.receipts)

    def _execute(self, ts: TipSet, store: BufferedBlockstore, tree: StateTree) -> TipsetResult:
        parent = self.chain.load_tipset(ts.parents)
        blocks = []
        for header, messages in zip(ts.blocks, self.chain.block_messages_for_tipset(ts), strict=True):
            if header.election_proof is None:
                raise ValueError(f"block {header.cid()} has no election proof")
            win_count = header.election_proof.win_count
            blocks.append(
                BlockMessages(header.miner, messages.bls_messages, messages.secpk_messages, win_count)
            )
        return apply_tipset(
            store,
            ts.parent_state_root,
            parent.height,
            ts.height,
            blocks,
            base_fee=ts.blocks[0].parent_base_fee,
            randomness=self.randomness(ts),
            policy=self.policy,
            network_version=self.network_version,
            invoker=self.invoker,
            tree=tree,
            lookback_state=self.lookback_states(ts),
        )

    def messages_for_tipset(self, ts: TipSet) -> list[ChainMessage]:
        """The messages ts applies, in order (the chain store's rule); receipts of state_of(ts) match
        them one to one."""
        return self.chain.messages_for_tipset(ts)

    # -- randomness and lookback ----------------------------------------------------------------------
    def randomness(self, ts: TipSet) -> ChainRandomness:
        return ChainRandomness(self.chain, ts, self.beacon)

    def draw_chain_randomness(self, ts: TipSet, tag: int, epoch: int, entropy: bytes) -> bytes:
        """Lotus StateGetRandomnessFromTickets."""
        return self.randomness(ts).draw_chain(tag, epoch, entropy)

    def draw_beacon_randomness(self, ts: TipSet, tag: int, epoch: int, entropy: bytes) -> bytes:
        """Lotus StateGetRandomnessFromBeacon."""
        return self.randomness(ts).draw_beacon(tag, epoch, entropy)

    def beacon_entry(self, ts: TipSet, epoch: int) -> BeaconEntry:
        """The beacon entry the chain ending at ts uses for epoch's beacon randomness."""
        return self.randomness(ts).beacon_entry(epoch)

    def lookback(self, base: TipSet, round_: int) -> tuple[TipSet, CID]:
        """The tipset and state an election at round_ on top of base looks back to (Lotus
        GetLookbackTipSetForRound): the state after the tipset at round_ - finality (the genesis for
        early rounds), read from the next tipset's header.

        When more null rounds than the lookback separate round_ from base, Lotus has no answer (after
        network version 3) and no block can follow base again; filpy takes base and the state after
        it, Lotus's rule before version 4, so that a devnet stopped for longer than chain_finality
        epochs can resume. No chain Lotus accepts has such a gap, so none is judged differently."""
        found = self.lookback_without_execution(base, round_)
        return found if found is not None else (base, self.state_of(base).state_root)

    def lookback_without_execution(self, base: TipSet, round_: int) -> tuple[TipSet, CID] | None:
        """lookback(base, round_) when a header names its state, None when it is the state after base
        itself (more null rounds than the lookback), which only executing base gives."""
        target = self._lookback_target(round_)
        if target >= base.height:
            return None
        # Remembered: validating a block asks for it several times (and checks computed ahead before),
        # and finding it walks the chain from base, unless a stretch of base's chain seen before holds
        # it (chain/stmgr/stretch.py). Headers are content-addressed: never stale.
        found = self._lookbacks.get((base.key, target))
        if found is None:
            near = self._stretches.first_above(base, target + 1)
            if near is None:
                after = self.chain.get_tipset_by_height(target + 1, base, prev=False)
                found = (self.chain.load_tipset(after.parents), after.parent_state_root)
            else:
                after, parent = near
                found = (parent, after.parent_state_root)
            self._lookbacks.put((base.key, target), found)
        return found

    def _lookback_target(self, round_: int) -> int:
        lookback = self.policy.chain_finality
        return round_ - lookback if round_ > lookback else 0

    def lookback_states(self, ts: TipSet) -> LookbackState:
        """The VM's lookback states while it executes ts, or a message on top of it (Lotus
        LookbackStateGetterForTipset): for a round, the state tree an election at that round looks back
        to on ts's chain, where the consensus-fault syscall reads the worker key of a block of that
        height. A round whose lookback is not below ts (more null rounds than finality, or a round far
        in ts's future) has none (NoLookbackState), as Lotus since network version 4: ts's own state is
        what is being computed. A tipset of ts's chain missing from the store aborts execution
        (StoreFailed): it is this node's store failing, not an answer."""

        def state_at(round_: int) -> StateTree:
            target = self._lookback_target(round_)
            if target >= ts.height:
                raise NoLookbackState(
                    f"round {round_} looks back to epoch {target}, not below the tipset at {ts.height}"
                )
            try:
                _, root = self.lookback(ts, round_)
            except ChainStoreError as exc:
                raise StoreFailed(
                    f"lookback of round {round_} from the tipset at {ts.height}: {exc}"
                ) from exc
            return self.tree(root)

        return state_at

    # -- state trees ----------------------------------------------------------------------------------
    def tree(self, state_root: CID) -> StateTree:
        """A StateTree at state_root for reading (its own instance: safe to use in any one thread)."""
        return StateTree.load(self.store, state_root)

    def parent_tree(self, ts: TipSet) -> StateTree:
        return self.tree(ts.parent_state_root)

    def read_tree(self, state_root: CID) -> StateTree:
        """A StateTree at state_root shared by the calling thread's readers: never to be changed.

        Validating a block (and computing its checks ahead) opens the same few states (its parent's,
        its lookback's) several times; a fresh tree copies the actors HAMT's root node from the block
        cache and reads again every node a previous tree had loaded. A tree found changed (its root
        no longer state_root) is opened again."""
        trees: Lru[CID, StateTree] | None = getattr(self._read_trees, "lru", None)
        if trees is None:
            trees = self._read_trees.lru = Lru(READ_TREES)
        tree = trees.get(state_root)
        if tree is None or tree.root != state_root:
            tree = StateTree.load(self.store, state_root)
            trees.put(state_root, tree)
        return tree

    def read_parent_tree(self, ts: TipSet) -> StateTree:
        return self.read_tree(ts.parent_state_root)

    # -- queries at a tipset (its parent state) -------------------------------------------------------
    def get_actor(self, address: Address, ts: TipSet) -> Actor:
        return actor_queries.get_actor(self.parent_tree(ts), address)

    def lookup_id(self, address: Address, ts: TipSet) -> Address:
        return actor_queries.lookup_id(self.parent_tree(ts), address)

    def account_key(self, address: Address, ts: TipSet) -> Address:
        """The key address of an account (Lotus StateAccountKey); if ts's parent state does not know
        it yet, the state after ts (as Lotus ResolveToDeterministicAddress)."""
        try:
            return actor_queries.resolve_to_key(self.parent_tree(ts), address)
        except actor_queries.ActorNotFound:
            return actor_queries.resolve_to_key(self.tree(self.state_of(ts).state_root), address)

    def lookup_robust_address(self, address: Address, ts: TipSet) -> Address:
        return actor_queries.lookup_robust_address(self.parent_tree(ts), address)

    def read_state(self, address: Address, ts: TipSet) -> tuple[Actor, Any]:
        return actor_queries.read_state(self.parent_tree(ts), address, self.invoker)

    def list_actors(self, ts: TipSet) -> list[Address]:
        return actor_queries.list_actors(self.parent_tree(ts))

    def network_name(self, ts: TipSet) -> str:
        return actor_queries.network_name(self.parent_tree(ts))

    def network_version_at(self, epoch: int) -> int:
        """filpy runs one network version from genesis (no upgrades)."""
        return self.network_version

    def circulating_supply(self, ts: TipSet) -> int:
        return circulating_supply(self.parent_tree(ts))

    def miner_info(self, miner: Address, ts: TipSet) -> MinerInfo:
        return miner_queries.miner_info(self.parent_tree(ts), miner)

    def miner_power(self, miner: Address, ts: TipSet) -> miner_queries.MinerPower:
        return miner_queries.miner_power(self.parent_tree(ts), self.policy, miner)

    def list_miners(self, ts: TipSet) -> list[Address]:
        return miner_queries.list_miners(self.parent_tree(ts))

    def miner_sectors(
        self, miner: Address, ts: TipSet, numbers: BitField | None = None
    ) -> list[SectorOnChainInfo]:
        return miner_queries.miner_sectors(self.parent_tree(ts), miner, numbers)

    def miner_active_sectors(self, miner: Address, ts: TipSet) -> list[SectorOnChainInfo]:
        tree = self.parent_tree(ts)
        return miner_queries.miner_sectors(tree, miner, miner_queries.miner_active_sectors(tree, miner))

    def sector_info(self, miner: Address, number: int, ts: TipSet) -> SectorOnChainInfo | None:
        return miner_queries.sector_info(self.parent_tree(ts), miner, number)

    def miner_deadlines(self, miner: Address, ts: TipSet) -> list[Deadline]:
        return miner_queries.miner_deadlines(self.parent_tree(ts), miner)

    def miner_partitions(self, miner: Address, deadline: int, ts: TipSet) -> list[Partition]:
        return miner_queries.miner_partitions(self.parent_tree(ts), miner, deadline)

    def miner_faults(self, miner: Address, ts: TipSet) -> BitField:
        return miner_queries.miner_faults(self.parent_tree(ts), miner)

    def miner_recoveries(self, miner: Address, ts: TipSet) -> BitField:
        return miner_queries.miner_recoveries(self.parent_tree(ts), miner)

    def proving_deadline(self, miner: Address, ts: TipSet) -> DeadlineInfo:
        return miner_queries.proving_deadline(self.parent_tree(ts), self.policy, miner, ts.height)

    def available_balance(self, miner: Address, ts: TipSet) -> int:
        return miner_queries.available_balance(self.parent_tree(ts), miner, ts.height)

    def market_balance(self, address: Address, ts: TipSet) -> market_queries.MarketBalance:
        return market_queries.market_balance(self.parent_tree(ts), address)

    def market_deals(self, ts: TipSet) -> dict[int, market_queries.MarketDeal]:
        return market_queries.market_deals(self.parent_tree(ts))

    def storage_deal(self, deal_id: int, ts: TipSet) -> market_queries.MarketDeal | None:
        return market_queries.storage_deal(self.parent_tree(ts), deal_id)

    def msig_available_balance(self, address: Address, ts: TipSet) -> int:
        """What a multisig may spend at ts's epoch (its balance less what vesting still locks)."""
        return multisig_queries.available_balance(self.parent_tree(ts), address, ts.height)

    def msig_vested(self, address: Address, start: TipSet, end: TipSet) -> int:
        """What a multisig's schedule (as of end) vested between start's epoch and end's."""
        return multisig_queries.vested_between(self.parent_tree(end), address, start.height, end.height)

    def msig_pending(self, address: Address, ts: TipSet) -> list[tuple[int, Transaction]]:
        """A multisig's pending transactions by ID."""
        return multisig_queries.pending_transactions(self.parent_tree(ts), address)

    # -- messages -------------------------------------------------------------------------------------
    def search_msg(
        self, head: TipSet, cid: CID, limit: int = LOOKBACK_NO_LIMIT, allow_replaced: bool = True
    ) -> MsgLookup | None:
        """Where the message was executed, searching back from head (chain/stmgr/search.py)."""
        return search_msg(self, head, cid, limit, allow_replaced)

    # -- calls and replays ----------------------------------------------------------------------------
    def _call_vm(self, epoch: int, tree: StateTree, base_fee: int, ts: TipSet) -> VM:
        """A VM over a scratch tree at epoch, drawing randomness from ts's chain."""
        return VM(
            tree,
            epoch=epoch,
            base_fee=base_fee,
            randomness=self.randomness(ts),
            policy=self.policy,
            network_version=self.network_version,
            invoker=self.invoker,
            lookback_state=self.lookback_states(ts),
        )

    def call(self, msg: Message, ts: TipSet) -> CallResult:
        """Apply msg on top of ts's parent state at ts's epoch, after ts's own messages from the same
        sender, without keeping anything (Lotus StateCall): gas is free (the message runs as an
        implicit message: no nonce check, no fee), a zero gas limit means the block gas limit, and the
        message takes the sender's nonce."""
        if msg.gas_limit == 0:
            msg = replace(msg, gas_limit=BLOCK_GAS_LIMIT)
        tree = StateTree.load(BufferedBlockstore(self.store), ts.parent_state_root)
        vm = self._call_vm(ts.height, tree, ts.blocks[0].parent_base_fee, ts)
        for earlier in self.messages_for_tipset(ts):
            if _unsigned(earlier).from_ == msg.from_:
                vm.apply_message(earlier)
        msg = replace(msg, nonce=actor_queries.get_actor(tree, msg.from_).nonce)
        start = time.perf_counter()
        ret = vm.apply_implicit_message(msg)
        return CallResult(msg, ret.receipt, ret.error, time.perf_counter() - start)

    def call_with_gas(self, message: ChainMessage, prior: Sequence[SignedMessage], ts: TipSet) -> ApplyRet:
        """Apply prior then message as real messages (nonces checked, gas charged) on the state after
        ts, at epoch ts.height + 1 with ts's ParentBaseFee, keeping nothing; what applying message
        gave (the message pool's GasStateAccess, for gas estimation; the caller signs a secp256k1
        message with a placeholder so that its size is right)."""
        tree = StateTree.load(BufferedBlockstore(self.store), self.state_of(ts).state_root)
        vm = self._call_vm(ts.height + 1, tree, ts.blocks[0].parent_base_fee, ts)
        for earlier in prior:
            vm.apply_message(earlier)
        return vm.apply_message(message)

    # -- what the message pool reads (chain/mpool/provider.py StateAccess) ----------------------------
    def actor_after(self, address: Address, ts: TipSet) -> Actor | None:
        """The actor at address in the state after ts, or None."""
        return self.tree(self.state_of(ts).state_root).get_actor(address)

    def resolve_to_key(self, address: Address, ts: TipSet) -> Address | None:
        """The key address of address in the state after ts (itself if it is one), None when it names
        no account."""
        try:
            return actor_queries.resolve_to_key(self.tree(self.state_of(ts).state_root), address)
        except (actor_queries.ActorNotFound, actor_queries.StateQueryError):
            return None

    def base_fee(self, ts: TipSet) -> int:
        """The base fee of a block mined on ts (Lotus ChainComputeBaseFee)."""
        return compute_base_fee(self.chain, ts, self.policy)

    def replay(self, ts: TipSet, cid: CID) -> tuple[ChainMessage, ApplyRet]:
        """Execute ts again (on scratch storage) and return the message cid among ts's messages and what
        applying it gave (Lotus StateReplay with the tipset holding the message)."""
        found = [m for m in self.messages_for_tipset(ts) if m.cid() == cid]
        if not found:
            raise MessageNotFound(f"message {cid} is not among the messages tipset {ts.key} applies")
        target = _unsigned(found[0]).cid()
        store = BufferedBlockstore(self.store)
        result = self._execute(ts, store, StateTree.load(store, ts.parent_state_root))
        for applied_cid, ret in result.applied:
            if applied_cid == target:
                return found[0], ret
        raise MessageNotFound(f"message {cid} was not applied by tipset {ts.key}")


def _unsigned(msg: ChainMessage) -> Message:
    return msg.message if isinstance(msg, SignedMessage) else msg
