"""The sector state machine's table: every state has a step, every move of the happy path and of the
failures is allowed and nothing else, every failure can give up, and every state is reachable."""

import itertools

import pytest

from node.sealing.pipeline import SealingPipeline
from node.sealing.states import (
    FAILURE_OF,
    FAILURES,
    HAPPY_PATH,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    SectorState,
    check_transition,
)

S = SectorState


def test_every_state_that_is_not_final_has_a_step() -> None:
    assert set(SealingPipeline._STEPS) == set(SectorState) - TERMINAL
    assert set(TRANSITIONS) == set(SectorState)


def test_the_happy_path_is_allowed_step_by_step() -> None:
    for old, new in itertools.pairwise(HAPPY_PATH):
        check_transition(old, new)
    with pytest.raises(IllegalTransition, match="from Packing to PreCommit1"):
        check_transition(S.PACKING, S.PRE_COMMIT_1)
    with pytest.raises(IllegalTransition):
        check_transition(S.PROVING, S.PACKING)


def test_failures_are_reachable_and_can_give_up_or_retry() -> None:
    for state, failure in FAILURE_OF.items():
        check_transition(state, failure)
        check_transition(state, S.FAILED_UNRECOVERABLE)
    for failure in FAILURES:
        check_transition(failure, S.FAILED_UNRECOVERABLE)
        assert TRANSITIONS[failure] - {S.FAILED_UNRECOVERABLE}, f"{failure} never retries"
    assert TRANSITIONS[S.REMOVED] == TRANSITIONS[S.FAILED_UNRECOVERABLE] == frozenset()
    # a proving sector only leaves when the chain terminates it (node/sealing/replacement.py)
    assert TRANSITIONS[S.PROVING] == frozenset({S.REMOVED})


def test_every_state_is_reachable_from_a_new_sector() -> None:
    seen = {S.WAIT_DEALS, S.PACKING}
    frontier = list(seen)
    while frontier:
        for new in TRANSITIONS[frontier.pop()]:
            if new not in seen:
                seen.add(new)
                frontier.append(new)
    assert seen == set(SectorState)
