"""Block validation, one test per rule: each feeds a block that breaks only that rule (re-signed by the
worker, so the signature still holds where the rule is not the signature) and checks the error class
and what its message says. The blocks are real: produced by chain/consensus/producer.py on a devnet
chain of two pre-sealed miners."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from actors.builtin import STORAGE_POWER_ACTOR_ADDR as POWER_ACTOR
from actors.miner.state import MinerInfo, MinerState
from actors.power.state import ClaimsTable, PowerState
from chain.chainstore.msgmeta import msg_meta_cid
from chain.chainstore.store import ChainStore
from chain.consensus import validation as v
from chain.consensus.election import compute_ticket, election_randomness, mining_base
from chain.consensus.fullblock import FullBlock
from chain.consensus.producer import BlockTemplate, block_timestamp, create_block, winning_post_proof
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import SigType, aggregate_bls
from chain.encoding.cid import CID
from chain.state.tree import StateTree
from chain.store.blockstore import get_cbor, put_cbor
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.block import PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.message import BLOCK_GAS_LIMIT, Message, SignedMessage, sign_message
from tests.consensus.devchain import ALICE, BOB, CAROL, DevChain, altered_genesis, genesis_of, resigned

BOB_ADDR = Address.of_key(BOB)
CAROL_ADDR = Address.of_key(CAROL)


@pytest.fixture(scope="module")
def dc() -> DevChain:
    chain = DevChain.new()
    chain.advance(4, chain.transfers(ALICE, BOB_ADDR, 2))
    return chain


def winner(dc: DevChain, messages: list[SignedMessage] | None = None) -> FullBlock:
    """A valid block on the head at the first epoch some miner wins."""
    for epoch in range(dc.head.height + 1, dc.head.height + 20):
        for miner in dc.miners:
            block = dc.produce(miner.id_address, epoch, messages=messages or [])
            if block is not None:
                return block
    raise AssertionError("nobody wins")


def worker_of(dc: DevChain, block: FullBlock) -> PrivateKey:
    return dc.miner(block.header.miner).worker_key


def bls_transfer(dc: DevChain, nonce_offset: int = 0) -> SignedMessage:
    (msg,) = dc.transfers(BOB, CAROL_ADDR, 1, value=7)
    if nonce_offset:
        msg = sign_message(replace(msg.message, nonce=msg.message.nonce + nonce_offset), BOB)
    return msg


@pytest.fixture(scope="module")
def good(dc: DevChain) -> FullBlock:
    """A block with a BLS and two secp256k1 messages."""
    return winner(dc, [bls_transfer(dc), *dc.transfers(ALICE, CAROL_ADDR, 2, value=3)])


def rejects(
    dc: DevChain, block: FullBlock, error: type[v.BlockValidationError], text: str, **kw: Any
) -> None:
    with pytest.raises(error, match=text):
        v.validate_block(dc.sm, dc.beacon, block, now=kw.get("now", block.header.timestamp))


def test_a_produced_block_is_valid(dc: DevChain, good: FullBlock) -> None:
    dc.validate(good)
    assert len(good.bls_messages) == 1 and len(good.secp_messages) == 2


# -- 1. syntax ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"ticket": None}, "no ticket"),
        ({"election_proof": None}, "no election proof"),
        ({"bls_aggregate": None}, "no BLS aggregate"),
        ({"miner": Address.parse("t1d2xrzcslx7xlbbylc5c3d5lvandqw4iwl6epxba")}, "not an ID address"),
        ({"ticket": Ticket(b"short")}, "ticket VRF proof is 5 bytes"),
        ({"election_proof": ElectionProof(1, bytes(95))}, "election proof VRF proof is 95 bytes"),
        ({"parents": ()}, "no parents"),
    ],
)
def test_syntax(dc: DevChain, good: FullBlock, change: dict[str, Any], text: str) -> None:
    rejects(dc, resigned(good, worker_of(dc, good), **change), v.BlockSyntaxError, text)


def test_syntax_unsigned(dc: DevChain, good: FullBlock) -> None:
    rejects(
        dc, replace(good, header=replace(good.header, block_sig=None)), v.BlockSyntaxError, "no signature"
    )


def test_syntax_parent_twice(dc: DevChain, good: FullBlock) -> None:
    parents = (*good.header.parents, good.header.parents[0])
    rejects(dc, resigned(good, worker_of(dc, good), parents=parents), v.BlockSyntaxError, "parent twice")


def test_syntax_too_many_messages(dc: DevChain, good: FullBlock) -> None:
    many = replace(good, secp_messages=good.secp_messages * 5001)
    rejects(dc, many, v.BlockSyntaxError, "10003 messages, more than 10000")


# -- 2-4. parents, height, time, weight ----------------------------------------------------------------


def test_parents_unknown(dc: DevChain, good: FullBlock) -> None:
    stranger = CID.hash_of(b"no such block")
    rejects(dc, resigned(good, worker_of(dc, good), parents=(stranger,)), v.ParentsNotFound, "unknown")


def test_height_not_above_parents(dc: DevChain, good: FullBlock) -> None:
    block = resigned(good, worker_of(dc, good), height=dc.head.height)
    rejects(dc, block, v.InvalidHeight, "not above its parents")


def test_timestamp_off_by_a_second(dc: DevChain, good: FullBlock) -> None:
    block = resigned(good, worker_of(dc, good), timestamp=good.header.timestamp + 1)
    rejects(dc, block, v.WrongTimestamp, f"expected {good.header.timestamp}")


def test_block_from_the_future(dc: DevChain, good: FullBlock) -> None:
    rejects(dc, good, v.BlockFromFuture, "ahead of the clock", now=good.header.timestamp - 30)
    # within the allowed drift it is fine
    v.validate_block(dc.sm, dc.beacon, good, now=good.header.timestamp - v.ALLOWABLE_CLOCK_DRIFT_SECS)


def test_parent_weight(dc: DevChain, good: FullBlock) -> None:
    block = resigned(good, worker_of(dc, good), parent_weight=good.header.parent_weight + 1)
    rejects(dc, block, v.ParentWeightMismatch, f"{good.header.parent_weight} computed")


# -- 5. miner, worker, signature -----------------------------------------------------------------------


def test_not_a_miner(dc: DevChain, good: FullBlock) -> None:
    alice_id = dc.sm.lookup_id(Address.of_key(ALICE), dc.head)
    for stranger in (alice_id, Address.new_id(4321)):
        block = resigned(good, worker_of(dc, good), miner=stranger)
        rejects(dc, block, v.NotAMiner, "not a storage miner")


def test_worker_not_a_bls_key() -> None:
    """State surgery (the miner actor refuses non-BLS workers): miner t01001's worker becomes alice's
    secp256k1 account; its block fails on the worker before anything else about it is checked."""
    base = genesis_of()

    def secp_worker(tree: StateTree) -> None:
        miner = Address.new_id(1001)
        actor = tree.get_actor(miner)
        assert actor is not None
        state = MinerState.from_cbor(get_cbor(tree.store, actor.head))
        info = MinerInfo.from_cbor(get_cbor(tree.store, state.info))
        alice = tree.lookup_id(Address.of_key(ALICE))
        assert alice is not None
        state = replace(state, info=put_cbor(tree.store, replace(info, worker=alice).to_cbor()))
        tree.set_actor(miner, actor.with_head(put_cbor(tree.store, state.to_cbor())))

    chain = DevChain.new(genesis=altered_genesis(base, secp_worker))
    block = next(b for e in range(1, 20) if (b := chain.produce(Address.new_id(1000), e)) is not None)
    stolen = resigned(block, worker_of(chain, block), miner=Address.new_id(1001))
    rejects(chain, stolen, v.InvalidMinerWorker, "not a BLS key address")


def test_block_signature(dc: DevChain, good: FullBlock) -> None:
    outsider = PrivateKey.derive(KeyType.BLS, b"not the worker")
    rejects(dc, resigned(good, outsider), v.InvalidBlockSignature, "does not verify")
    # a signature over other bytes by the right key
    key = worker_of(dc, good)
    wrong = replace(good, header=replace(good.header, block_sig=key.sign(b"something else")))
    rejects(dc, wrong, v.InvalidBlockSignature, "does not verify")


# -- 6. beacon -------------------------------------------------------------------------------------------


def test_beacon_entry_data(dc: DevChain, good: FullBlock) -> None:
    entries = good.header.beacon_entries
    forged = (*entries[:-1], BeaconEntry(entries[-1].round, bytes(32)))
    rejects(
        dc, resigned(good, worker_of(dc, good), beacon_entries=forged), v.InvalidBeaconEntries, "wrong data"
    )


def test_beacon_entry_rounds(dc: DevChain, good: FullBlock) -> None:
    entries = good.header.beacon_entries
    last = entries[-1]
    shifted = (*entries[:-1], dc.beacon.entry(last.round + 1))
    rejects(dc, resigned(good, worker_of(dc, good), beacon_entries=shifted), v.InvalidBeaconEntries, "rounds")
    rejects(dc, resigned(good, worker_of(dc, good), beacon_entries=()), v.InvalidBeaconEntries, "got none")


# -- 7. election and ticket ------------------------------------------------------------------------------


def test_not_claiming_a_win(dc: DevChain, good: FullBlock) -> None:
    assert good.header.election_proof is not None
    proof = replace(good.header.election_proof, win_count=0)
    rejects(dc, resigned(good, worker_of(dc, good), election_proof=proof), v.NotAWinner, "not claiming")


def surgery_on_miner_1001(change: Callable[[StateTree, Address], None]) -> DevChain:
    """A chain whose genesis state is changed for miner t01001 (state the actors never make)."""
    return DevChain.new(
        genesis=altered_genesis(genesis_of(), lambda tree: change(tree, Address.new_id(1001)))
    )


def set_miner_state(tree: StateTree, miner: Address, change: Callable[[MinerState], MinerState]) -> None:
    actor = tree.get_actor(miner)
    assert actor is not None
    state = change(MinerState.from_cbor(get_cbor(tree.store, actor.head)))
    tree.set_actor(miner, actor.with_head(put_cbor(tree.store, state.to_cbor())))


def set_miner_info(tree: StateTree, miner: Address, **changes: Any) -> None:
    def change(state: MinerState) -> MinerState:
        info = MinerInfo.from_cbor(get_cbor(tree.store, state.info))
        return replace(state, info=put_cbor(tree.store, replace(info, **changes).to_cbor()))

    set_miner_state(tree, miner, change)


def hand_made(chain: DevChain, miner_id: Address, epoch: int, reason: str) -> FullBlock:
    """A block of an ineligible miner, with its real VRFs (and Winning PoSt, if it has sectors to prove),
    made by hand since the producer declines; `reason` is what the election says of the miner."""
    miner = chain.miner(miner_id)
    assert chain.produce(miner.id_address, epoch) is None  # the producer knows it may not mine
    mbase = mining_base(chain.sm, chain.beacon, miner.id_address, chain.head, epoch)
    assert mbase is not None and mbase.ineligible is not None and reason in mbase.ineligible
    vrf = miner.worker_key.sign(election_randomness(mbase.beacon_base, miner.id_address, epoch)).data
    template = BlockTemplate(
        miner=miner.id_address,
        parent=chain.head,
        epoch=epoch,
        ticket=compute_ticket(mbase, miner.worker_key),
        election_proof=ElectionProof(1, vrf),
        beacon_entries=mbase.beacon_entries,
        win_post_proof=(winning_post_proof(chain.sm, mbase, chain.read_sector),) if mbase.sectors else (),
        messages=(),
        timestamp=block_timestamp(chain.sm, chain.head, epoch),
    )
    return create_block(chain.sm, template, miner.worker_key)


def test_miner_not_eligible() -> None:
    """State surgery: t01001 is barred by a consensus fault until epoch 1000. Its block (with its real
    VRFs and Winning PoSt) fails on eligibility."""
    chain = surgery_on_miner_1001(
        lambda tree, miner: set_miner_info(tree, miner, consensus_fault_elapsed=1000)
    )
    reason = "barred by a consensus fault until epoch 1000"
    rejects(chain, hand_made(chain, Address.new_id(1001), 1, reason), v.MinerNotEligible, reason)


def test_miner_with_fee_debt() -> None:
    """State surgery: t01001 owes a fee (its debt is paid before it may mine again, as Lotus)."""
    chain = surgery_on_miner_1001(
        lambda tree, miner: set_miner_state(tree, miner, lambda state: replace(state, fee_debt=1))
    )
    block = hand_made(chain, Address.new_id(1001), 1, "fee debt 1")
    rejects(chain, block, v.MinerNotEligible, "has fee debt 1")


def test_miner_without_power() -> None:
    """State surgery: t01001's power claim is emptied (a miner whose sectors all ended): it still has a
    claim, so it is a miner, but it is below the consensus minimum and may not win."""

    def no_power(tree: StateTree, miner: Address) -> None:
        actor = tree.get_actor(POWER_ACTOR)
        assert actor is not None
        state = PowerState.from_cbor(get_cbor(tree.store, actor.head))
        claims = ClaimsTable.load(tree.store, state.claims)
        claim = claims.get(miner)
        assert claim is not None and claim.raw_byte_power > 0
        claims.set(miner, replace(claim, raw_byte_power=0, quality_adj_power=0))
        state = replace(state, claims=claims.flush())
        tree.set_actor(POWER_ACTOR, actor.with_head(put_cbor(tree.store, state.to_cbor())))

    chain = surgery_on_miner_1001(no_power)
    block = hand_made(chain, Address.new_id(1001), 1, "below the minimum power")
    rejects(chain, block, v.MinerNotEligible, "below the minimum power at the lookback epoch 0")


def test_election_proof_vrf(dc: DevChain, good: FullBlock) -> None:
    key = worker_of(dc, good)
    assert good.header.election_proof is not None
    forged = replace(good.header.election_proof, vrf_proof=key.sign(b"another input").data)
    rejects(dc, resigned(good, key, election_proof=forged), v.InvalidElectionProof, "not the worker's VRF")


def test_win_count(dc: DevChain, good: FullBlock) -> None:
    assert good.header.election_proof is not None
    claimed = good.header.election_proof.win_count
    proof = replace(good.header.election_proof, win_count=claimed + 1)
    block = resigned(good, worker_of(dc, good), election_proof=proof)
    rejects(dc, block, v.WrongWinCount, f"claims {claimed + 1} wins, its election proof earns {claimed}")


def test_ticket_vrf(dc: DevChain, good: FullBlock) -> None:
    key = worker_of(dc, good)
    block = resigned(good, key, ticket=Ticket(key.sign(b"another input").data))
    rejects(dc, block, v.InvalidTicket, "not the worker's VRF")


# -- 8. Winning PoSt -------------------------------------------------------------------------------------


def test_winning_post_corrupt(dc: DevChain, good: FullBlock) -> None:
    (proof,) = good.header.win_post_proof
    data = bytearray(proof.proof_bytes)
    data[-1] ^= 0x01  # a byte of the last Merkle path
    forged = (PoStProof(proof.proof_type, bytes(data)),)
    block = resigned(good, worker_of(dc, good), win_post_proof=forged)
    rejects(dc, block, v.InvalidWinningPoSt, "does not prove the challenged sectors")


def test_winning_post_shape(dc: DevChain, good: FullBlock) -> None:
    (proof,) = good.header.win_post_proof
    key = worker_of(dc, good)
    rejects(dc, resigned(good, key, win_post_proof=()), v.InvalidWinningPoSt, "expected one")
    other_type = (PoStProof(proof.proof_type + 1, proof.proof_bytes),)
    rejects(dc, resigned(good, key, win_post_proof=other_type), v.InvalidWinningPoSt, "proof type")
    truncated = (PoStProof(proof.proof_type, proof.proof_bytes[:100]),)
    rejects(dc, resigned(good, key, win_post_proof=truncated), v.InvalidWinningPoSt, "cannot be checked")


# -- 9. messages -----------------------------------------------------------------------------------------


def test_message_root(dc: DevChain, good: FullBlock) -> None:
    rejects(
        dc, replace(good, secp_messages=good.secp_messages[:1]), v.MessageRootMismatch, "is not the MsgMeta"
    )
    # The root of these very messages was built before (producing the block; chain/chainstore/msgmeta.py
    # remembers it): a header that commits to another root is refused all the same.
    other = msg_meta_cid([], [m.cid() for m in good.secp_messages])
    wrong = resigned(good, worker_of(dc, good), messages=other)
    rejects(dc, wrong, v.MessageRootMismatch, "is not the MsgMeta")


def test_bls_aggregate(dc: DevChain, good: FullBlock) -> None:
    empty = aggregate_bls([])
    rejects(
        dc, resigned(good, worker_of(dc, good), bls_aggregate=empty), v.InvalidBlsAggregate, "does not verify"
    )


def produced_with(dc: DevChain, good: FullBlock, messages: list[SignedMessage]) -> FullBlock:
    block = dc.produce(good.header.miner, good.header.height, messages=messages)
    assert block is not None
    return block


def test_message_signature(dc: DevChain, good: FullBlock) -> None:
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
    forged = SignedMessage(msg.message, sign_message(msg.message, CAROL).signature)
    rejects(dc, produced_with(dc, good, [forged]), v.InvalidMessageSignature, "not made by the signer's key")


def test_message_invalid_for_inclusion(dc: DevChain, good: FullBlock) -> None:
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
    bad = sign_message(replace(msg.message, gas_premium=msg.message.gas_fee_cap + 1), ALICE)
    rejects(dc, produced_with(dc, good, [bad]), v.InvalidMessage, "less than 'GasPremium'")


def test_message_gas_limit(dc: DevChain, good: FullBlock) -> None:
    """A message's own gas limit: above the block's, or below what storing the message costs."""
    for gas_limit, text in (
        (BLOCK_GAS_LIMIT + 1, f"exceeds the block gas limit {BLOCK_GAS_LIMIT}"),
        (1_000, "is less than the cost of storing the message on chain"),
    ):
        (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
        bad = sign_message(replace(msg.message, gas_limit=gas_limit), ALICE)
        rejects(dc, produced_with(dc, good, [bad]), v.InvalidMessage, text)


def with_messages(
    dc: DevChain, good: FullBlock, bls: tuple[Message, ...], secp: tuple[SignedMessage, ...]
) -> FullBlock:
    """good with other message lists, as a producer that sorted them wrongly would make it: the header's
    message root computed for them and the block signed again, so only the messages break a rule."""
    root = ChainStore.in_memory().put_msg_meta([m.cid() for m in bls], [m.cid() for m in secp])
    block = replace(good, bls_messages=bls, secp_messages=secp)
    return resigned(block, worker_of(dc, good), messages=root)


def test_bls_list_holds_a_secp256k1_sender(dc: DevChain, good: FullBlock) -> None:
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
    block = with_messages(dc, good, (msg.message,), ())
    rejects(dc, block, v.InvalidBlsAggregate, "not a BLS key address")


def test_secp256k1_list_holds_a_bls_signature(dc: DevChain, good: FullBlock) -> None:
    bls = bls_transfer(dc)
    as_secp = SignedMessage(bls.message, bls.signature)  # BOB's BLS signature, in the secp256k1 list
    block = with_messages(dc, good, (), (as_secp,))
    rejects(dc, block, v.InvalidMessageSignature, f"carries a signature of type {SigType.BLS}")


def test_block_gas_limit(dc: DevChain, good: FullBlock) -> None:
    first, second = dc.transfers(ALICE, CAROL_ADDR, 2)
    heavy = [sign_message(replace(m.message, gas_limit=6_000_000_000), ALICE) for m in (first, second)]
    rejects(dc, produced_with(dc, good, heavy), v.BlockGasLimitExceeded, "over the block gas limit")


def test_unknown_sender(dc: DevChain, good: FullBlock) -> None:
    stranger = PrivateKey.derive(KeyType.SECP256K1, b"nobody")
    (msg,) = dc.transfers(stranger, CAROL_ADDR, 1, start=0)
    rejects(dc, produced_with(dc, good, [msg]), v.InvalidSender, "does not exist")


def test_sender_not_an_account(dc: DevChain, good: FullBlock) -> None:
    """A message from a miner actor: only accounts send messages (the signature is not even looked at)."""
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
    from_miner = sign_message(replace(msg.message, from_=good.header.miner, nonce=0), ALICE)
    rejects(dc, produced_with(dc, good, [from_miner]), v.InvalidSender, "is not an account actor")


def test_wrong_nonce(dc: DevChain, good: FullBlock) -> None:
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
    skipped = sign_message(replace(msg.message, nonce=msg.message.nonce + 1), ALICE)
    expected = msg.message.nonce
    rejects(dc, produced_with(dc, good, [skipped]), v.WrongNonce, f"expected {expected}")
    rejects(dc, produced_with(dc, good, [bls_transfer(dc, nonce_offset=3)]), v.WrongNonce, "BLS message 0")


def test_insufficient_balance(dc: DevChain, good: FullBlock) -> None:
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
    balance = dc.sm.tree(dc.sm.state_of(dc.head).state_root).get_actor(Address.of_key(ALICE))
    assert balance is not None
    rich = sign_message(replace(msg.message, value=balance.balance), ALICE)
    rejects(dc, produced_with(dc, good, [rich]), v.InsufficientBalance, "may cost")


# -- 10-11. base fee, state ---------------------------------------------------------------------------------


def test_base_fee(dc: DevChain, good: FullBlock) -> None:
    block = resigned(good, worker_of(dc, good), parent_base_fee=good.header.parent_base_fee + 1)
    rejects(dc, block, v.BaseFeeMismatch, f"{good.header.parent_base_fee} computed")


def test_parent_state_root(dc: DevChain, good: FullBlock) -> None:
    stale = dc.head.parent_state_root
    block = resigned(good, worker_of(dc, good), parent_state_root=stale)
    rejects(dc, block, v.StateRootMismatch, f"{good.header.parent_state_root} computed")


def test_parent_receipts(dc: DevChain, good: FullBlock) -> None:
    other = CID.hash_of(b"not these receipts")
    block = resigned(good, worker_of(dc, good), parent_message_receipts=other)
    rejects(dc, block, v.ReceiptsRootMismatch, "receipts root")


def test_every_rule_has_a_test() -> None:
    """Each BlockValidationError subclass is raised by a test above."""
    with open(__file__) as f:
        source = f.read()
    rules = [cls.__name__ for cls in v.BlockValidationError.__subclasses__()]
    missing = [name for name in rules if f"v.{name}" not in source]
    assert not missing, f"rules without a test: {missing}"
    assert len(rules) == 27
