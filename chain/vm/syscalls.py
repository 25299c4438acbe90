"""The VM's syscalls: signature checks, commitments and proof verification, consensus-fault evidence.

These are the pure parts; chain/vm/invocation.py charges gas and turns bad inputs into ActorErrors.
Proofs are filpy's vanilla proofs (proofs/), adapted here from chain types (CIDs, infos) to their
byte-level inputs. Commitment CIDs follow Filecoin's commcid: unsealed (CommD, CommP) codec 0xf101 with
multihash sha2-256-trunc254-padded (0x1012); sealed (CommR) codec 0xf102 with multihash 0xb401 (Lotus's
PoseidonBls12_381A1Fc1), kept although filpy's replica trees hash with sha256 (docs/proofs.md).
"""

from collections.abc import Callable, Sequence
from typing import Final

import structlog

from chain.crypto.signature import Signature, SignatureError, verify
from chain.encoding.cid import CID, FIL_COMMITMENT_SEALED
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_cid, expect_list
from chain.encoding.multihash import Multihash
from chain.state.tree import StateTree
from chain.store.blockstore import get_cbor
from chain.types.address import Address, Protocol
from chain.types.block import BlockHeader
from chain.types.sector import (
    ConsensusFault,
    ConsensusFaultType,
    PieceInclusionVerifyInfo,
    PieceInfo,
    SealVerifyInfo,
    WindowPoStVerifyInfo,
)
from proofs import commp, pip, post, seal
from proofs.registered import UnsupportedProof, make_prover_id, seal_params
from proofs.vanilla import ProofDecodeError

POSEIDON_BLS12_381_A1_FC1: Final = 0xB401
COMMITMENT_SIZE: Final = 32

_log = structlog.get_logger(__name__)


class SyscallError(ValueError):
    """Inputs a syscall cannot work with (the caller's fault: ErrIllegalArgument for the actor)."""


# The state tree an election at a round looks back to on the chain being executed (Lotus
# LookbackStateGetter; the state manager makes one per tipset, chain/stmgr/manager.py). ValueError
# when that chain has no such state (the round is too far above the tipset being executed).
LookbackState = Callable[[int], StateTree]


# -- addresses and signatures -------------------------------------------------------------------------


def resolve_key_address(tree: StateTree, address: Address) -> Address | None:
    """The key address behind address: itself if it is one, else the address an account actor holds.

    A state block missing from the store raises BlockNotFound: that is this node's store failing, not
    an answer (chain/vm/abort.py), so it must not read as "no key address".
    """
    if address.protocol in (Protocol.SECP256K1, Protocol.BLS, Protocol.DELEGATED):
        return address
    actor = tree.get_actor(address)
    if actor is None:
        return None
    try:
        raw = get_cbor(tree.store, actor.head)
    except DecodeError:
        return None
    # Account state is [Address]; any other actor's state is not an address holder.
    if type(raw) is not list or len(raw) != 1 or type(raw[0]) is not bytes:
        return None
    try:
        key = Address.from_bytes(raw[0])
    except DecodeError:
        return None
    return key if key.protocol in (Protocol.SECP256K1, Protocol.BLS) else None


def verify_signature(tree: StateTree, signature: Signature, signer: Address, data: bytes) -> bool:
    """Whether signer's key signed data; SyscallError if signer has no key address."""
    key = resolve_key_address(tree, signer)
    if key is None:
        raise SyscallError(f"signer {signer} is not a key address nor an account")
    try:
        verify(signature, key, data)
    except SignatureError:
        return False
    return True


# -- commitments ---------------------------------------------------------------------------------------


def sealed_commitment(cid: CID) -> bytes:
    """The CommR a sealed-sector CID names."""
    mh = cid.multihash
    if cid.version != 1 or cid.codec != FIL_COMMITMENT_SEALED or mh.code != POSEIDON_BLS12_381_A1_FC1:
        raise SyscallError(f"{cid} is not a sealed sector CID")
    if len(mh.digest) != COMMITMENT_SIZE:
        raise SyscallError(f"sealed CID {cid} holds {len(mh.digest)} bytes, not {COMMITMENT_SIZE}")
    return mh.digest


def sealed_cid(commitment: bytes) -> CID:
    """The sealed-sector CID of a CommR (commcid ReplicaCommitmentV1ToCID)."""
    if len(commitment) != COMMITMENT_SIZE:
        raise ValueError(f"a commitment is {COMMITMENT_SIZE} bytes, got {len(commitment)}")
    return CID.v1(FIL_COMMITMENT_SEALED, Multihash(POSEIDON_BLS12_381_A1_FC1, commitment))


def unsealed_commitment(cid: CID) -> bytes:
    try:
        return commitment_of_v1(cid)
    except DecodeError as exc:
        raise SyscallError(str(exc)) from None


def _sector_size(seal_proof: int) -> int:
    try:
        return seal_params(seal_proof).sector_size
    except UnsupportedProof as exc:
        raise SyscallError(str(exc)) from None


def compute_unsealed_sector_cid(seal_proof: int, pieces: Sequence[PieceInfo]) -> CID:
    """CommD of a sector holding pieces in order, as an unsealed CID (GenerateUnsealedCID)."""
    sector_size = _sector_size(seal_proof)
    try:
        infos = [commp.PieceInfo(p.size, unsealed_commitment(p.piece_cid)) for p in pieces]
        return piece_cid_v1(commp.comm_d(infos, sector_size))
    except commp.PieceError as exc:
        raise SyscallError(str(exc)) from None


# -- proofs -------------------------------------------------------------------------------------------


def verify_seal(info: SealVerifyInfo) -> bool:
    """Whether info.proof proves that info.sealed_cid seals info.unsealed_cid for that sector."""
    try:
        return seal.verify_seal(
            info.seal_proof,
            make_prover_id(info.sector_id.miner),
            info.sector_id.number,
            info.randomness,
            info.interactive_randomness,
            unsealed_commitment(info.unsealed_cid),
            sealed_commitment(info.sealed_cid),
            info.proof,
        )
    except (ProofDecodeError, SyscallError, ValueError) as exc:
        _log.debug("seal proof rejected", reason=str(exc))
        return False


def verify_window_post(info: WindowPoStVerifyInfo) -> bool:
    """Whether info proves every challenged sector; filpy's vanilla Window PoSt carries all its
    partitions in one proof, so exactly one PoStProof is expected."""
    if len(info.proofs) != 1 or not info.challenged_sectors:
        return False
    proof = info.proofs[0]
    try:
        sectors = [
            post.PublicSector(sector.sector_number, sealed_commitment(sector.sealed_cid))
            for sector in info.challenged_sectors
        ]
        return post.verify_window_post(proof.proof_type, info.randomness, sectors, proof.proof_bytes)
    except (ProofDecodeError, SyscallError, ValueError) as exc:
        _log.debug("window post rejected", reason=str(exc))
        return False


def verify_piece_inclusion(info: PieceInclusionVerifyInfo) -> bool:
    """Whether info.proof shows info.piece inside the sector whose CommD is info.unsealed_cid."""
    try:
        proof = pip.PieceInclusionProof.from_bytes(info.proof)
        return pip.verify_piece_inclusion(
            proof,
            comm_d=unsealed_commitment(info.unsealed_cid),
            sector_size=_sector_size(info.seal_proof),
            comm_p=unsealed_commitment(info.piece.piece_cid),
            piece_size=info.piece.size,
        )
    except (pip.MalformedProof, SyscallError) as exc:
        _log.debug("piece inclusion proof rejected", reason=str(exc))
        return False


# -- consensus faults ---------------------------------------------------------------------------------


def miner_worker(tree: StateTree, miner: Address) -> Address | None:
    """The worker address in a miner actor's info, read from go-state-types' layout: miner State
    field 0 is the Info CID, MinerInfo field 1 the Worker. None if the state does not have that shape;
    BlockNotFound if a block is missing from the store (a machine failure, chain/vm/abort.py)."""
    actor = tree.get_actor(miner)
    if actor is None:
        return None
    try:
        state = expect_list(get_cbor(tree.store, actor.head), "miner state")
        info = expect_list(get_cbor(tree.store, expect_cid(state[0], "miner state Info")), "miner info")
        return Address.from_cbor(info[1], "miner info Worker")
    except (DecodeError, IndexError):
        return None


def _check_block_signature(header: BlockHeader, worker_key: Address) -> bool:
    if header.block_sig is None:
        return False
    try:
        verify(header.block_sig, worker_key, header.signing_bytes())
    except SignatureError:
        return False
    return True


def consensus_fault_type(
    block_a: BlockHeader, block_b: BlockHeader, block_c: BlockHeader | None
) -> ConsensusFaultType | None:
    """The fault two headers (and, for parent grinding, a third) show, signatures aside (Lotus
    VerifyConsensusFault's rules): distinct blocks of one miner, a not above b; double-fork mining =
    same height, time-offset mining = same parents at different heights, parent grinding = c is a
    sibling of a (same parents and height) that b's parents include while excluding a. The later rule
    wins, as in Lotus."""
    if block_a.cid() == block_b.cid() or block_a.miner != block_b.miner or block_b.height < block_a.height:
        return None
    fault: ConsensusFaultType | None = None
    if block_a.height == block_b.height:
        fault = ConsensusFaultType.DoubleForkMining
    if block_a.parents == block_b.parents and block_a.height != block_b.height:
        fault = ConsensusFaultType.TimeOffsetMining
    if (
        block_c is not None
        and block_a.parents == block_c.parents
        and block_a.height == block_c.height
        and block_c.cid() in block_b.parents
        and block_a.cid() not in block_b.parents
    ):
        fault = ConsensusFaultType.ParentGrinding
    return fault


def verify_consensus_fault(
    tree: StateTree,
    lookback: LookbackState | None,
    miner: Address,
    curr_epoch: int,
    finality: int,
    header1: bytes,
    header2: bytes,
    extra: bytes,
) -> ConsensusFault | None:
    """The fault two block headers (and, for parent grinding, a third) prove against miner, or None.

    The rules are consensus_fault_type's. Both headers must carry valid BlockSigs of the worker key
    `miner` (the actor asking) had for their height: the worker in the state an election at that
    height looks back to on the chain being executed (`lookback`, Lotus workerKeyAtLookback), so that
    a worker changed since does not clear old blocks nor convict with the new key. Headers older than
    finality prove nothing (Lotus refuses to look their worker up), and neither does a VM without a
    chain (lookback None: genesis, tests of the bare VM). The worker's ID resolves to its key in the
    current state, as Lotus; the account behind an ID never changes.
    """
    try:
        block_a = BlockHeader.from_bytes(header1)
        block_b = BlockHeader.from_bytes(header2)
        block_c = BlockHeader.from_bytes(extra) if extra else None
    except DecodeError as exc:
        _log.debug("consensus fault: bad header", reason=str(exc))
        return None
    fault = consensus_fault_type(block_a, block_b, block_c)
    if fault is None:
        return None
    if lookback is None:
        _log.debug("consensus fault: no chain to read the worker at the blocks' height")
        return None
    keys: dict[int, Address | None] = {}
    for block in (block_a, block_b):
        if block.height < curr_epoch - finality:
            _log.debug("consensus fault: block older than finality", height=block.height, epoch=curr_epoch)
            return None
        if block.height not in keys:
            keys[block.height] = _worker_key_at(tree, lookback, miner, block.height)
        worker_key = keys[block.height]
        if worker_key is None or not _check_block_signature(block, worker_key):
            return None
    return ConsensusFault(target=block_a.miner, epoch=block_b.height, fault_type=fault)


def _worker_key_at(tree: StateTree, lookback: LookbackState, miner: Address, height: int) -> Address | None:
    try:
        lookback_tree = lookback(height)
    except ValueError as exc:
        _log.debug("consensus fault: no lookback state", height=height, reason=str(exc))
        return None
    worker = miner_worker(lookback_tree, miner)
    return None if worker is None else resolve_key_address(tree, worker)
