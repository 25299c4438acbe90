"""Queries at a tipset (its parent state, as Lotus): actors and addresses, decoded state, miners and
their sectors, deadlines and balances, the market, supply; and what they raise for wrong questions."""

import pytest

from actors import builtin
from actors.account.types import AccountState
from actors.miner.state import MinerState
from chain.crypto.keys import KeyType, PrivateKey
from chain.state.tree import StateTree
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.message import TOTAL_FILECOIN
from chain.vm.circulating import circulating_supply
from node.genesis_template import FIL
from tests.consensus.devchain import ALICE, BOB, DevChain

ALICE_ADDR, BOB_ADDR = Address.of_key(ALICE), Address.of_key(BOB)
MINER = Address.new_id(1000)
NOBODY = Address.new_id(8888)


@pytest.fixture(scope="module")
def dc() -> DevChain:
    chain = DevChain.new()
    chain.advance(3, chain.transfers(ALICE, BOB_ADDR, 2, value=FIL))
    return chain


def test_actors_and_addresses(dc: DevChain) -> None:
    sm, head = dc.sm, dc.head
    alice_id = sm.lookup_id(ALICE_ADDR, head)
    assert alice_id.id >= 100
    assert sm.get_actor(ALICE_ADDR, head) == sm.get_actor(alice_id, head)
    assert sm.get_actor(ALICE_ADDR, head).nonce == 2
    assert sm.account_key(alice_id, head) == ALICE_ADDR
    assert sm.account_key(BOB_ADDR, head) == BOB_ADDR
    assert sm.lookup_robust_address(alice_id, head) == ALICE_ADDR
    with pytest.raises(StateQueryError, match="not an account"):
        sm.account_key(MINER, head)
    for ask in (sm.get_actor, sm.lookup_robust_address):
        with pytest.raises(ActorNotFound, match="actor not found: t08888"):
            ask(NOBODY, head)
    # as Lotus, an ID address is its own ID whether or not an actor has it
    assert sm.lookup_id(NOBODY, head) == NOBODY
    with pytest.raises(ActorNotFound, match="has no ID"):
        sm.lookup_id(Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"stranger")), head)
    actors = sm.list_actors(head)
    assert builtin.SYSTEM_ACTOR_ADDR in actors and MINER in actors and alice_id in actors
    assert sm.network_name(head) == "devchain"


def test_queries_read_the_parent_state(dc: DevChain) -> None:
    """At a tipset, a query sees its parent state: the transfers of the first tipset show from the
    second on."""
    first = dc.chain.get_tipset_by_height(1, dc.head)
    second = dc.chain.get_tipset_by_height(2, dc.head)
    assert dc.sm.get_actor(ALICE_ADDR, first).nonce == 0
    assert dc.sm.get_actor(ALICE_ADDR, second).nonce == 2


def test_read_state_decodes_by_actor_type(dc: DevChain) -> None:
    actor, state = dc.sm.read_state(MINER, dc.head)
    assert actor.code == builtin.MINER_ACTOR_CODE and isinstance(state, MinerState)
    _, account = dc.sm.read_state(ALICE_ADDR, dc.head)
    assert isinstance(account, AccountState) and account.address == ALICE_ADDR


def test_miner_queries(dc: DevChain) -> None:
    sm, head = dc.sm, dc.head
    presealed = dc.miner(MINER)
    info = sm.miner_info(MINER, head)
    assert info.worker == sm.lookup_id(Address.of_key(presealed.worker_key), head)
    assert info.owner == sm.lookup_id(presealed.owner, head) and info.sector_size == 2048
    power = sm.miner_power(MINER, head)
    assert power.miner.raw_byte_power == 4096 and power.total.raw_byte_power == 8192 and power.has_min_power
    none = sm.miner_power(NOBODY, head)
    assert none.miner.raw_byte_power == 0 and not none.has_min_power
    assert sm.list_miners(head) == [Address.new_id(1000), Address.new_id(1001)]

    sectors = sm.miner_sectors(MINER, head)
    assert [s.sector_number for s in sectors] == [s.number for s in presealed.sectors]
    assert sm.miner_sectors(MINER, head, BitField.from_bits([1])) == sectors[1:]
    assert sm.miner_active_sectors(MINER, head) == sectors
    assert sm.sector_info(MINER, 0, head) == sectors[0]
    assert sm.sector_info(MINER, 77, head) is None

    deadlines = sm.miner_deadlines(MINER, head)
    assert len(deadlines) == dc.policy.wpost_period_deadlines
    holding = [i for i, d in enumerate(deadlines) if d.live_sectors]
    assert len(holding) == 1
    (partition,) = sm.miner_partitions(MINER, holding[0], head)
    assert list(partition.sectors) == [0, 1]
    assert sm.miner_faults(MINER, head).is_empty() and sm.miner_recoveries(MINER, head).is_empty()
    with pytest.raises(StateQueryError, match="deadline 99 out of range"):
        sm.miner_partitions(MINER, 99, head)

    current = sm.proving_deadline(MINER, head)
    assert current.current_epoch == head.height and not current.has_elapsed()
    assert current.open <= head.height < current.close or head.height < current.open

    available = sm.available_balance(MINER, head)
    actor = sm.get_actor(MINER, head)
    state = MinerState.from_cbor(sm.read_state(MINER, head)[1].to_cbor())
    assert 0 <= available <= actor.balance
    assert available >= actor.balance - state.locked_funds - state.initial_pledge - state.pre_commit_deposits
    with pytest.raises(StateQueryError, match="not a storage miner"):
        sm.miner_info(ALICE_ADDR, head)


def test_market_and_supply(dc: DevChain) -> None:
    sm, head = dc.sm, dc.head
    balance = sm.market_balance(ALICE_ADDR, head)
    assert (balance.escrow, balance.locked) == (0, 0)
    assert sm.market_balance(NOBODY, head).escrow == 0
    assert sm.market_deals(head) == {}
    assert sm.storage_deal(0, head) is None
    supply = sm.circulating_supply(head)
    assert 0 < supply < TOTAL_FILECOIN
    assert sm.network_version_at(head.height) == sm.network_version == 21


def test_circulating_supply_remembered_equals_computed(dc: DevChain) -> None:
    # The locked totals are remembered by the power and market states' CIDs (chain/vm/circulating.py):
    # every state of the chain gives what a store without a cache computes.
    plain = dc.uncached_copy()
    for ts in dc.down_to_genesis():
        computed = circulating_supply(StateTree.load(plain, ts.parent_state_root))
        for _ in range(2):  # computed, then remembered
            assert circulating_supply(dc.sm.parent_tree(ts)) == computed
