"""Block validation: every rule a block must keep to be applied (Lotus filcns.ValidateBlock,
consensus.CommonBlkChecks and checkBlockMessages), each failure its own exception class.

The checks run in this order, cheapest first, and the first failure is raised:

 1. syntax (BlockSyntaxError): ticket, election proof, BLS aggregate and signature present, VRF proofs
    of BLS-signature size, an ID-address miner, parents listed once, at most 10,000 messages;
 2. the parents are known and form a tipset (ParentsNotFound);
 3. height above the parents' (InvalidHeight), timestamp = parents' timestamp + block delay x epochs
    elapsed, i.e. genesis time + height x block delay (WrongTimestamp), and not more than the allowed
    clock drift ahead of now (BlockFromFuture);
 4. ParentWeight = the parent tipset's weight (ParentWeightMismatch);
 5. the miner is a storage miner with a power claim (NotAMiner), whose worker at the lookback state is
    a BLS key (InvalidMinerWorker), which signed the header (InvalidBlockSignature);
 6. beacon entries: the rounds for the epochs since the parent, each verified (InvalidBeaconEntries);
 7. election: the block claims a win (NotAWinner), the miner is eligible (MinerNotEligible), the
    election proof is the worker's VRF (InvalidElectionProof) and earns exactly the WinCount it claims
    (WrongWinCount); the ticket is the worker's VRF (InvalidTicket);
 8. the Winning PoSt proves the sectors the challenge picks (InvalidWinningPoSt);
 9. messages: the header's Messages is the MsgMeta of the block's messages (MessageRootMismatch); the
    BLS aggregate verifies (InvalidBlsAggregate); each message is valid for inclusion
    (InvalidMessage), the gas limits add up to at most the block gas limit (BlockGasLimitExceeded),
    each sender is an account (InvalidSender) with nonces in sequence from its nonce after the parent
    tipset (WrongNonce) and a balance covering what its messages may cost, gas limit x fee cap plus
    value (InsufficientBalance); secp256k1 signatures verify (InvalidMessageSignature);
10. ParentBaseFee = the base fee the parent tipset gives (BaseFeeMismatch);
11. after executing the parent tipset: ParentStateRoot (StateRootMismatch) and ParentMessageReceipts
    (ReceiptsRootMismatch).

`validate_header` runs the rules that need no execution (1 without the message count, 2 to 7): what
gossip checks before passing a block on when its parents are known. `check_header_signer` is what can
be checked of a block whose parents are unknown, on our own head (Lotus ValidateBlockHeader): a miner
with power, eligible, claiming a win, its worker's signature.

Two rules are stricter than Lotus, which has no such check: the balance rule (Lotus lets such a message
fail at execution, charging the miner), and every beacon entry's round (chain/consensus/beacon.py).
"""

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from actors import builtin
from actors.miner.state import SectorOnChainInfo
from chain.chainstore.msgmeta import msg_meta_cid
from chain.chainstore.store import TipSetNotFound
from chain.consensus.base_fee import compute_base_fee
from chain.consensus.beacon import InvalidBeaconEntry, RandomBeacon, check_beacon_entries
from chain.consensus.election import (
    InvalidWorker,
    election_randomness,
    ineligibility,
    is_miner,
    ticket_randomness,
    win_count,
    winning_post_randomness,
    worker_key_address,
)
from chain.consensus.fullblock import FullBlock
from chain.consensus.verified import (
    BlockChecks,
    HeaderChecks,
    SignatureCheck,
    Verified,
    WinningPoStCheck,
    verified,
)
from chain.consensus.weight import weight_of
from chain.crypto.signature import (
    BLS_SIGNATURE_LENGTH,
    Signature,
    SignatureError,
    SigType,
    verify_bls_aggregate,
)
from chain.encoding.cid import CID
from chain.state.tree import StateTree
from chain.stmgr.actors import ActorNotFound, StateQueryError, resolve_to_key
from chain.stmgr.manager import StateManager
from chain.stmgr.miners import miner_info, miner_power, sectors_for_winning_post, winning_post_proof_type
from chain.stmgr.randomness import BeaconEntryNotFound, latest_beacon_entry
from chain.types.address import Address, Protocol
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, PoStProof
from chain.types.message import BLOCK_GAS_LIMIT, Message, SignedMessage
from chain.types.message import InvalidMessage as MessageRuleBroken
from chain.types.tipset import InvalidTipSet, TipSet, TipSetKey
from chain.vm.gas import PRICES
from chain.vm.syscalls import SyscallError, sealed_commitment
from proofs import post
from proofs.vanilla import ProofDecodeError

# lotus buildconstants: AllowableClockDriftSecs and BlockMessageLimit.
ALLOWABLE_CLOCK_DRIFT_SECS: Final = 1
BLOCK_MESSAGE_LIMIT: Final = 10_000

T = TypeVar("T")


class BlockValidationError(Exception):
    """A block that breaks a consensus rule; the subclass names the rule, the message what is wrong."""


class BlockSyntaxError(BlockValidationError):
    pass


class ParentsNotFound(BlockValidationError):
    pass


class InvalidHeight(BlockValidationError):
    pass


class WrongTimestamp(BlockValidationError):
    pass


class BlockFromFuture(BlockValidationError):
    pass


class ParentWeightMismatch(BlockValidationError):
    pass


class NotAMiner(BlockValidationError):
    pass


class InvalidMinerWorker(BlockValidationError):
    pass


class InvalidBlockSignature(BlockValidationError):
    pass


class InvalidBeaconEntries(BlockValidationError):
    pass


class NotAWinner(BlockValidationError):
    pass


class MinerNotEligible(BlockValidationError):
    pass


class InvalidElectionProof(BlockValidationError):
    pass


class WrongWinCount(BlockValidationError):
    pass


class InvalidTicket(BlockValidationError):
    pass


class InvalidWinningPoSt(BlockValidationError):
    pass


class MessageRootMismatch(BlockValidationError):
    pass


class InvalidBlsAggregate(BlockValidationError):
    pass


class InvalidMessage(BlockValidationError):
    pass


class BlockGasLimitExceeded(BlockValidationError):
    pass


class InvalidSender(BlockValidationError):
    pass


class WrongNonce(BlockValidationError):
    pass


class InsufficientBalance(BlockValidationError):
    pass


class InvalidMessageSignature(BlockValidationError):
    pass


class BaseFeeMismatch(BlockValidationError):
    pass


class StateRootMismatch(BlockValidationError):
    pass


class ReceiptsRootMismatch(BlockValidationError):
    pass


def _state_read(error: type[BlockValidationError], what: str | Callable[[], str], fn: Callable[[], T]) -> T:
    """Run a state query; a state that does not answer it makes the block invalid with `error` (its
    message starts with what, or what() when it costs something to format)."""
    try:
        return fn()
    except (ActorNotFound, StateQueryError, InvalidWorker) as exc:
        raise error(f"{what if isinstance(what, str) else what()}: {exc}") from None


# -- the rules, one function each -----------------------------------------------------------------------


def check_header_syntax(header: BlockHeader) -> None:
    """The syntax rules a header keeps on its own (rule 1 without the message count)."""
    h = header
    if h.ticket is None:
        raise BlockSyntaxError("block has no ticket")
    if h.election_proof is None:
        raise BlockSyntaxError("block has no election proof")
    if h.block_sig is None:
        raise BlockSyntaxError("block has no signature")
    if h.bls_aggregate is None:
        raise BlockSyntaxError("block has no BLS aggregate signature")
    if h.miner.protocol != Protocol.ID:
        raise BlockSyntaxError(f"block miner {h.miner} is not an ID address")
    for name, proof in (("ticket", h.ticket.vrf_proof), ("election proof", h.election_proof.vrf_proof)):
        if len(proof) != BLS_SIGNATURE_LENGTH:
            raise BlockSyntaxError(
                f"{name} VRF proof is {len(proof)} bytes, a BLS signature is {BLS_SIGNATURE_LENGTH}"
            )
    if h.height < 1:
        raise BlockSyntaxError(f"block height {h.height} is not above the genesis")
    if not h.parents:
        raise BlockSyntaxError("block has no parents")
    if len(set(h.parents)) != len(h.parents):
        raise BlockSyntaxError("block lists a parent twice")


def check_syntax(block: FullBlock) -> None:
    check_header_syntax(block.header)
    count = len(block.bls_messages) + len(block.secp_messages)
    if count > BLOCK_MESSAGE_LIMIT:
        raise BlockSyntaxError(f"block has {count} messages, more than {BLOCK_MESSAGE_LIMIT}")


def load_parent(sm: StateManager, header: BlockHeader) -> TipSet:
    try:
        return sm.chain.load_tipset(TipSetKey(header.parents))
    except TipSetNotFound as exc:
        raise ParentsNotFound(f"parent tipset {TipSetKey(header.parents)} is unknown: {exc}") from None
    except InvalidTipSet as exc:
        raise ParentsNotFound(f"parents {TipSetKey(header.parents)} do not form a tipset: {exc}") from None


def check_time(sm: StateManager, header: BlockHeader, parent: TipSet, now: float) -> None:
    if header.height <= parent.height:
        raise InvalidHeight(f"block height {header.height} is not above its parents' {parent.height}")
    expected = parent.min_timestamp() + sm.policy.block_delay_secs * (header.height - parent.height)
    if header.timestamp != expected:
        raise WrongTimestamp(
            f"block at height {header.height} has timestamp {header.timestamp}, expected {expected}"
            f" (parent timestamp {parent.min_timestamp()} + {sm.policy.block_delay_secs} s x"
            f" {header.height - parent.height} epochs)"
        )
    if header.timestamp > now + ALLOWABLE_CLOCK_DRIFT_SECS:
        raise BlockFromFuture(
            f"block timestamp {header.timestamp} is {header.timestamp - now:.0f} s ahead of the clock"
            f" (allowed drift {ALLOWABLE_CLOCK_DRIFT_SECS} s)"
        )


def check_parent_weight(sm: StateManager, header: BlockHeader, parent: TipSet) -> None:
    computed = weight_of(sm.store, parent, sm.read_tree)
    if header.parent_weight != computed:
        raise ParentWeightMismatch(
            f"parent weight {header.parent_weight} in the header, {computed} computed for {parent.key}"
        )


def block_signature_check(header: BlockHeader, worker: Address) -> SignatureCheck:
    assert header.block_sig is not None  # checked by check_syntax
    # The header's CID fixes its signature and signing bytes: the check's key digests it instead.
    return SignatureCheck(header.block_sig, worker, header.signing_bytes(), header.cid().bytes)


def election_check(header: BlockHeader, worker: Address, beacon_base: BeaconEntry) -> SignatureCheck:
    assert header.election_proof is not None  # checked by check_syntax
    data = election_randomness(beacon_base, header.miner, header.height)
    return SignatureCheck(Signature(SigType.BLS, header.election_proof.vrf_proof), worker, data)


def ticket_check(
    header: BlockHeader, worker: Address, beacon_base: BeaconEntry, parent: TipSet
) -> SignatureCheck:
    assert header.ticket is not None  # checked by check_syntax
    data = ticket_randomness(beacon_base, header.miner, header.height, parent.min_ticket())
    return SignatureCheck(Signature(SigType.BLS, header.ticket.vrf_proof), worker, data)


def winning_post_check(
    proof: PoStProof, randomness: bytes, sectors: Sequence[SectorOnChainInfo]
) -> WinningPoStCheck:
    """proof's check over the challenged sectors; SyscallError for a sector's CID that is no sealed
    commitment."""
    public = tuple(post.PublicSector(s.sector_number, sealed_commitment(s.sealed_cid)) for s in sectors)
    return WinningPoStCheck(proof.proof_type, randomness, public, proof.proof_bytes)


def check_signature(
    header: BlockHeader, worker: Address, checks: Verified, ahead: HeaderChecks | None = None
) -> None:
    """ahead: the header's checks computed ahead with this worker, if any."""
    try:
        checks.signature(
            ahead.block_signature if ahead is not None else block_signature_check(header, worker)
        )
    except SignatureError as exc:
        raise InvalidBlockSignature(f"block signature by worker {worker} does not verify: {exc}") from None


def check_election(
    sm: StateManager,
    header: BlockHeader,
    parent: TipSet,
    lookback: TipSet,
    lookback_tree: StateTree,
    worker: Address,
    beacon_base: BeaconEntry,
    parent_tree: StateTree | None = None,
    ahead: HeaderChecks | None = None,
) -> None:
    """ahead: the header's checks computed ahead with this worker and beacon_base, if any."""
    proof = header.election_proof
    assert proof is not None and header.ticket is not None  # checked by check_syntax
    if proof.win_count < 1:
        raise NotAWinner(f"block claims {proof.win_count} wins: it is not claiming to be a winner")
    reason = ineligibility(sm, header.miner, parent, lookback, parent_tree)
    if reason is not None:
        raise MinerNotEligible(reason)
    checks = verified(sm)
    try:
        checks.signature(ahead.election if ahead is not None else election_check(header, worker, beacon_base))
    except SignatureError as exc:
        raise InvalidElectionProof(f"election proof is not the worker's VRF output: {exc}") from None
    power = miner_power(lookback_tree, sm.policy, header.miner)
    earned = win_count(proof.vrf_proof, power.miner.quality_adj_power, power.total.quality_adj_power)
    if proof.win_count != earned:
        raise WrongWinCount(f"block claims {proof.win_count} wins, its election proof earns {earned}")
    try:
        checks.signature(
            ahead.ticket if ahead is not None else ticket_check(header, worker, beacon_base, parent)
        )
    except SignatureError as exc:
        raise InvalidTicket(f"ticket is not the worker's VRF output: {exc}") from None


def check_winning_post(
    header: BlockHeader,
    lookback_tree: StateTree,
    beacon_base: BeaconEntry,
    checks: Verified,
    ahead: WinningPoStCheck | None = None,
) -> None:
    """ahead: the check computed ahead with this beacon_base in this lookback state, if any."""
    miner = header.miner
    randomness = winning_post_randomness(beacon_base, miner, header.height)
    sectors = _state_read(
        InvalidWinningPoSt,
        "cannot pick the challenged sectors",
        lambda: sectors_for_winning_post(lookback_tree, miner, randomness),
    )
    if not sectors:
        raise InvalidWinningPoSt(f"miner {miner} has no active sector to prove at the lookback state")
    if len(header.win_post_proof) != 1:
        raise InvalidWinningPoSt(f"expected one Winning PoSt proof, got {len(header.win_post_proof)}")
    proof = header.win_post_proof[0]
    expected_type = _state_read(
        InvalidWinningPoSt,
        "miner info",
        lambda: winning_post_proof_type(miner_info(lookback_tree, miner).window_post_proof_type),
    )
    if proof.proof_type != expected_type:
        raise InvalidWinningPoSt(
            f"Winning PoSt proof type {proof.proof_type}, the miner's is {expected_type}"
        )
    try:
        valid = checks.winning_post(ahead or winning_post_check(proof, randomness, sectors))
    except (ProofDecodeError, SyscallError, ValueError) as exc:
        raise InvalidWinningPoSt(f"Winning PoSt proof cannot be checked: {exc}") from None
    if not valid:
        numbers = ", ".join(str(s.sector_number) for s in sectors)
        raise InvalidWinningPoSt(f"Winning PoSt does not prove the challenged sectors ({numbers})")


def check_message_root(block: FullBlock) -> None:
    # As Lotus, in a scratch store: a block is not stored until it is valid.
    computed = msg_meta_cid([m.cid() for m in block.bls_messages], [m.cid() for m in block.secp_messages])
    if computed != block.header.messages:
        raise MessageRootMismatch(
            f"header Messages {block.header.messages} is not the MsgMeta {computed} of the block's"
            f" {len(block.bls_messages)} BLS and {len(block.secp_messages)} secp256k1 messages"
        )


def _key_of(tree: StateTree, address: Address, error: type[BlockValidationError]) -> Address:
    # The message is formatted only on failure: an address's string form costs a checksum and base32.
    return _state_read(error, lambda: f"sender {address}", lambda: resolve_to_key(tree, address))


def check_bls_aggregate(block: FullBlock, tree: StateTree) -> None:
    assert block.header.bls_aggregate is not None  # checked by check_syntax
    keys = []
    for msg in block.bls_messages:
        key = _key_of(tree, msg.from_, InvalidBlsAggregate)
        if key.protocol != Protocol.BLS:
            raise InvalidBlsAggregate(f"BLS message {msg.cid()} is from {key}, not a BLS key address")
        keys.append(key.payload)
    try:
        verify_bls_aggregate(block.header.bls_aggregate, keys, [m.cid().bytes for m in block.bls_messages])
    except SignatureError as exc:
        raise InvalidBlsAggregate(f"BLS aggregate over {len(keys)} messages: {exc}") from None


def message_signature_check(smsg: SignedMessage, key: Address) -> SignatureCheck:
    """A secp256k1 (or delegated) message's signature by its sender's key (SignedMessage.verify_signature)."""
    return SignatureCheck(smsg.signature, key, smsg.message.signing_bytes())


def check_messages(
    block: FullBlock,
    tree: StateTree,
    checks: Verified | None = None,
    ahead: dict[CID, SignatureCheck] | None = None,
) -> None:
    """Inclusion rules, gas, senders, nonces, balances and secp256k1 signatures, message by message
    (signatures through checks, a node's Verified, when given; ahead: signature checks computed ahead,
    by SignedMessage CID, each taken when its signer is the sender's key found here)."""
    verifier = checks if checks is not None else Verified(1)
    nonces: dict[Address, int] = {}
    owed: dict[Address, int] = {}
    balances: dict[Address, int] = {}
    gas_total = 0

    def check(msg: Message, chain_length: int, where: str) -> None:
        nonlocal gas_total
        try:
            msg.validate_for_block_inclusion(PRICES.on_chain_message(chain_length))
        except MessageRuleBroken as exc:
            raise InvalidMessage(f"{where} ({msg.cid()}) is not valid for inclusion: {exc}") from None
        gas_total += msg.gas_limit
        if gas_total > BLOCK_GAS_LIMIT:
            raise BlockGasLimitExceeded(
                f"gas limits add up to {gas_total} at {where}, over the block gas limit {BLOCK_GAS_LIMIT}"
            )
        sender = tree.lookup_id(msg.from_)
        actor = None if sender is None else tree.get_actor(sender)
        if sender is None or actor is None:
            raise InvalidSender(f"{where}: sender {msg.from_} does not exist")
        if sender not in nonces:
            if actor.code != builtin.ACCOUNT_ACTOR_CODE:
                raise InvalidSender(f"{where}: sender {msg.from_} is not an account actor")
            nonces[sender] = actor.nonce
            balances[sender] = actor.balance
        if msg.nonce != nonces[sender]:
            raise WrongNonce(f"{where}: nonce {msg.nonce}, expected {nonces[sender]} for {msg.from_}")
        nonces[sender] += 1
        owed[sender] = owed.get(sender, 0) + msg.required_funds() + msg.value
        if owed[sender] > balances[sender]:
            raise InsufficientBalance(
                f"{where}: {msg.from_} has {balances[sender]} attoFIL, its messages may cost {owed[sender]}"
            )

    for i, msg in enumerate(block.bls_messages):
        check(msg, msg.chain_length(), f"BLS message {i}")
    for i, smsg in enumerate(block.secp_messages):
        where = f"secp256k1 message {i}"
        if smsg.signature.type not in (SigType.SECP256K1, SigType.DELEGATED):
            raise InvalidMessageSignature(f"{where} carries a signature of type {smsg.signature.type}")
        check(smsg.message, smsg.chain_length(), where)
        key = _key_of(tree, smsg.message.from_, InvalidMessageSignature)
        made = None if ahead is None else ahead.get(smsg.cid())
        try:
            verifier.signature(
                made if made is not None and made.signer == key else message_signature_check(smsg, key)
            )
        except SignatureError as exc:
            raise InvalidMessageSignature(f"{where} ({smsg.cid()}) signature: {exc}") from None


def check_base_fee(sm: StateManager, header: BlockHeader, parent: TipSet) -> None:
    computed = compute_base_fee(sm.chain, parent, sm.policy)
    if header.parent_base_fee != computed:
        raise BaseFeeMismatch(f"parent base fee {header.parent_base_fee} in the header, {computed} computed")


def check_state(sm: StateManager, header: BlockHeader, parent: TipSet) -> None:
    state = sm.state_of(parent)
    if header.parent_state_root != state.state_root:
        raise StateRootMismatch(
            f"parent state root {header.parent_state_root} in the header, {state.state_root} computed"
        )
    if header.parent_message_receipts != state.receipts_root:
        raise ReceiptsRootMismatch(
            f"parent receipts root {header.parent_message_receipts} in the header,"
            f" {state.receipts_root} computed"
        )


# -- the whole block -------------------------------------------------------------------------------------


def _worker_at_lookback(
    sm: StateManager, header: BlockHeader, base: TipSet
) -> tuple[TipSet, StateTree, Address]:
    lookback, lookback_state = sm.lookback(base, header.height)
    lookback_tree = sm.read_tree(lookback_state)
    worker = _state_read(
        InvalidMinerWorker,
        lambda: f"worker of miner {header.miner}",
        lambda: worker_key_address(lookback_tree, header.miner),
    )
    return lookback, lookback_tree, worker


def _validate_header(
    sm: StateManager,
    beacon: RandomBeacon,
    header: BlockHeader,
    parent: TipSet,
    now: float,
    ahead: HeaderChecks | None = None,
) -> tuple[StateTree, BeaconEntry, HeaderChecks | None]:
    """Rules 3 to 7 on a header whose parent tipset is known; the lookback state tree and the beacon
    entry the election draws from (the Winning PoSt needs both), and ahead when it was computed from
    those. ahead: the header's checks computed ahead, each taken only if computed from the values
    found here."""
    check_time(sm, header, parent, now)
    check_parent_weight(sm, header, parent)
    parent_tree = sm.read_parent_tree(parent)  # read-only here: shared by the miner and eligibility rules
    if not is_miner(parent_tree, header.miner):
        raise NotAMiner(f"{header.miner} is not a storage miner with a power claim")
    lookback, lookback_tree, worker = _worker_at_lookback(sm, header, parent)
    if ahead is not None and ahead.worker != worker:
        ahead = None
    check_signature(header, worker, verified(sm), ahead)
    try:
        previous = latest_beacon_entry(sm.chain, parent)
        check_beacon_entries(beacon, header.beacon_entries, header.height, parent.height, previous)
    except (InvalidBeaconEntry, BeaconEntryNotFound) as exc:
        raise InvalidBeaconEntries(str(exc)) from None
    beacon_base = header.beacon_entries[-1] if header.beacon_entries else previous
    if ahead is not None and (ahead.beacon_base != beacon_base or ahead.lookback_state != lookback_tree.root):
        ahead = None
    check_election(sm, header, parent, lookback, lookback_tree, worker, beacon_base, parent_tree, ahead)
    return lookback_tree, beacon_base, ahead


def validate_header(
    sm: StateManager,
    beacon: RandomBeacon,
    header: BlockHeader,
    *,
    now: float | None = None,
    ahead: HeaderChecks | None = None,
) -> TipSet:
    """The rules a header keeps that need no execution (1 without the message count, 2 to 7): syntax,
    parents, height and time, parent weight, miner, worker signature, beacon entries, election proof
    and ticket. What gossip checks before passing a block on when its parents are known (the rest,
    Winning PoSt, messages and the parent's execution, is validate_block's). Returns the parent tipset.

    Reads the parent's parent state and the lookback state, which headers name: nothing is executed
    (except when more null rounds than the lookback precede the block: see StateManager.lookback).
    ahead: the header's checks as checks_ahead computed them, taken as validate_block takes them."""
    check_header_syntax(header)
    parent = load_parent(sm, header)
    _validate_header(sm, beacon, header, parent, time.time() if now is None else now, ahead)
    return parent


def check_header_signer(sm: StateManager, header: BlockHeader, base: TipSet) -> None:
    """What can be checked of a header whose parents are unknown (Lotus ValidateBlockHeader on pubsub):
    on our own base (the head), the miner is a miner with power at the block's lookback and eligible,
    claims a win, and its worker signed the header. Raises NotAMiner, MinerNotEligible, NotAWinner,
    InvalidMinerWorker or InvalidBlockSignature."""
    check_header_syntax(header)
    assert header.election_proof is not None  # checked by check_header_syntax
    base_tree = sm.read_parent_tree(base)
    if not is_miner(base_tree, header.miner):
        raise NotAMiner(f"{header.miner} is not a storage miner with a power claim")
    lookback, _, worker = _worker_at_lookback(sm, header, base)
    reason = ineligibility(sm, header.miner, base, lookback, base_tree)
    if reason is not None:
        raise MinerNotEligible(reason)
    if header.election_proof.win_count < 1:
        raise NotAWinner(
            f"block claims {header.election_proof.win_count} wins: it is not claiming to be a winner"
        )
    check_signature(header, worker, verified(sm))


def checks_ahead(
    sm: StateManager,
    header: BlockHeader,
    parent: TipSet,
    block_secp_messages: Sequence[SignedMessage] | None = None,
) -> BlockChecks | None:
    """The pure checks validate_block will make of header on parent (its worker's block signature,
    election proof and ticket, its Winning PoSt, and the signatures of the block's secp256k1 messages
    from key addresses), with the inputs validation will compute, for a worker process to run ahead
    (chain/consensus/verified.py) and for validation to take instead of computing them again; None
    while they cannot be computed yet (the lookback tipset is not executed: its state is not in the
    store). Nothing is executed. Best effort: a header whose inputs cannot be computed gets fewer
    checks or none, and validation finds and reports what is wrong with it."""
    found = sm.lookback_without_execution(parent, header.height)
    if found is None:
        # The lookback state is the parent's own, after it executes: validation's.
        return BlockChecks(None, {})
    if not sm.store.has(found[1]):
        return None
    checks: HeaderChecks | None = None
    # Anything that stops an input being computed is validation's to report, in its order: stop here.
    with contextlib.suppress(Exception):
        check_header_syntax(header)
        lookback_tree = sm.read_tree(found[1])
        worker = worker_key_address(lookback_tree, header.miner)
        previous = latest_beacon_entry(sm.chain, parent)
        beacon_base = header.beacon_entries[-1] if header.beacon_entries else previous
        signature_checks = (
            block_signature_check(header, worker),
            election_check(header, worker, beacon_base),
            ticket_check(header, worker, beacon_base, parent),
        )
        checks = HeaderChecks(worker, beacon_base, found[1], *signature_checks, None)
        if len(header.win_post_proof) == 1:
            randomness = winning_post_randomness(beacon_base, header.miner, header.height)
            sectors = sectors_for_winning_post(lookback_tree, header.miner, randomness)
            if sectors:
                post_check = winning_post_check(header.win_post_proof[0], randomness, sectors)
                # Made again rather than dataclasses.replace, which costs several times more.
                checks = HeaderChecks(worker, beacon_base, found[1], *signature_checks, post_check)
    # Message signatures by key-address senders (an ID sender's key is in the parent's state after
    # execution: validation resolves it).
    messages: dict[CID, SignatureCheck] = {}
    for smsg in block_secp_messages or ():
        sender = smsg.message.from_
        if sender.protocol in (Protocol.SECP256K1, Protocol.DELEGATED):
            messages[smsg.cid()] = message_signature_check(smsg, sender)
    return BlockChecks(checks, messages)


def validate_block(
    sm: StateManager, beacon: RandomBeacon, block: FullBlock, *, now: float | None = None
) -> None:
    """Raise the BlockValidationError of the first rule block breaks (see the module doc); now is the
    wall clock in Unix seconds (default: time.time())."""
    header = block.header
    checks = verified(sm)
    ahead = checks.take_ahead(block.cid())
    check_syntax(block)
    parent = load_parent(sm, header)
    lookback_tree, beacon_base, made = _validate_header(
        sm,
        beacon,
        header,
        parent,
        time.time() if now is None else now,
        None if ahead is None else ahead.header,
    )
    check_winning_post(
        header, lookback_tree, beacon_base, checks, None if made is None else made.winning_post
    )

    check_message_root(block)
    parent_state = sm.read_tree(sm.state_of(parent).state_root)
    check_bls_aggregate(block, parent_state)
    check_messages(block, parent_state, checks, None if ahead is None else ahead.messages)
    check_base_fee(sm, header, parent)
    check_state(sm, header, parent)
