"""Checks done ahead: while the syncer validates and executes one tipset, a worker process runs the pure
checks (BLS signatures, Winning PoSt) of the tipsets after it (chain/consensus/verified.py).

The inputs of those checks come from the lookback state, `chain_finality` epochs back, so they can be
computed for every tipset whose lookback tipset has been executed: a whole batch on a chain with
Lotus's finality of 900, the next finality - 1 tipsets on a devnet's 20. `advance()` computes them
(validation.checks_ahead: the functions validation itself uses) for the queued tipsets that have come
within reach, in order, and hands them to the pool; it keeps them by block in the node's `Verified`,
so that validation takes them instead of computing their inputs again. Validation then finds each
check passed, waits for it, or does it itself (a check that failed in the worker is done again here,
to raise its error).

The checks of several tipsets go over as one hand-off while the worker is far enough ahead of
validation: the worker verifies a hand-off's BLS signatures as one batch, whose fixed cost (two Miller
loops and a final exponentiation, ~0.9 ms) a devnet tipset's three signatures would otherwise pay
alone. Checks are held back until HAND_OFF_CHECKS of them, and only while at least HAND_OFF_LEAD
tipsets handed over are still to be validated, so validation does not come to a check held here:
before each block is validated, what is held goes over once fewer are ahead.
"""

from collections import deque
from collections.abc import Sequence
from typing import Final

from chain.chainstore.store import TipSetNotFound
from chain.consensus.fullblock import FullBlock
from chain.consensus.validation import checks_ahead
from chain.consensus.verified import Check, Verified, VerifierPool, verified
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.stmgr.manager import StateManager
from chain.store.blockstore import BlockNotFound
from chain.types.tipset import InvalidTipSet, TipSetKey

HAND_OFF_CHECKS: Final = 48  # checks held back for one hand-off, at most (a devnet tipset has ~7)...
HAND_OFF_LEAD: Final = 8  # ...while this many tipsets handed over, or more, are not validated yet


class CheckAhead:
    """The tipsets whose checks are still to be handed to the pool, oldest first. Used by one sync, from
    the thread that validates (its reads of the chain and the state are blocking)."""

    def __init__(self, sm: StateManager, pool: VerifierPool) -> None:
        self._sm = sm
        self._pool = pool
        self._verified: Verified = verified(sm)
        self._queue: deque[tuple[FullBlock, ...]] = deque()
        # The lookback state the oldest queued tipset waits for: until it is stored, nothing to do.
        self._waiting: CID | None = None
        self.submitted = 0  # checks handed to the pool
        self._held: list[Check] = []  # computed, not handed over yet
        self._held_heights: list[int] = []  # of the tipsets whose checks are held
        self._handed: deque[int] = deque()  # heights of the tipsets handed over, not validated yet

    def extend(self, tipsets: Sequence[tuple[FullBlock, ...]]) -> None:
        self._queue.extend(tipsets)

    def __len__(self) -> int:
        return len(self._queue)

    def advance(self, validating: int) -> None:
        """Hand over the checks of the queued tipsets whose lookback state is there now (blocking), before
        a block of height `validating` is validated."""
        while self._handed and self._handed[0] < validating:
            self._handed.popleft()
        self._compute()
        if self._held and len(self._handed) < HAND_OFF_LEAD:
            self._hand_off()

    def _compute(self) -> None:
        """Compute the checks of the queued tipsets whose lookback state is there; hold them, or hand
        them over."""
        if self._waiting is not None and not self._sm.store.has(self._waiting):
            return
        self._waiting = None
        while self._queue:
            blocks = self._queue[0]
            try:
                parent = self._sm.chain.load_tipset(TipSetKey(blocks[0].header.parents))
            except (TipSetNotFound, BlockNotFound, DecodeError, InvalidTipSet):
                return  # not stored yet; or never, and then validation says so and the sync ends
            checks: list[Check] = []
            for block in blocks:
                found = checks_ahead(self._sm, block.header, parent, block.secp_messages)
                if found is None:
                    # Its lookback tipset is not executed yet, nor are those of the next ones.
                    lookback = self._sm.lookback_without_execution(parent, block.header.height)
                    self._waiting = None if lookback is None else lookback[1]
                    return
                self._verified.keep_ahead(block.cid(), found)
                checks += found.all()
            self._queue.popleft()
            self._held += checks
            self._held_heights.append(blocks[0].header.height)
            if len(self._held) >= HAND_OFF_CHECKS or len(self._handed) < HAND_OFF_LEAD:
                self._hand_off()

    def _hand_off(self) -> None:
        self.submitted += self._verified.submit(self._pool, self._held)
        self._handed.extend(self._held_heights)
        self._held = []
        self._held_heights = []
