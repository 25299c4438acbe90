"""CBOR forms of the reward, power and miner types: round trips, and hostile input gives DecodeError."""

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import power, power_state, reward
from actors.miner import deadlines, state, types, vesting
from actors.miner.bitfield import BitField
from actors.smoothing import FilterEstimate
from chain.encoding import dagcbor
from chain.encoding.cid import CID, DAG_CBOR
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import BLAKE2B_256, Multihash
from chain.types.address import Address
from chain.types.block import PoStProof
from chain.types.sector import PieceInfo
from tests.actors.miner_harness import default_sealed

LINK = CID.v1(DAG_CBOR, Multihash(BLAKE2B_256, bytes(32)))
A, B = Address.new_id(100), Address.new_actor(b"robust")
FE = FilterEstimate(5 << 128, -(3 << 100))
BITS = BitField.from_bits([1, 2, 3, 900])
PP = types.PowerPair(2048, 20480)

SAMPLES: list[Any] = [
    FE,
    PP,
    types.CronEventPayload(1),
    types.MinerConstructorParams(A, A, (A, B), 10, b"peer", (b"/ip4",)),
    types.GetControlAddressesReturn(A, A, (B,)),
    types.ChangeWorkerAddressParams(A, ()),
    types.ChangePeerIDParams(b"id"),
    types.ChangeMultiaddrsParams((b"a", b"b")),
    types.SubmitWindowedPoStParams(3, (types.PoStPartition(0, BITS),), (PoStProof(10, b"p"),), 7, bytes(32)),
    types.PreCommitSectorParams(5, 9, default_sealed(9), 4, (1, 2), 1000),
    types.PreCommitSectorBatchParams((types.PreCommitSectorParams(5, 9, default_sealed(9), 4, (), 1000),)),
    types.ProveCommitSectorParams(9, b"proof"),
    types.CheckSectorProvenParams(9),
    types.TerminateSectorsParams((types.SectorDeclaration(1, 2, BITS),)),
    types.TerminateSectorsReturn(True),
    types.DeclareFaultsParams((types.SectorDeclaration(1, 2, BITS),)),
    types.DeclareFaultsRecoveredParams((types.SectorDeclaration(1, 2, BITS),)),
    types.DeferredCronEventParams(b"\x81\x01", FE, FE),
    types.ApplyRewardParams(10, 0),
    types.ReportConsensusFaultParams(b"a", b"b", b""),
    types.WithdrawBalanceParams(5),
    types.WithdrawBalanceReturn(5),
    types.PieceInclusionExtra(3, PieceInfo(1024, piece_cid_v1(bytes(32)))),
    types.VerifyPieceInclusionParams(b"x", b"y"),
    state.WorkerKeyChange(A, 5),
    state.BeneficiaryTerm(1, 2, 3),
    state.SectorPreCommitInfo(5, 1, default_sealed(1), 3, (4,), 1000, None),
    state.SectorPreCommitOnChainInfo(
        state.SectorPreCommitInfo(5, 1, default_sealed(1), 3, (), 1000, LINK), 7, 8
    ),
    state.SectorOnChainInfo(1, 5, default_sealed(1), (2,), 10, 2000, 5, 0, 9, 8, 7, 0, 0, None, True, LINK),
    deadlines.ExpirationSet(BITS, BitField()),
    deadlines.Partition(BITS, BitField(), BitField(), BitField(), LINK, PP, PP, types.PowerPair()),
    deadlines.Deadline(LINK, BITS, 3, 4, PP),
    vesting.VestingFunds((vesting.VestingFund(10, 5), vesting.VestingFund(20, 6))),
    power.CreateMinerParams(A, A, 10, b"peer", (b"m",)),
    power.CreateMinerReturn(A, B),
    power.UpdateClaimedPowerParams(-5, 7),
    power.EnrollCronEventParams(5, b"\x81\x01"),
    power.CurrentTotalPowerReturn(1, 2, 3, FE),
    power_state.Claim(10, 2048, 2048),
    power_state.CronEvent(A, b"\x81\x01"),
    reward.AwardBlockRewardParams(A, 1, 2, 3),
    reward.ThisEpochRewardReturn(FE, 99),
    reward.RewardState.new(1 << 40),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_round_trip(value: Any) -> None:
    encoded = dagcbor.encode(value.to_cbor())
    assert type(value).from_cbor(dagcbor.decode(encoded)) == value


DECODERS: list[Callable[[Any], Any]] = sorted(
    {type(v).from_cbor for v in SAMPLES}
    | {state.MinerInfo.from_cbor, state.MinerState.from_cbor, power_state.PowerState.from_cbor},
    key=lambda f: f.__qualname__,
)

cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
    | st.binary(max_size=40)
    | st.text(max_size=5)
    | st.just(LINK),
    lambda children: st.lists(children, max_size=17),
    max_leaves=40,
)


@pytest.mark.parametrize("decode", DECODERS, ids=lambda f: f.__qualname__)
@settings(max_examples=25, deadline=None)
@given(raw=cbor_values)
def test_hostile_input_raises_decode_error_only(decode: Callable[[Any], Any], raw: Any) -> None:
    with contextlib.suppress(DecodeError):
        decode(raw)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_one_hostile_field_raises_decode_error_only(data: st.DataObject) -> None:
    """Each sample with one field (possibly nested one level) replaced by an arbitrary value."""
    value = data.draw(st.sampled_from(SAMPLES))
    raw = value.to_cbor()
    if not isinstance(raw, list) or not raw:
        return
    raw = list(raw)
    index = data.draw(st.integers(0, len(raw) - 1))
    inner = raw[index]
    if isinstance(inner, list) and inner and data.draw(st.booleans()):
        inner = list(inner)
        inner[data.draw(st.integers(0, len(inner) - 1))] = data.draw(cbor_values)
        raw[index] = inner
    else:
        raw[index] = data.draw(cbor_values)
    with contextlib.suppress(DecodeError):
        type(value).from_cbor(raw)


def test_truncated_structs_are_rejected() -> None:
    for value in SAMPLES:
        raw = value.to_cbor()
        if isinstance(raw, list) and raw:
            with pytest.raises(DecodeError):
                type(value).from_cbor(raw[:-1])
