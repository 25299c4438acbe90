"""Producing a block: Lotus miner.mineOne and filcns.CreateBlock as pure functions of the chain.

produce_block takes the parent tipset, the miner and its worker key, the epoch, the candidate messages
(already selected by the message pool) and a way to read the miner's sealed sectors, and follows
mineOne's order:

1. the mining base (chain/consensus/election.py mining_base): beacon entries for the block, the lookback
   state, power, worker, the sectors the Winning PoSt challenge picks; nothing to mine with, or not
   eligible: None;
2. the ticket (VRF over the ticket randomness), then the election proof; no win: None (for this
   miner the epoch is a null round);
3. the Winning PoSt from the challenged sectors' replicas (read_sector);
4. the block (create_block, Lotus CreateBlock and CreateBlockHeader): messages split into BLS (carried
   unsigned, their signatures aggregated) and secp256k1, stored with their MsgMeta; ParentStateRoot and
   ParentMessageReceipts from state_of(parent); ParentWeight; ParentBaseFee; timestamp = parent
   timestamp + block delay x epochs since the parent; signed by the worker key.

The result passes chain/consensus/validation.py; the mining loop still validates it before applying,
as Lotus does.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from actors.miner.state import SectorOnChainInfo
from chain.consensus.base_fee import compute_base_fee
from chain.consensus.beacon import RandomBeacon
from chain.consensus.election import (
    MiningBase,
    check_worker_key,
    compute_ticket,
    election_proof,
    mining_base,
    winning_post_randomness,
)
from chain.consensus.fullblock import FullBlock
from chain.consensus.weight import weight_of
from chain.crypto.keys import PrivateKey
from chain.crypto.signature import SigType, aggregate_bls
from chain.stmgr.manager import StateManager
from chain.stmgr.miners import miner_info, winning_post_proof_type
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from proofs import post

# Reads a sealed sector of a miner for proving: its commitments and replica (None if unreadable).
SectorReader = Callable[[Address, SectorOnChainInfo], post.ProvingSector]


class ProducerError(Exception):
    """The block cannot be made: a message of unknown signature type, an unreadable sector."""


@dataclass(frozen=True, slots=True)
class BlockTemplate:
    """Everything a block is made of besides what the parent state determines (Lotus BlockTemplate)."""

    miner: Address
    parent: TipSet
    epoch: int
    ticket: Ticket
    election_proof: ElectionProof
    beacon_entries: tuple[BeaconEntry, ...]
    win_post_proof: tuple[PoStProof, ...]
    messages: tuple[SignedMessage, ...]
    timestamp: int


def block_timestamp(sm: StateManager, parent: TipSet, epoch: int) -> int:
    return parent.min_timestamp() + sm.policy.block_delay_secs * (epoch - parent.height)


def winning_post_proof(sm: StateManager, mbase: MiningBase, read_sector: SectorReader) -> PoStProof:
    """Prove the sectors the challenge picked (raises post.FaultySectors when one cannot be read)."""
    tree = sm.tree(mbase.lookback_state)
    proof_type = winning_post_proof_type(miner_info(tree, mbase.miner).window_post_proof_type)
    randomness = winning_post_randomness(mbase.beacon_base, mbase.miner, mbase.epoch)
    sectors = [read_sector(mbase.miner, sector) for sector in mbase.sectors]
    proof = post.generate_winning_post(proof_type, randomness, sectors)
    return PoStProof(proof_type, proof.to_bytes())


def produce_block(
    sm: StateManager,
    beacon: RandomBeacon,
    *,
    parent: TipSet,
    miner: Address,
    worker_key: PrivateKey,
    epoch: int,
    messages: Sequence[SignedMessage],
    read_sector: SectorReader,
    beacon_entries: tuple[BeaconEntry, ...] | None = None,
) -> FullBlock | None:
    """The miner's block at epoch on parent, or None when it does not win (or may not mine)."""
    if epoch <= parent.height:
        raise ValueError(f"epoch {epoch} must be above the parent's height {parent.height}")
    mbase = mining_base(sm, beacon, miner, parent, epoch, beacon_entries)
    if mbase is None or not mbase.eligible:
        return None
    check_worker_key(mbase, worker_key)
    ticket = compute_ticket(mbase, worker_key)
    proof = election_proof(mbase, worker_key)
    if proof is None:
        return None
    try:
        win_post = winning_post_proof(sm, mbase, read_sector)
    except post.FaultySectors as exc:
        raise ProducerError(f"cannot prove the Winning PoSt of {miner}: {exc}") from None
    template = BlockTemplate(
        miner=miner,
        parent=parent,
        epoch=epoch,
        ticket=ticket,
        election_proof=proof,
        beacon_entries=mbase.beacon_entries,
        win_post_proof=(win_post,),
        messages=tuple(messages),
        timestamp=block_timestamp(sm, parent, epoch),
    )
    return create_block(sm, template, worker_key)


def create_block(sm: StateManager, template: BlockTemplate, worker_key: PrivateKey) -> FullBlock:
    """The signed block of a template, its messages stored (Lotus CreateBlock)."""
    parent = template.parent
    state = sm.state_of(parent)
    bls: list[Message] = []
    bls_signatures = []
    secp: list[SignedMessage] = []
    for smsg in template.messages:
        kind = smsg.signature.type
        if kind == SigType.BLS:
            bls.append(smsg.message)
            bls_signatures.append(smsg.signature)
        elif kind in (SigType.SECP256K1, SigType.DELEGATED):
            secp.append(smsg)
        else:
            raise ProducerError(f"message {smsg.cid()} has a signature of unknown type {kind}")
    header = BlockHeader(
        miner=template.miner,
        ticket=template.ticket,
        election_proof=template.election_proof,
        beacon_entries=template.beacon_entries,
        win_post_proof=template.win_post_proof,
        parents=parent.cids,
        parent_weight=weight_of(sm.store, parent),
        height=template.epoch,
        parent_state_root=state.state_root,
        parent_message_receipts=state.receipts_root,
        messages=sm.chain.put_messages(bls, secp),
        bls_aggregate=aggregate_bls(bls_signatures),
        timestamp=template.timestamp,
        block_sig=None,
        parent_base_fee=compute_base_fee(sm.chain, parent, sm.policy),
    )
    header = replace(header, block_sig=worker_key.sign(header.signing_bytes()))
    return FullBlock(header, tuple(bls), tuple(secp))
