"""The states of a sector being sealed, and which state may follow which.

Names are Lotus's (storage/pipeline/sector_state.go), so that `filpy miner sectors list` reads as
`lotus-miner sectors list` does. The happy path of a sector:

    WaitDeals -> Packing -> GetTicket -> PreCommit1 -> PreCommit2 -> PreCommitting -> PreCommitWait
      -> WaitSeed -> Committing -> SubmitCommit -> CommitWait -> FinalizeSector -> Proving

A committed-capacity sector (pledge_sector) starts at Packing. A proving sector the chain terminates
for faults (faulty past the fault max age) is Removed, and a committed-capacity sector replaces it.
Each failure has its own state, which keeps the reason and retries after a backoff (or gives up:
FailedUnrecoverable). `TRANSITIONS` lists every allowed move; the pipeline refuses any other, so a bug
cannot skip a step silently.
"""

from enum import StrEnum
from typing import Final


class SectorState(StrEnum):
    # the happy path
    WAIT_DEALS = "WaitDeals"  # open: deal pieces are added until it is full or due
    PACKING = "Packing"  # zeros fill the rest; CommD and the pieces' inclusion proofs are fixed
    GET_TICKET = "GetTicket"  # the seal ticket is drawn from the chain
    PRE_COMMIT_1 = "PreCommit1"  # SDR sealing: labels, replica, CommR
    PRE_COMMIT_2 = "PreCommit2"  # the sealed files checked by a trial proof before any deposit is paid
    PRE_COMMITTING = "PreCommitting"  # waiting for the pre-commit batcher to send it
    PRE_COMMIT_WAIT = "PreCommitWait"  # PreCommitSector(Batch) sent: waiting for it to land
    WAIT_SEED = "WaitSeed"  # pre-committed: waiting for the interactive seed to be final enough
    COMMITTING = "Committing"  # the seal proof is computed for the seed
    SUBMIT_COMMIT = "SubmitCommit"  # waiting for the commit batcher (ProveCommitSector or Aggregate)
    COMMIT_WAIT = "CommitWait"  # the proof is sent: waiting for it to land
    FINALIZE_SECTOR = "FinalizeSector"  # into the sector store; sealing leftovers removed
    PROVING = "Proving"  # on chain with power; the Window PoSt scheduler proves it
    REMOVED = "Removed"  # no longer on chain (expired, or terminated for faults and replaced): files gone

    # failures: each keeps its reason and retries after a backoff
    PACKING_FAILED = "PackingFailed"
    SEAL_PRE_COMMIT_1_FAILED = "SealPreCommit1Failed"
    SEAL_PRE_COMMIT_2_FAILED = "SealPreCommit2Failed"
    PRE_COMMIT_FAILED = "PreCommitFailed"
    COMPUTE_PROOF_FAILED = "ComputeProofFailed"
    COMMIT_FAILED = "CommitFailed"
    FINALIZE_FAILED = "FinalizeFailed"
    FAILED_UNRECOVERABLE = "FailedUnrecoverable"  # given up: the reason says why


S = SectorState

TERMINAL: Final = frozenset({S.PROVING, S.REMOVED, S.FAILED_UNRECOVERABLE})

FAILURES: Final = frozenset(
    {
        S.PACKING_FAILED,
        S.SEAL_PRE_COMMIT_1_FAILED,
        S.SEAL_PRE_COMMIT_2_FAILED,
        S.PRE_COMMIT_FAILED,
        S.COMPUTE_PROOF_FAILED,
        S.COMMIT_FAILED,
        S.FINALIZE_FAILED,
    }
)

# Where each working state goes when its step fails.
FAILURE_OF: Final = {
    S.PACKING: S.PACKING_FAILED,
    S.GET_TICKET: S.SEAL_PRE_COMMIT_1_FAILED,
    S.PRE_COMMIT_1: S.SEAL_PRE_COMMIT_1_FAILED,
    S.PRE_COMMIT_2: S.SEAL_PRE_COMMIT_2_FAILED,
    S.PRE_COMMITTING: S.PRE_COMMIT_FAILED,
    S.PRE_COMMIT_WAIT: S.PRE_COMMIT_FAILED,
    S.WAIT_SEED: S.PRE_COMMIT_FAILED,
    S.COMMITTING: S.COMPUTE_PROOF_FAILED,
    S.SUBMIT_COMMIT: S.COMMIT_FAILED,
    S.COMMIT_WAIT: S.COMMIT_FAILED,
    S.FINALIZE_SECTOR: S.FINALIZE_FAILED,
}

# Once the chain may hold a pre-commit of the sector, a new ticket would give another CommR than the one
# on chain: from here on a re-seal reuses the pre-committed ticket.
ON_CHAIN_FROM: Final = S.PRE_COMMIT_WAIT

TRANSITIONS: Final[dict[SectorState, frozenset[SectorState]]] = {
    state: frozenset(nexts)
    for state, nexts in {
        S.WAIT_DEALS: {S.PACKING},
        S.PACKING: {S.GET_TICKET},
        S.GET_TICKET: {S.PRE_COMMIT_1},
        S.PRE_COMMIT_1: {S.PRE_COMMIT_2},
        S.PRE_COMMIT_2: {S.PRE_COMMITTING},
        # a pre-commit already on chain (or proven) after a restart is taken as it is
        # (and a ticket too old by then means sealing again: SealPreCommit1Failed)
        S.PRE_COMMITTING: {S.PRE_COMMIT_WAIT, S.WAIT_SEED, S.FINALIZE_SECTOR, S.SEAL_PRE_COMMIT_1_FAILED},
        S.PRE_COMMIT_WAIT: {S.WAIT_SEED},
        S.WAIT_SEED: {S.COMMITTING, S.FINALIZE_SECTOR},
        S.COMMITTING: {S.SUBMIT_COMMIT},
        S.SUBMIT_COMMIT: {S.COMMIT_WAIT, S.FINALIZE_SECTOR},
        S.COMMIT_WAIT: {S.FINALIZE_SECTOR},
        S.FINALIZE_SECTOR: {S.PROVING},
        # the chain terminated it (faulty past the fault max age: node/sealing/replacement.py), or it expired
        S.PROVING: {S.REMOVED},
        S.REMOVED: set(),
        S.FAILED_UNRECOVERABLE: set(),
        # retries (Lotus states_failed.go)
        S.PACKING_FAILED: {S.PACKING},
        S.SEAL_PRE_COMMIT_1_FAILED: {S.GET_TICKET},
        S.SEAL_PRE_COMMIT_2_FAILED: {S.PRE_COMMIT_2, S.PRE_COMMIT_1},
        S.PRE_COMMIT_FAILED: {
            S.PRE_COMMITTING,
            S.PRE_COMMIT_WAIT,
            S.WAIT_SEED,
            S.FINALIZE_SECTOR,
            S.SEAL_PRE_COMMIT_1_FAILED,
        },
        S.COMPUTE_PROOF_FAILED: {S.COMMITTING, S.SEAL_PRE_COMMIT_1_FAILED},
        S.COMMIT_FAILED: {
            S.SUBMIT_COMMIT,
            S.COMMIT_WAIT,
            S.COMMITTING,
            S.WAIT_SEED,
            S.PRE_COMMIT_FAILED,
            S.FINALIZE_SECTOR,
        },
        S.FINALIZE_FAILED: {S.FINALIZE_SECTOR},
    }.items()
}

for _state, _failure in FAILURE_OF.items():
    TRANSITIONS[_state] = TRANSITIONS[_state] | {_failure, S.FAILED_UNRECOVERABLE}
for _state in FAILURES:
    TRANSITIONS[_state] = TRANSITIONS[_state] | {S.FAILED_UNRECOVERABLE}

# The order of the happy path, for "how far along" questions (the batchers ask which sectors are
# still on their way to them).
HAPPY_PATH: Final = (
    S.WAIT_DEALS,
    S.PACKING,
    S.GET_TICKET,
    S.PRE_COMMIT_1,
    S.PRE_COMMIT_2,
    S.PRE_COMMITTING,
    S.PRE_COMMIT_WAIT,
    S.WAIT_SEED,
    S.COMMITTING,
    S.SUBMIT_COMMIT,
    S.COMMIT_WAIT,
    S.FINALIZE_SECTOR,
    S.PROVING,
)


class IllegalTransition(RuntimeError):
    """A move TRANSITIONS does not allow: a bug in the pipeline, never a condition of the chain."""


def check_transition(old: SectorState, new: SectorState) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"a sector cannot go from {old} to {new}")
