"""The VM reads and writes through the store's cache of decoded blocks (the gas-charging view offers its
base store's cache; actor states, miner info, vesting tables and deadlines written are entered as
written; so are the message blocks a chain store keeps): executing a chain with the cache gives the
same state roots, receipts and gas as executing it on a store without one, and what a write enters is
exactly what strict decoding of its bytes gives."""

import dataclasses
from typing import Any

from actors.miner.state import MinerState
from actors.miner.vesting import VestingFund, VestingFunds
from chain.chainstore.metadata import MemoryMetadata
from chain.chainstore.store import ChainStore
from chain.encoding import dagcbor
from chain.encoding.schema import CborTuple
from chain.stmgr.manager import StateManager
from chain.store.blockcache import cache_of
from chain.store.blockstore import MemoryBlockstore, get_decoded, put_declared
from chain.types.address import Address
from chain.types.tipset import TipSet
from chain.vm.gas import GasTracker, PriceList
from chain.vm.invocation import ChargingStore
from tests.consensus.devchain import ALICE, CAROL, DevChain


def _same(a: Any, b: Any) -> None:
    """Equal, field by field with the same types (a cached value stands for a decoded one)."""
    assert type(a) is type(b)
    if isinstance(a, CborTuple):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b


def _executed_alike_without_cache(dev: DevChain, tipsets: list[TipSet]) -> int:
    """Execute tipsets again on a copy of dev's blocks without a cache of decoded blocks; every state
    root, receipts root and receipt (gas used included) must be the same. How many receipts there were."""
    plain = ChainStore(dev.uncached_copy(), MemoryMetadata())
    plain.set_genesis(dev.genesis.header)
    sm = StateManager(plain, policy=dev.policy, beacon=dev.beacon)
    receipts = 0
    for ts in tipsets:
        mine, theirs = dev.sm.state_of(ts), sm.state_of(ts)
        assert mine.state_root == theirs.state_root
        assert mine.receipts_root == theirs.receipts_root
        assert mine.receipts == theirs.receipts
        receipts += len(mine.receipts)
    return receipts


def test_a_chain_executes_the_same_with_and_without_the_block_cache() -> None:
    dev = DevChain.new(miners=1)
    carol = Address.of_key(CAROL)
    tipsets = dev.advance(3, dev.transfers(ALICE, carol, 3))
    tipsets += dev.advance(3)
    assert _executed_alike_without_cache(dev, tipsets) > 0
    assert dev.cache.hits > 0


def test_hundreds_of_tipsets_execute_the_same_with_and_without_the_block_cache() -> None:
    """As the sync bench's chain: a transfer in every few blocks, block rewards vesting and cron ticks
    for a few hundred epochs; executed again on a store without a cache (no decoded states, HAMT
    nodes or messages kept), every tipset has the same state root and receipts."""
    dev = DevChain.new(miners=1)
    carol = Address.of_key(CAROL)
    tipsets: list[TipSet] = []
    for _ in range(30):
        tipsets += dev.advance(10, dev.transfers(ALICE, carol, 2))
    receipts = _executed_alike_without_cache(dev, tipsets)
    assert len(tipsets) == 300 and receipts >= 60  # the transfers, and the miner's Window PoSts


def test_messages_stored_are_what_strict_decoding_gives() -> None:
    dev = DevChain.new(miners=1)
    carol = Address.of_key(CAROL)
    ts = dev.advance(1, dev.transfers(ALICE, carol, 2))[0]
    chain = ChainStore.in_memory()
    cache = cache_of(chain.blockstore)
    assert cache is not None
    for header in ts.blocks:
        bls, secpk = dev.chain.messages_for_block(header)
        assert secpk
        for msg in [*bls, *secpk]:
            cid = chain.put_message(msg)
            hits = cache.hits
            got = chain.get_message(cid)
            assert got is msg and cache.hits == hits + 1  # entered as stored, not decoded again
            raw = chain.blockstore.get(cid)
            assert raw is not None
            _same(got, type(msg).from_bytes(raw))
    # A store without a cache decodes every read, as before.
    plain = ChainStore.in_memory()
    assert isinstance(plain.blockstore, MemoryBlockstore)
    plain.blockstore.block_cache = None
    cid = plain.put_message(secpk[0])
    assert plain.get_message(cid) is not secpk[0] and plain.get_message(cid) == secpk[0]


def test_states_written_are_what_strict_decoding_gives() -> None:
    dev = DevChain.new(miners=1)
    dev.advance(2)
    tree = dev.sm.tree(dev.sm.state_of(dev.head).state_root)
    actor = tree.get_actor(dev.miners[0].id_address)
    assert actor is not None
    data = dev.store.get(actor.head)
    assert data is not None
    store = MemoryBlockstore()
    decoded = MinerState.from_cbor(dagcbor.decode(data))
    rebuilt = dataclasses.replace(decoded)  # through the constructor, as an actor makes one
    cid = put_declared(store, rebuilt)
    assert cid == actor.head and store.get(cid) == data
    _same(rebuilt, MinerState.from_cbor(dagcbor.decode(data)))
    assert get_decoded(store, cid, MinerState.from_cbor) is rebuilt
    vesting = decoded.get_vesting(dev.store)
    assert vesting.funds  # block rewards vest
    _same(dataclasses.replace(vesting), VestingFunds.from_cbor(dagcbor.decode(vesting.to_bytes())))
    # A table given a list where a tuple is declared is normalised by its constructor, as decoding does.
    table = VestingFunds([VestingFund(10, 5), VestingFund(20, 7)])  # type: ignore[arg-type]
    cid = put_declared(store, table)
    raw = store.get(cid)
    assert raw is not None
    _same(get_decoded(store, cid, VestingFunds.from_cbor), VestingFunds.from_cbor(dagcbor.decode(raw)))


def test_the_gas_charging_view_offers_its_base_stores_cache() -> None:
    store = MemoryBlockstore()
    charging = ChargingStore(store, GasTracker(10**12), PriceList())
    assert charging.block_cache is store.block_cache is not None
    store.block_cache = None
    assert charging.block_cache is None
