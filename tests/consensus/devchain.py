"""A real devnet chain for tests: a genesis with pre-sealed 2 KiB miners (node/genesis.py), an in-memory
chain store, the state manager and the mock beacon (or another: tests/consensus/test_drand_chain.py);
blocks made by chain/consensus/producer.py, each
checked by chain/consensus/validation.py before its tipset becomes the head.

`next_tipset` tries the epochs after the head until at least one of the mining miners wins: epochs
where none wins are null rounds, as on Filecoin; when several win at one epoch their blocks form one
tipset.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from actors.dispatch import encode_params
from actors.miner.state import SectorOnChainInfo
from actors.miner.types import MinerMethod, PoStPartition, SubmitWindowedPoStParams
from chain.chainstore.store import ChainStore
from chain.consensus.beacon import MockBeacon, RandomBeacon
from chain.consensus.fullblock import FullBlock
from chain.consensus.producer import SectorReader, produce_block
from chain.consensus.validation import validate_block
from chain.consensus.weight import weight_of
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.randomness import DomainSeparationTag
from chain.encoding import dagcbor
from chain.params import DEVNET, Policy
from chain.state.tree import StateTree
from chain.stmgr import miners
from chain.stmgr.index import StateIndex
from chain.stmgr.manager import StateManager
from chain.store.blockcache import BlockCache, cache_of
from chain.store.blockstore import Blockstore, MemoryBlockstore
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.block import PoStProof
from chain.types.message import Message, SignedMessage, sign_message
from chain.types.tipset import TipSet
from node.genesis import Genesis, build_genesis
from node.genesis_template import FIL, AccountEntry, GenesisTemplate, MinerEntry
from node.preseal import PresealedMiner
from proofs import post

GENESIS_TIME: Final = 1_700_000_000
ALICE: Final = PrivateKey.derive(KeyType.SECP256K1, b"devchain/alice")
BOB: Final = PrivateKey.derive(KeyType.BLS, b"devchain/bob")
CAROL: Final = PrivateKey.derive(KeyType.SECP256K1, b"devchain/carol")
GAS_LIMIT: Final = 10_000_000
POST_GAS_LIMIT: Final = 3_000_000_000
FEE_CAP: Final = 200_000_000  # above the genesis base fee (100,000,000), as a wallet would set it
PREMIUM: Final = 1_000


def presealed_reader(miner: PresealedMiner) -> SectorReader:
    """The miner's sectors as a block producer reads them: from its pre-seal, in memory."""
    sectors = {s.number: s.proving_sector() for s in miner.sectors}
    return lambda _, sector: sectors[sector.sector_number]


def presealed_block(
    sm: StateManager,
    beacon: RandomBeacon,
    miner: PresealedMiner,
    parent: TipSet,
    epoch: int,
    messages: Sequence[SignedMessage] = (),
    read_sector: SectorReader | None = None,
) -> FullBlock | None:
    """The genesis miner's block at epoch on parent (None when it does not win there), its Winning PoSt
    read from read_sector, by default its pre-seal."""
    return produce_block(
        sm,
        beacon,
        parent=parent,
        miner=miner.id_address,
        worker_key=miner.worker_key,
        epoch=epoch,
        messages=messages,
        read_sector=presealed_reader(miner) if read_sector is None else read_sector,
    )


def devnet_template(miners: int = 2, sectors: int = 2, name: str = "devchain") -> GenesisTemplate:
    return GenesisTemplate(
        network_name=name,
        profile="devnet",
        timestamp=GENESIS_TIME,
        accounts=tuple(AccountEntry(Address.of_key(k), 1_000_000 * FIL) for k in (ALICE, BOB, CAROL)),
        miners=tuple(
            MinerEntry(
                id=None,
                key_seed=f"{name}-miner-{i}",
                owner_balance=100_000 * FIL,
                worker_balance=10_000 * FIL,
                power_balance=1_000 * FIL,
                peer_id=b"",
                sector_size=2048,
                sectors=sectors,
            )
            for i in range(miners)
        ),
    )


_GENESIS_CACHE: dict[tuple[int, int, str], Genesis] = {}


def genesis_of(miners: int = 2, sectors: int = 2, name: str = "devchain") -> Genesis:
    """Built once per shape: a genesis is deterministic, and its blocks are copied into each store."""
    key = (miners, sectors, name)
    if key not in _GENESIS_CACHE:
        _GENESIS_CACHE[key] = build_genesis(devnet_template(miners, sectors, name))
    return _GENESIS_CACHE[key]


@dataclass
class DevChain:
    genesis: Genesis
    chain: ChainStore
    sm: StateManager
    beacon: RandomBeacon = field(default_factory=MockBeacon)
    policy: Policy = DEVNET
    online: set[Address] = field(default_factory=set)  # the miners that mine
    produced: list[FullBlock] = field(default_factory=list)
    null_rounds: list[int] = field(default_factory=list)
    auto_post: bool = True  # every tipset carries the Window PoSts its miners owe
    posts: list[tuple[int, Address, int]] = field(default_factory=list)  # (epoch, miner, deadline)

    @classmethod
    def new(
        cls,
        miners: int = 2,
        sectors: int = 2,
        *,
        chain: ChainStore | None = None,
        index: StateIndex | None = None,
        keep_tree_open: bool = True,
        name: str = "devchain",
        genesis: Genesis | None = None,
        beacon: RandomBeacon | None = None,
        policy: Policy = DEVNET,
    ) -> "DevChain":
        genesis = genesis_of(miners, sectors, name) if genesis is None else genesis
        chain = ChainStore.in_memory() if chain is None else chain
        chain.blockstore.put_many(genesis.blocks())
        chain.set_genesis(genesis.header, weight_of(chain.blockstore, TipSet((genesis.header,))))
        beacon = MockBeacon() if beacon is None else beacon
        sm = StateManager(chain, policy=policy, beacon=beacon, index=index, keep_tree_open=keep_tree_open)
        online = {m.id_address for m in genesis.miners}
        return cls(genesis, chain, sm, beacon, policy, online)

    # -- who is who --------------------------------------------------------------------------------------
    @property
    def store(self) -> Blockstore:
        return self.chain.blockstore

    @property
    def head(self) -> TipSet:
        return self.chain.head()

    def uncached_copy(self) -> MemoryBlockstore:
        """The chain's blocks in a store without a cache of decoded blocks: what a remembered answer
        must equal is computed from it."""
        plain = MemoryBlockstore()
        plain.block_cache = None
        plain.put_many(self.store.items())
        return plain

    @property
    def cache(self) -> BlockCache:
        """The chain store's cache of decoded blocks (the in-memory store always has one)."""
        cache = cache_of(self.store)
        assert cache is not None
        return cache

    def down_to_genesis(self) -> Iterator[TipSet]:
        """The head, then each parent down to the genesis's child."""
        ts = self.head
        while ts.height > 0:
            yield ts
            ts = self.chain.load_tipset(ts.parents)

    @property
    def genesis_ts(self) -> TipSet:
        return TipSet((self.genesis.header,))

    @property
    def miners(self) -> list[PresealedMiner]:
        return list(self.genesis.miners)

    def miner(self, address: Address) -> PresealedMiner:
        for miner in self.genesis.miners:
            if miner.id_address == address:
                return miner
        raise KeyError(address)

    def read_sector(self, miner: Address, sector: SectorOnChainInfo) -> post.ProvingSector:
        for presealed in self.miner(miner).sectors:
            if presealed.number == sector.sector_number:
                return presealed.proving_sector()
        raise KeyError(f"{miner} has no sector {sector.sector_number}")

    # -- messages ---------------------------------------------------------------------------------------
    def nonce(self, sender: Address, after: TipSet | None = None) -> int:
        """The sender's nonce in the state after `after` (the head): what its next message carries."""
        ts = self.head if after is None else after
        tree = self.sm.tree(self.sm.state_of(ts).state_root)
        actor = tree.get_actor(sender)
        return 0 if actor is None else actor.nonce

    def transfers(
        self, sender: PrivateKey, to: Address, count: int, value: int = 1, start: int | None = None
    ) -> list[SignedMessage]:
        """count signed transfers from sender with consecutive nonces (from its next one)."""
        first = self.nonce(Address.of_key(sender)) if start is None else start
        return [self.signed(sender, to, value=value, nonce=first + i) for i in range(count)]

    def signed(
        self,
        key: PrivateKey,
        to: Address,
        *,
        method: int = 0,
        params: bytes = b"",
        value: int = 0,
        nonce: int | None = None,
        gas_limit: int = GAS_LIMIT,
    ) -> SignedMessage:
        """A message from key's address (at its next nonce unless given) with the devchain's fees, signed."""
        sender = Address.of_key(key)
        msg = Message(
            to=to,
            from_=sender,
            nonce=self.nonce(sender) if nonce is None else nonce,
            value=value,
            gas_limit=gas_limit,
            gas_fee_cap=FEE_CAP,
            gas_premium=PREMIUM,
            method=method,
            params=params,
        )
        return sign_message(msg, key)

    # -- Window PoSt (what node/mining/wdpost.py does for a running miner) --------------------------------
    def post_message(self, miner: PresealedMiner) -> SignedMessage | None:
        """The worker's SubmitWindowedPoSt for the miner's deadline open at the next epoch, proving every
        partition with active sectors not proven yet; None when there is nothing to prove now."""
        head = self.head
        epoch = head.height + 1
        address = miner.id_address
        tree = self.sm.tree(self.sm.state_of(head).state_root)
        info = miners.proving_deadline(tree, self.policy, address, epoch)
        if not info.is_open() or info.close - epoch < 3:
            return None  # not open, or closing before a few null rounds could pass
        deadline = miners.miner_deadlines(tree, address)[info.index]
        partitions, proven = [], []
        for index, partition in enumerate(miners.miner_partitions(tree, address, info.index)):
            if index not in deadline.partitions_posted and partition.active():
                partitions.append(PoStPartition(index, BitField()))
                proven.extend(partition.active())
        if not partitions:
            return None
        entropy = dagcbor.encode(address.to_cbor())
        tag = DomainSeparationTag.WindowedPoStChallengeSeed
        randomness = self.sm.draw_beacon_randomness(head, tag, info.challenge, entropy)
        post_proof = miners.miner_info(tree, address).window_post_proof_type
        by_number = {s.number: s.proving_sector() for s in miner.sectors}
        proof = post.generate_window_post(post_proof, randomness, [by_number[n] for n in proven])
        commit_rand = self.sm.draw_chain_randomness(
            head, DomainSeparationTag.PoStChainCommit, head.height, b""
        )
        params = SubmitWindowedPoStParams(
            deadline=info.index,
            partitions=tuple(partitions),
            proofs=(PoStProof(post_proof, proof.to_bytes()),),
            chain_commit_epoch=head.height,
            chain_commit_rand=commit_rand,
        )
        self.posts.append((epoch, address, info.index))
        return self.worker_message(miner, MinerMethod.SubmitWindowedPoSt, params)

    def worker_message(self, miner: PresealedMiner, method: int, params: object) -> SignedMessage:
        """The miner's worker calling method of the miner actor with params, at the worker's next nonce
        (gas enough for a proof)."""
        encoded = encode_params(params)
        return self.signed(
            miner.worker_key, miner.id_address, method=method, params=encoded, gas_limit=POST_GAS_LIMIT
        )

    # -- blocks -----------------------------------------------------------------------------------------
    def produce(
        self,
        miner: Address,
        epoch: int,
        parent: TipSet | None = None,
        messages: Sequence[SignedMessage] = (),
    ) -> FullBlock | None:
        at = self.head if parent is None else parent
        return presealed_block(self.sm, self.beacon, self.miner(miner), at, epoch, messages, self.read_sector)

    def validate(self, block: FullBlock) -> None:
        validate_block(self.sm, self.beacon, block, now=block.header.timestamp)

    def apply(self, blocks: Iterable[FullBlock]) -> TipSet:
        """Validate the blocks and make their tipset the head."""
        blocks = list(blocks)
        for block in blocks:
            self.validate(block)
        ts = TipSet(tuple(b.header for b in blocks))
        self.chain.set_head(ts, weight_of(self.store, ts))
        self.produced.extend(blocks)
        return ts

    def next_tipset(
        self,
        messages: Sequence[SignedMessage] = (),
        miners: Iterable[Address] | None = None,
        max_nulls: int = 30,
    ) -> TipSet:
        """The next tipset on the head: every mining miner tries each epoch until one wins."""
        mining = sorted(self.online if miners is None else set(miners), key=lambda a: a.id)
        if self.auto_post:
            messages = [*messages, *(m for miner in self.miners if (m := self.post_message(miner)))]
        for epoch in range(self.head.height + 1, self.head.height + 2 + max_nulls):
            blocks = [b for m in mining if (b := self.produce(m, epoch, messages=messages)) is not None]
            if blocks:
                return self.apply(blocks)
            self.null_rounds.append(epoch)
        raise AssertionError(f"no miner won in {max_nulls + 1} epochs after {self.head.height}")

    def advance(self, tipsets: int, messages: Sequence[SignedMessage] = ()) -> list[TipSet]:
        out = [self.next_tipset(messages)]
        for _ in range(tipsets - 1):
            out.append(self.next_tipset())
        return out


def altered_genesis(genesis: Genesis, change: Callable[[StateTree], None]) -> Genesis:
    """The genesis with its state changed by `change` (state surgery, for states the actors never make)."""
    store = MemoryBlockstore()
    store.put_many(genesis.blocks())
    tree = StateTree.load(store, genesis.header.parent_state_root)
    change(tree)
    header = replace(genesis.header, parent_state_root=tree.flush())
    store.put(header.cid(), header.to_bytes())
    return replace(genesis, header=header, store=store)


def resigned(block: FullBlock, key: PrivateKey, **changes: object) -> FullBlock:
    """The block with header fields changed and signed again by key (so only the changed rule breaks)."""
    header = replace(block.header, **changes, block_sig=None)  # type: ignore[arg-type]
    header = replace(header, block_sig=key.sign(header.signing_bytes()))
    return replace(block, header=header)
