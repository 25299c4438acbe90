"""Checks on headers fetched while walking a chain back, before anything is executed.

What a header chain shows without state: each header's syntax, the tipset's blocks agreeing on their
beacon entries (Lotus collectHeaders), and between a tipset and its parent, heights going up, each
block's timestamp being the parent's plus the block delay per epoch, ParentWeight never going down,
and the beacon rounds being those of the epochs in between. Everything else (signatures, election,
Winning PoSt, messages, state) needs the parent state and waits for validation proper
(chain/consensus/validation.py), tipset by tipset, going forward.

A failure names the block (`BadHeader.block`) and the consensus rule it breaks, so the syncer can
remember the block as bad; `BlockFromFuture` is temporal and never makes a block bad.
"""

from chain.consensus.beacon import RandomBeacon
from chain.consensus.validation import (
    ALLOWABLE_CLOCK_DRIFT_SECS,
    BlockFromFuture,
    BlockValidationError,
    InvalidBeaconEntries,
    InvalidHeight,
    ParentWeightMismatch,
    WrongTimestamp,
    check_header_syntax,
)
from chain.encoding.cid import CID
from chain.params import Policy
from chain.types.tipset import TipSet


class BadHeader(Exception):
    """A header that breaks a rule: `block` is the culprit, `error` the rule's exception."""

    def __init__(self, block: CID, error: BlockValidationError) -> None:
        super().__init__(f"block {block}: {type(error).__name__}: {error}")
        self.block = block
        self.error = error

    @property
    def temporal(self) -> bool:
        """Not the block's fault for good: it may be valid later (Lotus ErrTemporal)."""
        return isinstance(self.error, BlockFromFuture)


def check_tipset_headers(ts: TipSet, *, now: float) -> None:
    """Each header's own syntax, the blocks' beacon entries identical, nothing from the future."""
    first = ts.blocks[0]
    for header in ts.blocks:
        try:
            check_header_syntax(header)
        except BlockValidationError as exc:
            raise BadHeader(header.cid(), exc) from None
        if header.beacon_entries != first.beacon_entries:
            raise BadHeader(
                header.cid(),
                InvalidBeaconEntries(
                    f"the blocks of tipset {ts.key} at {ts.height} carry different beacon entries"
                ),
            )
        if header.timestamp > now + ALLOWABLE_CLOCK_DRIFT_SECS:
            raise BadHeader(
                header.cid(),
                BlockFromFuture(
                    f"block timestamp {header.timestamp} is {header.timestamp - now:.0f} s ahead of the clock"
                ),
            )
    rounds = [entry.round for entry in first.beacon_entries]
    if rounds != sorted(rounds):
        raise BadHeader(first.cid(), InvalidBeaconEntries("beacon entries are not in round order"))


def check_link(child: TipSet, parent: TipSet, policy: Policy, beacon: RandomBeacon) -> None:
    """The rules between a tipset and its parent that headers alone decide."""
    for header in child.blocks:
        if header.height <= parent.height:
            raise BadHeader(
                header.cid(),
                InvalidHeight(f"block height {header.height} is not above its parents' {parent.height}"),
            )
        expected = parent.min_timestamp() + policy.block_delay_secs * (header.height - parent.height)
        if header.timestamp != expected:
            raise BadHeader(
                header.cid(),
                WrongTimestamp(
                    f"block at height {header.height} has timestamp {header.timestamp}, expected {expected}"
                ),
            )
        if header.parent_weight < parent.parent_weight:
            raise BadHeader(
                header.cid(),
                ParentWeightMismatch(
                    f"parent weight {header.parent_weight} is below its parent's own {parent.parent_weight}"
                ),
            )
        rounds = [entry.round for entry in header.beacon_entries]
        wanted = [beacon.max_beacon_round_for_epoch(e) for e in range(parent.height + 1, header.height + 1)]
        if rounds != wanted:
            raise BadHeader(
                header.cid(),
                InvalidBeaconEntries(
                    f"beacon rounds {_span(rounds)} for epochs {parent.height + 1}..{header.height},"
                    f" expected {_span(wanted)}"
                ),
            )


def check_junction(child: TipSet, base_weight: int) -> None:
    """The first tipset above a validated one: its ParentWeight must be that tipset's weight."""
    for header in child.blocks:
        if header.parent_weight != base_weight:
            raise BadHeader(
                header.cid(),
                ParentWeightMismatch(
                    f"parent weight {header.parent_weight} in the header,"
                    f" {base_weight} computed for its parent"
                ),
            )


def _span(rounds: list[int]) -> str:
    if not rounds:
        return "none"
    return str(rounds[0]) if len(rounds) == 1 else f"{rounds[0]}..{rounds[-1]} ({len(rounds)})"
