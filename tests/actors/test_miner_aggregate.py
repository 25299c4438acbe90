"""Miner ProveCommitAggregate (26) on MockRuntime: several sectors proven by one message, with real
2 KiB sectors sealed by proofs/ and the mock's verify_seal answered by the real verifier; every
failure's exit code; and the params' CBOR (round trips, hostile input)."""

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import builtin
from actors.market.types import ActivateDealsParams, ActivateDealsResult, MarketMethod
from actors.miner.actor import ACTOR
from actors.miner.state import PreCommits
from actors.miner.types import (
    MAX_AGGREGATE_PROOF_BYTES,
    MinerMethod,
    PowerPair,
    ProveCommitAggregateParams,
    decode_aggregate_proof,
    encode_aggregate_proof,
)
from chain.encoding import dagcbor
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.sector import SealVerifyInfo
from chain.vm.exitcode import ExitCode
from tests.actors.miner_harness import (
    CONTROL,
    OWNER,
    REAL_ZERO_COMMD,
    SECTOR_SIZE,
    WORKER,
    Harness,
    fails,
    real_verifier,
)

DEALS_COMMD = piece_cid_v1(bytes([3]) * 32)


def precommit_real(h: Harness, numbers: Sequence[int]) -> dict[int, bytes]:
    """Seal each sector for real, pre-commit its CommR; returns sector number -> seal proof."""
    return {number: h.precommit_zero_sector(number)[1] for number in numbers}


def expect_verifications(
    h: Harness, proofs: dict[int, bytes], verifier: Callable[[SealVerifyInfo], bool]
) -> None:
    """Script the per-sector seal checks in ascending sector order, up to the first failure."""
    for number in sorted(proofs):
        info = h.expect_seal_inputs(number, proofs[number], REAL_ZERO_COMMD)
        verified = verifier(info)
        h.rt.expect_verify_seal(info, verified)
        if not verified:
            return


def expect_activation(
    h: Harness, numbers: Sequence[int], deal_space: dict[int, int | ExitCode] | None = None
) -> tuple[PowerPair, int]:
    """Script the activation of these sectors; deal_space gives a sector's market answer (its deal
    space, or the exit code the market refuses with). Returns the power and pledge expected."""
    rt, deal_space = h.rt, deal_space or {}
    h.expect_stats()
    power, pledge = PowerPair(), 0
    for number in numbers:
        pc = h.precommit_of(number).info
        space = 0
        if pc.deal_ids:
            answer = deal_space[number]
            params = ActivateDealsParams(pc.deal_ids, pc.expiration)
            if isinstance(answer, ExitCode):
                rt.expect_send(
                    builtin.STORAGE_MARKET_ACTOR_ADDR, MarketMethod.ActivateDeals, params, 0, None, answer
                )
                continue
            space = answer
            result = ActivateDealsResult(space)
            rt.expect_send(builtin.STORAGE_MARKET_ACTOR_ADDR, MarketMethod.ActivateDeals, params, 0, result)
        qa, sector_pledge = h.activation(number, space)
        power = power + PowerPair(SECTOR_SIZE, qa)
        pledge += sector_pledge
    if pledge:
        h.expect_power(power)
        h.expect_pledge(pledge)
    return power, pledge


def aggregate(h: Harness, numbers: Sequence[int], proofs: Sequence[bytes], caller: Address = WORKER) -> None:
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, caller)
    params = ProveCommitAggregateParams(BitField.from_bits(numbers), encode_aggregate_proof(proofs))
    h.rt.call(ACTOR, MinerMethod.ProveCommitAggregate, params)


def wait_for_seed(h: Harness) -> None:
    h.rt.curr_epoch += h.rt.policy.pre_commit_challenge_delay + 1


# -- success ---------------------------------------------------------------------------------------------


def test_real_sectors_are_proven_by_one_aggregate(h: Harness) -> None:
    proofs = precommit_real(h, [3, 5, 9])
    wait_for_seed(h)
    assert h.state().pre_commit_deposits > 0
    sealed = {n: h.precommit_of(n).info.sealed_cid for n in (3, 5, 9)}
    h.rt.expect_validate_caller_addr(*h.control_set())
    expect_verifications(h, proofs, real_verifier)
    power, pledge = expect_activation(h, [3, 5, 9])
    aggregate(h, [3, 5, 9], [proofs[3], proofs[5], proofs[9]])
    h.rt.verify()
    assert power == PowerPair(3 * SECTOR_SIZE, 3 * SECTOR_SIZE)
    state = h.state()
    assert state.pre_commit_deposits == 0
    assert state.initial_pledge == pledge > 0
    for number in (3, 5, 9):
        sector = h.sector(number)
        assert sector is not None and sector.activation == h.rt.curr_epoch
        assert sector.unsealed_cid == REAL_ZERO_COMMD
        assert sector.sealed_cid == sealed[number]
        assert PreCommits.load(h.rt.store, state.pre_committed_sectors).get(number) is None
    # In v9's assignment order: the first two fill one partition of one deadline, the third opens
    # another deadline.
    d3, p3 = h.location(3)
    assert h.location(5) == (d3, p3) and h.location(9)[0] != d3
    assert h.partition(d3, p3).live_power == PowerPair(2 * SECTOR_SIZE, 2 * SECTOR_SIZE)


def test_owner_and_control_addresses_may_aggregate(h: Harness) -> None:
    proofs = precommit_real(h, [1, 2, 3, 4])
    wait_for_seed(h)
    for caller, pair in ((OWNER, [1, 2]), (CONTROL, [3, 4])):
        h.rt.expect_validate_caller_addr(*h.control_set())
        expect_verifications(h, {n: proofs[n] for n in pair}, real_verifier)
        expect_activation(h, pair)
        aggregate(h, pair, [proofs[n] for n in pair], caller=caller)
        h.rt.verify()
    assert all(h.sector(n) is not None for n in (1, 2, 3, 4))


def test_aggregate_places_sectors_as_one_prove_commit_each_would(h: Harness) -> None:
    """Three sectors (the devnet's most) by one aggregate end up where three ProveCommitSectors at the
    same epoch put them."""
    numbers = [10, 11, 12]
    assert len(numbers) == h.rt.policy.max_aggregated_sectors
    one_by_one = Harness()
    one_by_one.construct()
    for harness in (h, one_by_one):
        for number in numbers:
            harness.precommit(harness.precommit_params(number))
        wait_for_seed(harness)
    for number in numbers:
        one_by_one.prove_commit(number, unsealed=REAL_ZERO_COMMD)
    proofs = {n: b"proof %d" % n for n in numbers}
    h.rt.expect_validate_caller_addr(*h.control_set())
    expect_verifications(h, proofs, lambda info: True)
    expect_activation(h, numbers)
    aggregate(h, numbers, [proofs[n] for n in numbers])
    h.rt.verify()
    assert [h.location(n) for n in numbers] == [one_by_one.location(n) for n in numbers]
    assert h.state().initial_pledge == one_by_one.state().initial_pledge
    assert h.state().sectors == one_by_one.state().sectors
    assert h.state().deadlines == one_by_one.state().deadlines


def test_deals_are_activated_per_sector_and_a_refusal_drops_only_that_sector(h: Harness) -> None:
    h.precommit(h.precommit_params(1, deals=(7,)), commd=DEALS_COMMD)
    h.precommit(h.precommit_params(2, deals=(8,)), commd=DEALS_COMMD)
    h.precommit(h.precommit_params(3))
    wait_for_seed(h)
    proofs = {1: b"p1", 2: b"p2", 3: b"p3"}
    h.rt.expect_validate_caller_addr(*h.control_set())
    expect_verifications(h, proofs, lambda info: True)
    expect_activation(h, [1, 2, 3], {1: SECTOR_SIZE, 2: ExitCode.ErrNotFound})
    aggregate(h, [1, 2, 3], [proofs[1], proofs[2], proofs[3]])
    h.rt.verify()
    sector1 = h.sector(1)
    assert sector1 is not None and sector1.unsealed_cid == DEALS_COMMD and sector1.deal_weight > 0
    assert h.sector(2) is None and h.sector(3) is not None
    # The dropped sector stays pre-committed, its deposit locked until it is proven or cleaned up.
    assert h.precommit_of(2).pre_commit_deposit == h.state().pre_commit_deposits > 0


def test_all_deals_refused_fails(h: Harness) -> None:
    for number in (1, 2):
        h.precommit(h.precommit_params(number, deals=(number,)), commd=DEALS_COMMD)
    wait_for_seed(h)
    proofs = {1: b"p1", 2: b"p2"}
    h.rt.expect_validate_caller_addr(*h.control_set())
    expect_verifications(h, proofs, lambda info: True)
    expect_activation(h, [1, 2], {1: ExitCode.ErrNotFound, 2: ExitCode.ErrForbidden})
    err = fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [1, 2], [b"p1", b"p2"]))
    assert "market exit code" in str(err)
    assert h.sector(1) is None and h.sector(2) is None


# -- failures --------------------------------------------------------------------------------------------


def test_too_few_or_too_many_sectors(h: Harness) -> None:
    fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [1], [b"p"]))
    fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [], []))
    too_many = h.rt.policy.max_aggregated_sectors + 1
    params = ProveCommitAggregateParams(BitField.from_range(0, too_many), encode_aggregate_proof([]))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    err = h.call_fails(ExitCode.ErrIllegalArgument, MinerMethod.ProveCommitAggregate, params)
    assert "too many sectors" in str(err)
    # three 2 KiB seal proofs fill what a pool-sized message leaves for AggregateProof (chain/params.py)
    assert h.rt.policy.min_aggregated_sectors == 2 and h.rt.policy.max_aggregated_sectors == 3


def test_aggregate_larger_than_the_policy_allows(h: Harness) -> None:
    proofs = [b"x" * 100, b"y" * 100]
    h.rt.policy = replace(h.rt.policy, max_aggregated_proof_size=len(encode_aggregate_proof(proofs)) - 1)
    err = fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [1, 2], proofs))
    assert "exceeds max size" in str(err)


def test_forbidden_caller(h: Harness) -> None:
    precommit_real(h, [1, 2])
    wait_for_seed(h)
    h.rt.expect_validate_caller_addr(*h.control_set())
    fails(h, ExitCode.SysErrForbidden, lambda: aggregate(h, [1, 2], [b"a", b"b"], caller=Address.new_id(555)))


def test_proof_count_must_match_sector_count(h: Harness) -> None:
    proofs = precommit_real(h, [1, 2])
    wait_for_seed(h)
    for wrong in ([proofs[1]], [proofs[1], proofs[2], proofs[2]]):
        h.rt.expect_validate_caller_addr(*h.control_set())
        err = fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [1, 2], wrong))  # noqa: B023
        assert "seal proofs for 2 sectors" in str(err)


def test_unknown_sector(h: Harness) -> None:
    precommit_real(h, [1, 2])
    wait_for_seed(h)
    h.rt.expect_validate_caller_addr(*h.control_set())
    fails(h, ExitCode.ErrNotFound, lambda: aggregate(h, [1, 2, 3], [b"a", b"b", b"c"]))
    h.rt.expect_validate_caller_addr(*h.control_set())
    fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [1, 1 << 63], [b"a", b"b"]))


def test_too_early(h: Harness) -> None:
    proofs = precommit_real(h, [1])
    wait_for_seed(h)
    proofs |= precommit_real(h, [2])  # pre-committed now: its seed is not drawn yet
    h.rt.expect_validate_caller_addr(*h.control_set())
    err = fails(h, ExitCode.ErrForbidden, lambda: aggregate(h, [1, 2], [proofs[1], proofs[2]]))
    assert "too early to prove sector 2" in str(err)
    assert h.sector(1) is None


def test_too_late_sectors_are_skipped_and_all_late_fails(h: Harness) -> None:
    """As v9: a sector past its proving deadline is verified but not activated; if no sector is left,
    ErrIllegalArgument."""
    proofs = precommit_real(h, [1, 2])
    start = h.rt.curr_epoch
    h.rt.curr_epoch = start + 300
    proofs |= precommit_real(h, [3])
    h.rt.curr_epoch = start + h.rt.policy.max_prove_commit_duration + 1  # 1 and 2 are late, 3 is not
    h.rt.expect_validate_caller_addr(*h.control_set())
    expect_verifications(h, {1: proofs[1], 2: proofs[2]}, real_verifier)
    h.expect_stats()
    err = fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [1, 2], [proofs[1], proofs[2]]))
    assert "all prove commits failed" in str(err)

    h.rt.expect_validate_caller_addr(*h.control_set())
    expect_verifications(h, proofs, real_verifier)
    expect_activation(h, [3])
    aggregate(h, [1, 2, 3], [proofs[1], proofs[2], proofs[3]])
    h.rt.verify()
    assert h.sector(3) is not None and h.sector(1) is None and h.sector(2) is None
    assert h.precommit_of(1) is not None  # left for the pre-commit clean-up to burn its deposit


def test_one_bad_proof_among_good_ones_fails_the_message(h: Harness) -> None:
    proofs = precommit_real(h, [1, 2, 3])
    wait_for_seed(h)
    # Sector 2's proof answers another sector's challenges: the real verifier refuses it.
    bad = dict(proofs)
    bad[2] = proofs[3]
    before = h.state()
    h.rt.expect_validate_caller_addr(*h.control_set())
    expect_verifications(h, bad, real_verifier)
    err = fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [1, 2, 3], [bad[1], bad[2], bad[3]]))
    assert "invalid seal proof for sector 2" in str(err)
    assert h.state() == before
    # Proofs in the wrong order are refused the same way.
    h.rt.expect_validate_caller_addr(*h.control_set())
    expect_verifications(h, {1: proofs[2], 2: proofs[1]}, real_verifier)
    fails(h, ExitCode.ErrIllegalArgument, lambda: aggregate(h, [1, 2], [proofs[2], proofs[1]]))


@pytest.mark.parametrize(
    "aggregate_bytes",
    [b"", b"\xff", dagcbor.encode(b"proof"), dagcbor.encode([b"a", 1]), dagcbor.encode([[b"a"], b"b"])],
    ids=["empty", "not CBOR", "bytes", "int entry", "nested"],
)
def test_malformed_aggregate_bytes_are_illegal_arguments(h: Harness, aggregate_bytes: bytes) -> None:
    precommit_real(h, [1, 2])
    wait_for_seed(h)
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    h.rt.expect_validate_caller_addr(*h.control_set())
    params = ProveCommitAggregateParams(BitField.from_bits([1, 2]), aggregate_bytes)
    err = h.call_fails(ExitCode.ErrIllegalArgument, MinerMethod.ProveCommitAggregate, params)
    assert "aggregate seal verify failed" in str(err)


@pytest.mark.parametrize(
    "params",
    [
        dagcbor.encode([b"\xff\xff", encode_aggregate_proof([b"a", b"b"])]),  # not RLE+
        dagcbor.encode([BitField.from_bits([1, 2]).to_cbor()]),
        dagcbor.encode([BitField.from_bits([1, 2]).to_cbor(), "proofs"]),
        dagcbor.encode(None),
    ],
    ids=["bad bitfield", "one field", "proof not bytes", "null"],
)
def test_malformed_params_are_serialization_errors(h: Harness, params: bytes) -> None:
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    fails(
        h, ExitCode.ErrSerialization, lambda: h.rt.call_raw(ACTOR, MinerMethod.ProveCommitAggregate, params)
    )


# -- the params' CBOR ------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    numbers=st.sets(st.integers(0, (1 << 63) - 1), max_size=20),
    proofs=st.lists(st.binary(max_size=64), max_size=20),
)
def test_params_round_trip(numbers: set[int], proofs: list[bytes]) -> None:
    params = ProveCommitAggregateParams(BitField.from_bits(numbers), encode_aggregate_proof(proofs))
    encoded = dagcbor.encode(params.to_cbor())
    decoded = ProveCommitAggregateParams.from_cbor(dagcbor.decode(encoded))
    assert decoded == params
    assert list(decoded.sector_numbers) == sorted(numbers)
    assert decoded.seal_proofs() == tuple(proofs)
    assert decode_aggregate_proof(encode_aggregate_proof(proofs)) == tuple(proofs)


def test_params_layout() -> None:
    """[SectorNumbers (RLE+ bytes), AggregateProof (bytes)], as go-state-types v9."""
    params = ProveCommitAggregateParams(BitField.from_bits([0, 1]), encode_aggregate_proof([b"a"]))
    assert params.to_cbor() == [BitField.from_bits([0, 1]).to_cbor(), b"\x81\x41a"]
    assert int(MinerMethod.ProveCommitAggregate) == 26


cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
    | st.binary(max_size=40)
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(raw=cbor_values)
def test_hostile_params_raise_decode_error_only(raw: Any) -> None:
    with contextlib.suppress(DecodeError):
        ProveCommitAggregateParams.from_cbor(raw)
    with contextlib.suppress(DecodeError):
        ProveCommitAggregateParams.from_cbor([BitField.from_bits([1]).to_cbor(), raw])
    with contextlib.suppress(DecodeError):
        ProveCommitAggregateParams.from_cbor([raw, b""])


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=80) | cbor_values.map(dagcbor.encode))
def test_hostile_aggregate_bytes_raise_decode_error_only(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        proofs = decode_aggregate_proof(data)
        assert all(type(p) is bytes for p in proofs)


def test_decoder_limits() -> None:
    with pytest.raises(DecodeError, match="exceeds the limit"):
        ProveCommitAggregateParams.from_cbor([b"", bytes(MAX_AGGREGATE_PROOF_BYTES + 1)])
    with pytest.raises(DecodeError, match="SectorNumbers"):
        ProveCommitAggregateParams.from_cbor([b"\xff\xff", b""])
    with pytest.raises(DecodeError):
        decode_aggregate_proof(dagcbor.encode([b"x"]) + b"\x00")  # trailing bytes
