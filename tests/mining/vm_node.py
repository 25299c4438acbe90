"""A devnet-like node on the VM for the Window PoSt scheduler's tests: the parts of the node it talks to,
implemented over a real chain of tipsets.

- The genesis is node/genesis.py's, with one pre-sealed 2 KiB miner; its sectors are written as
  node/preseal.py lays them out and imported into a real SectorStore.
- Tipsets are real (one block each: a ticket that depends on the branch, so forks draw other chain
  randomness; a mock beacon entry per epoch; the parent state and receipts; a real MsgMeta). Each is
  executed with chain/vm/tipset_apply.apply_tipset (messages, rewards, cron, null rounds) when mined.
- Queries at a tipset read its parent state, as the state manager's do; randomness follows Lotus's rules
  (the ticket of the tipset at the epoch, or the first above a null round; the genesis for epochs <= 0).
- A message pool: pushed messages get the sender's next nonce, gas and a signature; a block takes each
  sender's messages in nonce order from its state nonce; messages of reverted tipsets come back, as the
  node's pool does. `refuse_pushes` makes the next pushes fail, as a full pool would.
- Head changes go to subscribers as [current], then [reverts..., applies...] lists.

It implements node/mining/chain_api's HeadChanges, MinerChainState, MessagePush, PendingMessages and
MessageSearch.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import trio

from actors import builtin
from actors.account.types import AccountState
from actors.miner.deadlines import Deadline, Deadlines, Partition
from actors.miner.policy import DeadlineInfo
from actors.miner.state import MinerInfo, MinerState, SectorOnChainInfo, Sectors
from actors.power.state import ClaimsTable, PowerState
from chain.crypto.keys import PrivateKey
from chain.crypto.randomness import blake2b_256, draw_randomness_from_digest, mock_beacon_data
from chain.crypto.signature import SigType, verify
from chain.mpool.push import SendSpec
from chain.params import DEVNET, Policy
from chain.state.amt import amt_v0_from_list
from chain.state.tree import StateTree
from chain.stmgr.search import MsgLookup
from chain.store.blockstore import MemoryBlockstore, get_cbor, put_cbor
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.bitfield import BitField
from chain.types.block import BlockHeader, MsgMeta
from chain.types.election import ElectionProof, Ticket
from chain.types.message import Message, SignedMessage, sign_message
from chain.types.tipset import TipSet, TipSetKey
from chain.vm.tipset_apply import BlockMessages, TipsetResult, apply_tipset
from chain.vm.vm import ApplyRet
from node.genesis import Genesis, GenesisRandomness, build_genesis
from node.genesis_template import FIL, parse_template
from node.preseal import write_presealed
from node.sealing.sectors import SectorStore

BASE_FEE: Final = 100
GAS_LIMIT: Final = 3_000_000_000
FEE_CAP: Final = 200
BLOCK_DELAY: Final = 4
NETWORK: Final = "t"


@dataclass(frozen=True, slots=True)
class HeadChange:
    type: str
    tipset: TipSet


class PushRefused(Exception):
    pass


_GENESIS: dict[int, Genesis] = {}


def presealed_miner_entry(key_seed: str, sectors: int) -> dict[str, Any]:
    """A genesis template's entry for a miner with `sectors` pre-sealed 2 KiB sectors, funded."""
    return {
        "KeySeed": key_seed,
        "OwnerBalance": str(10_000 * FIL),
        "WorkerBalance": str(1_000 * FIL),
        "PowerBalance": str(1_000 * FIL),
        "SectorSize": 2048,
        "Sectors": sectors,
    }


def devnet_genesis(sectors: int) -> Genesis:
    """A devnet genesis with one pre-sealed miner (t01000) of `sectors` 2 KiB sectors; built once."""
    if sectors not in _GENESIS:
        template = parse_template(
            {
                "NetworkName": "wdpost-test",
                "Profile": "devnet",
                "Timestamp": 1_700_000_000,
                "Accounts": [],
                "Miners": [presealed_miner_entry("wdpost-test-miner", sectors)],
            }
        )
        _GENESIS[sectors] = build_genesis(template)
    return _GENESIS[sectors]


@dataclass
class Landed:
    """Where a message was executed and what it gave."""

    tipset: TipSet
    ret: ApplyRet


@dataclass
class VMNode:
    genesis: Genesis
    store: MemoryBlockstore
    policy: Policy
    sectors: SectorStore
    keys: dict[Address, PrivateKey]  # key address -> key, for the pool's signing
    head: TipSet
    tipsets: dict[TipSetKey, TipSet] = field(default_factory=dict)
    results: dict[TipSetKey, TipsetResult] = field(default_factory=dict)
    included: dict[TipSetKey, list[SignedMessage]] = field(default_factory=dict)
    pool: list[SignedMessage] = field(default_factory=list)
    pushed: list[SignedMessage] = field(default_factory=list)  # every message pushed, in order
    refuse_pushes: int = 0
    specs: list[SendSpec | None] = field(default_factory=list)  # what each push asked for
    _subscribers: list[trio.MemorySendChannel[Sequence[HeadChange]]] = field(default_factory=list)

    @classmethod
    def new(cls, directory: Path, *, sectors: int = 6, policy: Policy = DEVNET) -> "VMNode":
        genesis = devnet_genesis(sectors)
        (miner,) = genesis.miners
        store = MemoryBlockstore()
        store.put_many(genesis.blocks())
        write_presealed(directory, miner, NETWORK)
        sector_store = SectorStore.open(directory)
        sector_store.import_presealed(directory, miner.id_address, NETWORK)
        keys = {Address.of_key(k): k for k in (miner.owner_key, miner.worker_key)}
        head = TipSet((genesis.header,))
        node = cls(genesis, store, policy, sector_store, keys, head)
        node.tipsets[head.key] = head
        return node

    # -- who is who ---------------------------------------------------------------------------------
    @property
    def miner(self) -> Address:
        return self.genesis.miners[0].id_address

    @property
    def worker_key(self) -> PrivateKey:
        return self.genesis.miners[0].worker_key

    # -- the chain ----------------------------------------------------------------------------------
    def state_root_after(self, ts: TipSet) -> Any:
        if ts.height == 0:
            return ts.parent_state_root
        return self.results[ts.key].state_root

    def _receipts_after(self, ts: TipSet) -> Any:
        if ts.height == 0:
            return ts.parent_message_receipts
        return self.results[ts.key].receipts_root

    def parent(self, ts: TipSet) -> TipSet:
        return self.tipsets[ts.parents]

    def tipset_at(self, height: int, anchor: TipSet) -> TipSet:
        """The tipset at height on anchor's chain, or the first above it over null rounds."""
        cur = anchor
        while cur.height > height:
            parent = self.parent(cur)
            if parent.height < height:
                return cur
            cur = parent
        return cur

    def chain_digest(self, ts: TipSet, epoch: int) -> bytes:
        if epoch <= 0:
            return GenesisRandomness.of(self.genesis.header).chain_digest(0)
        if epoch > ts.height:
            raise ValueError(f"no ticket at epoch {epoch} above {ts.height}")
        return blake2b_256(self.tipset_at(epoch, ts).min_ticket().vrf_proof)

    def beacon_digest(self, epoch: int) -> bytes:
        if epoch <= 0:
            return GenesisRandomness.of(self.genesis.header).beacon_digest(0)
        return blake2b_256(mock_beacon_data(epoch))

    def mine(self, parent: TipSet | None = None, *, nulls: int = 0, branch: str = "main") -> TipSet:
        """A block on parent (the head by default) after `nulls` null rounds, with the pool's messages
        that follow their senders' nonces, executed; it does not become the head (set_head does)."""
        parent = self.head if parent is None else parent
        height = parent.height + 1 + nulls
        messages = self._select(parent)
        bls = [m.message for m in messages if m.signature.type == SigType.BLS]
        secp = [m for m in messages if m.signature.type != SigType.BLS]
        for m in messages:
            verify(m.signature, m.message.from_, m.message.signing_bytes())
        meta = MsgMeta(
            amt_v0_from_list(self.store, [m.cid() for m in bls]),
            amt_v0_from_list(self.store, [m.cid() for m in secp]),
        )
        meta_cid = put_cbor(self.store, meta.to_cbor())
        seed = f"{branch}/{height}/{parent.key}".encode()
        header = BlockHeader(
            miner=self.miner,
            ticket=Ticket(blake2b_256(b"ticket/" + seed) * 3),
            election_proof=ElectionProof(1, blake2b_256(b"election/" + seed) * 3),
            beacon_entries=(BeaconEntry(height, mock_beacon_data(height)),),
            parents=parent.cids,
            parent_weight=parent.parent_weight + 1,
            height=height,
            parent_state_root=self.state_root_after(parent),
            parent_message_receipts=self._receipts_after(parent),
            messages=meta_cid,
            bls_aggregate=None,
            timestamp=self.genesis.header.timestamp + height * BLOCK_DELAY,
            block_sig=None,
            parent_base_fee=BASE_FEE,
        )
        self.store.put(header.cid(), header.to_bytes())
        ts = TipSet((header,))
        self.tipsets[ts.key] = ts
        node = self

        class _Randomness:
            def chain_digest(self, epoch: int) -> bytes:
                return node.chain_digest(ts, epoch)

            def beacon_digest(self, epoch: int) -> bytes:
                return node.beacon_digest(epoch)

        self.results[ts.key] = apply_tipset(
            self.store,
            self.state_root_after(parent),
            parent.height,
            height,
            [BlockMessages(self.miner, bls_messages=bls, secpk_messages=secp)],
            base_fee=BASE_FEE,
            randomness=_Randomness(),
            policy=self.policy,
        )
        self.included[ts.key] = messages
        return ts

    def _select(self, parent: TipSet) -> list[SignedMessage]:
        tree = StateTree.load(self.store, self.state_root_after(parent))
        chosen = []
        by_sender: dict[Address, list[SignedMessage]] = {}
        for m in self.pool:
            by_sender.setdefault(m.message.from_, []).append(m)
        for sender, messages in by_sender.items():
            actor = tree.get_actor(sender)
            nonce = 0 if actor is None else actor.nonce
            for m in sorted(messages, key=lambda m: m.message.nonce):
                if m.message.nonce == nonce:
                    chosen.append(m)
                    nonce += 1
        return chosen

    def set_head(self, ts: TipSet) -> tuple[list[TipSet], list[TipSet]]:
        """Make ts the head: the pool drops what the new chain includes and takes back what the old
        one did; subscribers get the reverts and the applies."""
        revert, apply = [], []
        left, right = self.head, ts
        while left.key != right.key:
            if left.height > right.height:
                revert.append(left)
                left = self.parent(left)
            else:
                apply.append(right)
                right = self.parent(right)
        apply.reverse()
        for old in revert:
            for m in self.included.get(old.key, []):
                if m not in self.pool:
                    self.pool.append(m)
        for new in apply:
            for m in self.included.get(new.key, []):
                if m in self.pool:
                    self.pool.remove(m)
        self.head = ts
        tree = StateTree.load(self.store, self.state_root_after(ts))
        self.pool = [m for m in self.pool if m.message.nonce >= self._nonce(tree, m.message.from_)]
        changes = [HeadChange("revert", t) for t in revert] + [HeadChange("apply", t) for t in apply]
        for send in list(self._subscribers):
            try:
                send.send_nowait(changes)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)
                send.close()
        return revert, apply

    def advance(self, *, nulls: int = 0) -> TipSet:
        ts = self.mine(nulls=nulls)
        self.set_head(ts)
        return ts

    def landed(self, cid: Any) -> Landed | None:
        """Where a message was executed on the head's chain (None if it was not)."""
        cur = self.head
        while cur.height > 0:
            for applied_cid, ret in self.results[cur.key].applied:
                if applied_cid == cid:
                    return Landed(cur, ret)
            cur = self.parent(cur)
        return None

    @staticmethod
    def _nonce(tree: StateTree, address: Address) -> int:
        actor = tree.get_actor(address)
        return 0 if actor is None else actor.nonce

    # -- HeadChanges --------------------------------------------------------------------------------
    def subscribe(self) -> trio.MemoryReceiveChannel[Sequence[HeadChange]]:
        send, receive = trio.open_memory_channel[Sequence[HeadChange]](64)
        send.send_nowait([HeadChange("current", self.head)])
        self._subscribers.append(send)
        return receive

    def drop_subscribers(self) -> None:
        """Close every subscription, as the chain store does to a subscriber that fell behind."""
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()

    # -- MinerChainState (the parent state of ts) ---------------------------------------------------
    def _tree(self, ts: TipSet) -> StateTree:
        return StateTree.load(self.store, ts.parent_state_root)

    def miner_state(self, miner: Address, ts: TipSet) -> MinerState:
        actor = self._tree(ts).get_actor(miner)
        assert actor is not None
        return MinerState.from_cbor(get_cbor(self.store, actor.head))

    def proving_deadline(self, miner: Address, ts: TipSet) -> DeadlineInfo:
        state = self.miner_state(miner, ts)
        return DeadlineInfo.of(
            self.policy, state.proving_period_start, state.current_deadline, ts.height
        ).next_not_elapsed()

    def miner_info(self, miner: Address, ts: TipSet) -> MinerInfo:
        return self.miner_state(miner, ts).get_info(self.store)

    def miner_deadlines(self, miner: Address, ts: TipSet) -> list[Deadline]:
        deadlines = Deadlines.load(self.store, self.miner_state(miner, ts).deadlines)
        return [deadlines.get(self.store, i) for i in range(len(deadlines.due))]

    def miner_partitions(self, miner: Address, deadline: int, ts: TipSet) -> list[Partition]:
        dl = self.miner_deadlines(miner, ts)[deadline]
        return [p for _, p in dl.load_partitions(self.store).items()]

    def miner_sectors(
        self, miner: Address, ts: TipSet, numbers: BitField | None = None
    ) -> list[SectorOnChainInfo]:
        sectors = Sectors.load(self.store, self.miner_state(miner, ts).sectors)
        assert numbers is not None
        return [s for s in (sectors.get(n) for n in numbers) if s is not None]

    def lookup_id(self, address: Address, ts: TipSet) -> Address:
        found = self._tree(ts).lookup_id(address)
        assert found is not None
        return found

    def draw_chain_randomness(self, ts: TipSet, tag: int, epoch: int, entropy: bytes) -> bytes:
        return draw_randomness_from_digest(self.chain_digest(ts, epoch), tag, epoch, entropy)

    def draw_beacon_randomness(self, ts: TipSet, tag: int, epoch: int, entropy: bytes) -> bytes:
        return draw_randomness_from_digest(self.beacon_digest(epoch), tag, epoch, entropy)

    # -- what tests read ----------------------------------------------------------------------------
    def faults(self, ts: TipSet | None = None) -> BitField:
        ts = self.head if ts is None else ts
        return BitField().union(
            *(
                p.faults
                for i in range(self.policy.wpost_period_deadlines)
                for p in self.miner_partitions(self.miner, i, ts)
            )
        )

    def power(self, ts: TipSet | None = None) -> int:
        """The miner's raw byte power claim in the state after ts (the head by default)."""
        ts = self.head if ts is None else ts
        tree = StateTree.load(self.store, self.state_root_after(ts))
        actor = tree.get_actor(builtin.STORAGE_POWER_ACTOR_ADDR)
        assert actor is not None
        power = PowerState.from_cbor(get_cbor(self.store, actor.head))
        claim = ClaimsTable.load(self.store, power.claims).get(self.miner)
        return 0 if claim is None else claim.raw_byte_power

    # -- MessagePush and PendingMessages ------------------------------------------------------------
    def _key_address(self, address: Address) -> Address:
        tree = StateTree.load(self.store, self.state_root_after(self.head))
        actor = tree.get_actor(address)
        assert actor is not None, f"no actor at {address}"
        return AccountState.from_cbor(get_cbor(self.store, actor.head)).address

    def push_message(self, msg: Message, spec: SendSpec | None = None, /) -> SignedMessage:
        self.specs.append(spec)
        if self.refuse_pushes > 0:
            self.refuse_pushes -= 1
            raise PushRefused("mpool is full (test)")
        sender = self._key_address(msg.from_)
        tree = StateTree.load(self.store, self.state_root_after(self.head))
        nonce = self._nonce(tree, sender) + sum(1 for m in self.pool if m.message.from_ == sender)
        full = replace(
            msg, from_=sender, nonce=nonce, gas_limit=GAS_LIMIT, gas_fee_cap=FEE_CAP, gas_premium=0
        )
        signed = sign_message(full, self.keys[sender])
        self.pool.append(signed)
        self.pushed.append(signed)
        return signed

    # -- MessageSearch ---------------------------------------------------------------------------------
    def search_msg(
        self, head: TipSet, cid: Any, limit: int = -1, allow_replaced: bool = True
    ) -> MsgLookup | None:
        """Where cid executed below head (into head's parent state, which the queries at head read),
        looking back at most limit tipsets; the lookup names the tipset that includes it."""
        cur, looked = head, 0
        while cur.height > 0 and (limit < 0 or looked < limit):
            cur = self.parent(cur)
            looked += 1
            if cur.height == 0:
                break
            for applied_cid, ret in self.results[cur.key].applied:
                if applied_cid == cid:
                    return MsgLookup(cid, ret.receipt, cur)
        return None

    def pending_for(self, address: Address, /) -> list[SignedMessage]:
        sender = self._key_address(address)
        return sorted((m for m in self.pool if m.message.from_ == sender), key=lambda m: m.message.nonce)
