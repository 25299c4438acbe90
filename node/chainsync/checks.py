"""What gossip asks of the node before passing a block or a message on (Lotus chain/sub/incoming.go
BlockValidator and MessageValidator, filcns.ValidateBlockHeader).

Blocks: a block known bad, or on a bad parent, is rejected. When its parents are validated, every rule
that needs no execution is checked (chain/consensus/validation.py validate_header: height and time,
parent weight, miner power and eligibility, the worker's signature, beacon entries, election proof and
ticket); a failure is a Reject and the block is remembered as bad, except a block from the future,
which is ignored (it may be fine later). When its parents are not validated (we are behind, or it is on
a fork), what our head allows is checked (check_header_signer: a miner with power, eligible, claiming a
win, signed by its worker); an unknown or powerless miner is rejected only when the block is near our
head (within the lookback), otherwise ignored, since our view may be out of date (Lotus decides "near"
by our head's age on the wall clock; filpy by height, so that devnets whose timestamps lag the clock
behave the same).

The three BLS signatures of a header whose parents are validated (the block's, the election proof's and
the ticket's, all by the miner's worker key) are verified first as one batch (verify_bls_batch, each
outcome as if verified alone; only passes are remembered), then validate_header finds them passed; its
checks are kept for the block's full validation (chain/consensus/verified.py BlockChecks).

Messages: the message pool's `add` decides; its refusals map to Reject or Ignore as Lotus maps
mpool.Add's errors.
"""

from collections.abc import Callable

from chain.chainstore.store import TipSetNotFound
from chain.consensus.beacon import RandomBeacon
from chain.consensus.validation import (
    BlockFromFuture,
    BlockValidationError,
    InvalidMinerWorker,
    MinerNotEligible,
    NotAMiner,
    ParentsNotFound,
    check_header_signer,
    checks_ahead,
    validate_header,
)
from chain.consensus.verified import HeaderChecks, verified
from chain.encoding.errors import DecodeError
from chain.mpool.errors import (
    BaseFeeLowerBound,
    DuplicateMessage,
    GasFeeCapTooLow,
    MpoolError,
    NonceGap,
    NonceTooLow,
    NotEnoughFunds,
    ReplaceByFeeTooLow,
    TooManyPending,
)
from chain.stmgr.manager import StateManager
from chain.store.blockstore import BlockNotFound
from chain.sync.badblocks import BadBlockCache
from chain.types.block import BlockHeader
from chain.types.tipset import InvalidTipSet, TipSet, TipSetKey
from node.p2p.gossip import Ignore, Reject, Verdict

# Refusals that are not the sender's fault (Lotus: ErrSoftValidationFailure, ErrRBFTooLowPremium,
# ErrTooManyPendingMessages, ErrNonceGap, ErrGasFeeCapTooLow, ErrNonceTooLow, ErrNotEnoughFunds,
# ErrExistingNonce): ignored. Everything else (too big, invalid, bad signature, no such sender) is
# rejected, as Lotus's default.
IGNORED_MPOOL_ERRORS: tuple[type[MpoolError], ...] = (
    BaseFeeLowerBound,
    ReplaceByFeeTooLow,
    TooManyPending,
    NonceGap,
    GasFeeCapTooLow,
    NonceTooLow,
    NotEnoughFunds,
    DuplicateMessage,
)


def message_verdict(error: MpoolError) -> Verdict:
    """The gossip verdict on a message the pool refused."""
    kind = Ignore if isinstance(error, IGNORED_MPOOL_ERRORS) else Reject
    return kind(f"message pool: {type(error).__name__}: {error}")


def _signatures_together(sm: StateManager, header: BlockHeader) -> HeaderChecks | None:
    """Verify the header's three BLS signatures as one batch, keeping its checks for its validation;
    None when their inputs cannot be computed here (validation then computes and reports)."""
    try:
        parent = sm.chain.load_tipset(TipSetKey(header.parents))
    except (TipSetNotFound, BlockNotFound, DecodeError, InvalidTipSet):
        return None
    found = checks_ahead(sm, header, parent)
    if found is None or found.header is None:
        return None
    checks = found.header
    done = verified(sm)
    done.run_together([checks.block_signature, checks.election, checks.ticket])
    done.keep_ahead(header.cid(), found)
    return checks


def check_block_header(
    sm: StateManager,
    beacon: RandomBeacon,
    bad: BadBlockCache,
    header: BlockHeader,
    head: TipSet,
    validated: Callable[[TipSetKey], bool],
    *,
    now: float,
) -> None:
    """Raise Reject or Ignore for a gossiped block (blocking: reads the state). `validated` says
    whether a parent tipset was validated (its state is there to check against)."""
    cid = header.cid()
    reason = bad.get(cid)
    if reason is not None:
        raise Reject(f"block {cid} is marked bad: {reason}")
    for parent in header.parents:
        reason = bad.get(parent)
        if reason is not None:
            bad.mark_linked([cid], reason, f"linked to {parent}")
            raise Reject(f"block {cid} builds on {parent}, marked bad: {reason}")
    try:
        if validated(TipSetKey(header.parents)):
            validate_header(sm, beacon, header, now=now, ahead=_signatures_together(sm, header))
            return
    except ParentsNotFound:
        pass
    except BlockFromFuture as exc:
        raise Ignore(str(exc)) from None
    except BlockValidationError as exc:
        bad.mark([cid], f"{type(exc).__name__}: {exc}", (cid,))
        raise Reject(f"{type(exc).__name__}: {exc}") from None
    try:
        check_header_signer(sm, header, head)
    except (NotAMiner, InvalidMinerWorker, MinerNotEligible) as exc:
        near = header.height - head.height <= sm.policy.chain_finality
        raise (Reject if near else Ignore)(f"{type(exc).__name__}: {exc}") from None
    except BlockValidationError as exc:
        raise Reject(f"{type(exc).__name__}: {exc}") from None
