"""The storage market actor on the mock runtime: encodings, escrow, publication, activation,
termination, data commitments and the cron that pays, expires and slashes deals."""

from dataclasses import replace

import pytest

from actors import builtin
from actors.abi import EPOCH_UNDEFINED
from actors.dispatch import METHOD_SEND
from actors.market import types as market
from actors.market.actor import ACTOR as MARKET
from actors.market.policy import deal_provider_collateral_bounds, gen_rand_next_epoch
from actors.market.state import MarketState
from actors.util.sets import HamtSet, SetMultimap
from chain.encoding import dagcbor
from chain.encoding.bigint import decode_bigint
from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.params import DEVNET
from chain.types.address import Address
from chain.types.sector import PieceInfo
from chain.vm.exitcode import ExitCode
from proofs.commp import comm_d
from tests.actors.aborts import aborts
from tests.actors.market_harness import (
    BAD_SIGNATURE,
    CLIENT,
    CLIENT_KEY_ADDR,
    CONTROL,
    OTHER_CLIENT,
    OTHER_CLIENT_KEY,
    OTHER_CLIENT_KEY_ADDR,
    OTHER_PROVIDER,
    OWNER,
    PIECES,
    PROVIDER,
    SEAL_PROOF_2KIB,
    SIGNABLE,
    STRANGER,
    WORKER,
    Network,
    add_escrow,
    as_miner,
    deal_state,
    escrow,
    expect_control_addresses,
    expect_publish_preamble,
    locked,
    new_market,
    piece_cid,
    proposal,
    publish,
    publish_one,
    sign,
    state,
    stored,
    tables,
)
from tests.actors.mock_runtime import MockRuntime

# -- encodings ------------------------------------------------------------------------------------------


def test_deal_proposal_cbor_is_lotus_layout() -> None:
    """The bytes a client signs: an 11-array in Lotus's field order, label as a text string."""
    deal = proposal(
        client=Address.new_id(1100),
        start=100,
        end=200,
        price=10,
        provider_collateral=0,
        client_collateral=0,
        label="hi",
    )
    cid_bytes = b"\x00" + piece_cid(0).bytes
    expected = (
        b"\x8b"
        + b"\xd8\x2a\x58"
        + bytes([len(cid_bytes)])
        + cid_bytes
        + b"\x19\x04\x00"  # PieceSize 1024
        + b"\xf4"  # VerifiedDeal false
        + b"\x43\x00\xcc\x08"  # Client f01100
        + b"\x43\x00\xe8\x07"  # Provider f01000
        + b"\x62hi"  # Label: text
        + b"\x18\x64\x18\xc8"  # StartEpoch 100, EndEpoch 200
        + b"\x42\x00\x0a"  # StoragePricePerEpoch 10
        + b"\x40\x40"  # collaterals zero: empty big integers
    )
    assert deal.signing_bytes() == expected
    bytes_label = replace(deal, label=b"\xca\xfe")
    assert b"\x42\xca\xfe" in bytes_label.signing_bytes()
    for d in (deal, bytes_label):
        assert market.DealProposal.from_cbor(dagcbor.decode(d.signing_bytes())) == d
    assert deal.cid() == CID.hash_of(expected)


def test_deal_proposal_decode_rejects_bad_fields() -> None:
    good = proposal().to_cbor()
    for index, bad, field_name in ((5, 7, "Label"), (1, -1, "PieceSize"), (8, 5, "StoragePricePerEpoch")):
        raw = list(good)
        raw[index] = bad
        with pytest.raises(DecodeError, match=field_name):
            market.DealProposal.from_cbor(raw)
    with pytest.raises(DecodeError, match="array of 11"):
        market.DealProposal.from_cbor(good[:10])


def test_client_deal_proposal_and_state_round_trip() -> None:
    signed = sign(proposal())
    assert market.ClientDealProposal.from_cbor(dagcbor.decode(dagcbor.encode(signed.to_cbor()))) == signed
    ds = market.DealState(10, EPOCH_UNDEFINED, 30)
    assert market.DealState.from_cbor(dagcbor.decode(dagcbor.encode(ds.to_cbor()))) == ds


# -- constructor --------------------------------------------------------------------------------------


def test_constructor_makes_empty_state() -> None:
    rt = new_market()
    st = state(rt)
    assert st.next_id == 0 and st.last_cron == EPOCH_UNDEFINED and st.total_locked == 0
    assert st.escrow_table == st.locked_table
    assert MarketState.from_cbor(dagcbor.decode(dagcbor.encode(st.to_cbor()))) == st
    assert len(tables(rt).proposals) == 0


def test_constructor_only_from_system() -> None:
    rt = MockRuntime(receiver=builtin.STORAGE_MARKET_ACTOR_ADDR, caller=STRANGER)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(MARKET, 1)


# -- AddBalance / WithdrawBalance -----------------------------------------------------------------------


def test_add_balance_for_client_and_provider() -> None:
    rt = new_market()
    add_escrow(rt, CLIENT, 300)
    add_escrow(rt, CLIENT, 200)
    add_escrow(rt, PROVIDER, 1000)
    assert escrow(rt, CLIENT) == 500
    assert escrow(rt, PROVIDER) == 1000
    assert locked(rt, CLIENT) == 0


def test_add_balance_by_key_address_credits_the_id() -> None:
    rt = new_market()
    add_escrow(rt, CLIENT_KEY_ADDR, 70, caller=CLIENT)
    assert escrow(rt, CLIENT) == 70


@pytest.mark.parametrize("value", [0, -5])
def test_add_balance_requires_value(value: int) -> None:
    rt = new_market()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, CLIENT)
    rt.value_received = value
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(MARKET, market.MarketMethod.AddBalance, CLIENT)


@pytest.mark.parametrize(
    ("caller_code", "caller", "address", "code"),
    [
        (builtin.MINER_ACTOR_CODE, PROVIDER, CLIENT, ExitCode.SysErrForbidden),
        (builtin.ACCOUNT_ACTOR_CODE, CLIENT, Address.new_actor(b"nobody"), ExitCode.ErrIllegalArgument),
        (builtin.ACCOUNT_ACTOR_CODE, CLIENT, Address.new_id(4242), ExitCode.ErrIllegalArgument),
    ],
    ids=["caller-not-signable", "unresolved", "no-code"],
)
def test_add_balance_refused(caller_code: CID, caller: Address, address: Address, code: ExitCode) -> None:
    """Only signable callers may add balance, and only for an address that resolves to an actor."""
    rt = new_market()
    rt.set_caller(caller_code, caller)
    rt.value_received = 10
    rt.expect_validate_caller_type(*SIGNABLE)
    with aborts(code):
        rt.call(MARKET, market.MarketMethod.AddBalance, address)


def withdraw(
    rt: MockRuntime, party: Address, amount: int, caller: Address, recipient: Address, sent: int
) -> int:
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, caller)
    if rt.actor_codes.get(party) == builtin.MINER_ACTOR_CODE:
        expect_control_addresses(rt, party)
        rt.expect_validate_caller_addr(OWNER, WORKER)
    else:
        rt.expect_validate_caller_addr(party)
    rt.expect_send(recipient, METHOD_SEND, None, sent)
    ret = rt.call_decoded(
        MARKET, market.MarketMethod.WithdrawBalance, market.WithdrawBalanceParams(party, amount)
    )
    rt.verify()
    return decode_bigint(ret, "WithdrawBalanceReturn")


def test_withdraw_client_balance() -> None:
    rt = new_market()
    add_escrow(rt, CLIENT, 500)
    assert withdraw(rt, CLIENT, 200, CLIENT, CLIENT, 200) == 200
    assert escrow(rt, CLIENT) == 300
    # Asking for more than is there yields what is there.
    assert withdraw(rt, CLIENT, 10_000, CLIENT, CLIENT, 300) == 300
    assert escrow(rt, CLIENT) == 0


def test_withdraw_provider_balance_goes_to_owner() -> None:
    rt = new_market()
    add_escrow(rt, PROVIDER, 800)
    assert withdraw(rt, PROVIDER, 300, WORKER, OWNER, 300) == 300
    assert escrow(rt, PROVIDER) == 500


def test_withdraw_leaves_locked_funds() -> None:
    rt = new_market()
    deal = proposal()
    publish_one(rt, deal)
    add_escrow(rt, CLIENT, 100)
    # Only the 100 beyond the deal's lock-up may leave.
    assert withdraw(rt, CLIENT, 10_000, CLIENT, CLIENT, 100) == 100
    assert escrow(rt, CLIENT) == locked(rt, CLIENT) == deal.client_balance_requirement


def test_withdraw_negative_amount() -> None:
    rt = new_market()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, CLIENT)
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(MARKET, market.MarketMethod.WithdrawBalance, market.WithdrawBalanceParams(CLIENT, -1))


def test_withdraw_by_someone_else_is_forbidden() -> None:
    rt = new_market()
    add_escrow(rt, CLIENT, 500)
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, STRANGER)
    rt.expect_validate_caller_addr(CLIENT)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(MARKET, market.MarketMethod.WithdrawBalance, market.WithdrawBalanceParams(CLIENT, 1))


# -- PublishStorageDeals --------------------------------------------------------------------------------


def test_publish_locks_funds_and_schedules_deals() -> None:
    rt = new_market()
    deals = [proposal(piece=0), proposal(piece=1, client=CLIENT)]
    add_escrow(rt, CLIENT, sum(d.client_balance_requirement for d in deals))
    add_escrow(rt, PROVIDER, sum(d.provider_collateral for d in deals))
    result = publish(rt, [sign(d) for d in deals])
    assert result.ids == (0, 1)
    assert list(result.valid_deals) == [0, 1]

    st = state(rt)
    assert st.next_id == 2
    assert locked(rt, CLIENT) == escrow(rt, CLIENT)
    assert locked(rt, PROVIDER) == escrow(rt, PROVIDER)
    assert st.total_client_storage_fee == sum(d.total_storage_fee for d in deals)
    assert st.total_client_locked_collateral == 1000
    assert st.total_provider_locked_collateral == 2000
    t = tables(rt)
    for deal_id, deal in enumerate(deals):
        assert t.proposal(deal_id) == stored(deal)
        assert t.pending.has(stored(deal).cid().bytes)
        first = gen_rand_next_epoch(DEVNET, deal.start_epoch, deal_id)
        assert deal_id in t.deal_ops.get(first)
    assert t.deal_state(0) is None


def test_publish_by_control_address_with_bls_client() -> None:
    rt = new_market()
    deal = proposal(client=OTHER_CLIENT_KEY_ADDR)
    add_escrow(rt, OTHER_CLIENT, deal.client_balance_requirement)
    add_escrow(rt, PROVIDER, deal.provider_collateral)
    result = publish(rt, [sign(deal, OTHER_CLIENT_KEY)], caller=CONTROL)
    assert result.ids == (0,)
    assert tables(rt).proposal(0) == replace(deal, client=OTHER_CLIENT)


def test_publish_drops_deal_with_bad_signature() -> None:
    rt = new_market()
    good, forged = proposal(piece=0), proposal(piece=1)
    add_escrow(rt, CLIENT, 10_000)
    add_escrow(rt, PROVIDER, 10_000)
    # Signed by the wrong key: a real signature that does not verify for the client.
    wrong = market.ClientDealProposal(forged, OTHER_CLIENT_KEY.sign(forged.signing_bytes()))
    unsigned = market.ClientDealProposal(forged, BAD_SIGNATURE)
    result = publish(rt, [wrong, sign(good), unsigned])
    assert result.ids == (0,)
    assert list(result.valid_deals) == [1]
    assert tables(rt).proposal(0) == stored(good)


def rejected(rt: MockRuntime, deal: market.DealProposal, network: Network | None = None) -> None:
    """Publishing deal alone fails with 'all deal proposals invalid'."""
    with aborts(ExitCode.ErrIllegalArgument) as err:
        publish(rt, [sign(deal)], network)
    assert "invalid" in err.value.message


@pytest.mark.parametrize(
    "changes",
    [
        {"label": "x" * 257},
        {"label": "é" * 129},  # 258 bytes of UTF-8
        {"start": 100, "end": 100},
        {"start": 100, "end": 110},  # shorter than the devnet minimum of 20 epochs
        {"start": 100, "end": 100 + DEVNET.market_deal_max_duration + 1},
        {"price": -1},
        {"client_collateral": -1},
        {"verified": True},
    ],
    ids=["label", "utf8-label", "empty", "short", "long", "price", "client-collateral", "verified"],
)
def test_publish_rejects_invalid_deal(changes: dict[str, object]) -> None:
    rt = new_market()
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    rejected(rt, proposal(**changes))  # type: ignore[arg-type]


def test_publish_drops_deal_of_another_provider() -> None:
    rt = new_market()
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    ours, theirs = proposal(piece=0), proposal(piece=1, provider=OTHER_PROVIDER)
    result = publish(rt, [sign(ours), sign(theirs)])
    assert list(result.valid_deals) == [0]


def test_publish_rejects_bad_piece() -> None:
    rt = new_market()
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    rejected(rt, replace(proposal(), piece_size=1000))
    rejected(rt, replace(proposal(), piece_size=64))
    rejected(rt, replace(proposal(), piece_cid=CID.hash_of(b"not a piece")))


def test_publish_rejects_elapsed_start() -> None:
    rt = new_market(epoch=101)
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    rejected(rt, proposal(start=100, end=200))


def test_publish_checks_provider_collateral_floor() -> None:
    rt = new_market()
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    network = Network(baseline_power=1 << 20, raw_power=1 << 15, circulating_supply=10**12)
    floor, _ = deal_provider_collateral_bounds(DEVNET, 1024, 1 << 15, 1 << 20, 10**12)
    assert floor == 10**12 // 100 * 1024 // (1 << 20)
    rejected(rt, proposal(provider_collateral=floor - 1), network)
    result = publish(rt, [sign(proposal(provider_collateral=floor))], network)
    assert result.ids == (0,)


@pytest.mark.parametrize("short", ["client", "provider"])
def test_publish_requires_escrow_of_both_parties(short: str) -> None:
    rt = new_market()
    deal = proposal()
    add_escrow(rt, CLIENT, deal.client_balance_requirement - (short == "client"))
    add_escrow(rt, PROVIDER, deal.provider_collateral - (short == "provider"))
    rejected(rt, deal)


def test_publish_counts_lockups_across_the_batch() -> None:
    rt = new_market()
    first, second = proposal(piece=0), proposal(piece=1)
    add_escrow(rt, CLIENT, first.client_balance_requirement + second.client_balance_requirement - 1)
    add_escrow(rt, PROVIDER, 10**9)
    result = publish(rt, [sign(first), sign(second)])
    assert list(result.valid_deals) == [0]


def test_publish_drops_duplicates() -> None:
    rt = new_market()
    deal = proposal()
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    result = publish(rt, [sign(deal), sign(deal)])
    assert list(result.valid_deals) == [0]
    rejected(rt, deal)  # already pending from the previous message
    # The same deal naming the client by ID is the same stored proposal, hence a duplicate too.
    rejected(rt, replace(deal, client=CLIENT))


def publisher(caller: Address = WORKER) -> MockRuntime:
    """A new market about to take PublishStorageDeals from the account caller."""
    rt = new_market()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, caller)
    rt.expect_validate_caller_type(*SIGNABLE)
    return rt


def publish_aborts(rt: MockRuntime, code: ExitCode, *deals: market.ClientDealProposal) -> None:
    with aborts(code):
        rt.call(MARKET, market.MarketMethod.PublishStorageDeals, market.PublishStorageDealsParams(deals))


def test_publish_with_no_deals() -> None:
    publish_aborts(publisher(), ExitCode.ErrIllegalArgument)


@pytest.mark.parametrize(
    ("provider", "code"),
    [
        (Address.new_actor(b"unknown miner"), ExitCode.ErrNotFound),
        (Address.new_id(4242), ExitCode.ErrNotFound),
        (CLIENT, ExitCode.ErrIllegalArgument),
    ],
    ids=["unresolved", "no-code", "not-a-miner"],
)
def test_publish_provider_must_be_a_miner(provider: Address, code: ExitCode) -> None:
    publish_aborts(publisher(), code, sign(proposal(provider=provider)))


def test_publish_caller_must_be_worker_or_control() -> None:
    rt = publisher(OWNER)
    expect_control_addresses(rt)
    publish_aborts(rt, ExitCode.ErrForbidden, sign(proposal()))


def test_publish_fails_when_the_miner_does() -> None:
    rt = publisher()
    rt.expect_send(PROVIDER, 2, None, 0, exit_code=ExitCode.ErrIllegalState)
    publish_aborts(rt, ExitCode.ErrIllegalState, sign(proposal()))


def test_publish_with_mocked_signature_result() -> None:
    """The signature check goes through rt.verify_signature with the proposal's CBOR."""
    rt = new_market()
    deal = proposal()
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    expect_publish_preamble(rt, Network())
    rt.expect_verify_signature(BAD_SIGNATURE, CLIENT_KEY_ADDR, deal.signing_bytes(), result=True)
    rt.call(
        MARKET,
        market.MarketMethod.PublishStorageDeals,
        market.PublishStorageDealsParams(((market.ClientDealProposal(deal, BAD_SIGNATURE)),)),
    )
    rt.verify()
    assert state(rt).next_id == 1


# -- VerifyDealsForActivation / ActivateDeals ---------------------------------------------------------


def commd_of(*pieces: int) -> CID:
    return piece_cid_v1(comm_d([PIECES[i].piece_info() for i in pieces], 2048))


def verify_for_activation(
    rt: MockRuntime, sectors: list[market.SectorDeals]
) -> market.VerifyDealsForActivationReturn:
    as_miner(rt)
    raw = rt.call_decoded(
        MARKET,
        market.MarketMethod.VerifyDealsForActivation,
        market.VerifyDealsForActivationParams(tuple(sectors)),
    )
    rt.verify()
    return market.VerifyDealsForActivationReturn.from_cbor(raw)


def expect_commd(rt: MockRuntime, *pieces: int) -> CID:
    infos = [PieceInfo(PIECES[i].padded_size, piece_cid(i)) for i in pieces]
    result = commd_of(*pieces)
    rt.expect_compute_unsealed_sector_cid(SEAL_PROOF_2KIB, infos, result)
    return result


def two_deals(rt: MockRuntime) -> tuple[int, int]:
    deals = [proposal(piece=0), proposal(piece=1, end=300)]
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    ids = publish(rt, [sign(d) for d in deals]).ids
    return ids[0], ids[1]


def test_verify_deals_for_activation_returns_commd() -> None:
    rt = new_market()
    a, b = two_deals(rt)
    rt.curr_epoch = 50
    as_miner(rt)
    expected = expect_commd(rt, 0, 1)
    raw = rt.call_decoded(
        MARKET,
        market.MarketMethod.VerifyDealsForActivation,
        market.VerifyDealsForActivationParams(
            (market.SectorDeals(SEAL_PROOF_2KIB, 400, (a, b)), market.SectorDeals(SEAL_PROOF_2KIB, 400, ()))
        ),
    )
    rt.verify()
    result = market.VerifyDealsForActivationReturn.from_cbor(raw)
    assert [s.commd for s in result.sectors] == [expected, None]


@pytest.mark.parametrize(
    ("sector", "code"),
    [
        (market.SectorDeals(99, 400, (0,)), ExitCode.ErrIllegalArgument),  # unknown seal proof
        (market.SectorDeals(SEAL_PROOF_2KIB, 400, (0, 0)), ExitCode.ErrIllegalArgument),  # duplicate
        (market.SectorDeals(SEAL_PROOF_2KIB, 400, (7,)), ExitCode.ErrNotFound),
        (market.SectorDeals(SEAL_PROOF_2KIB, 400, ((1 << 64) - 1,)), ExitCode.ErrNotFound),
        (market.SectorDeals(SEAL_PROOF_2KIB, 250, (0, 1)), ExitCode.ErrIllegalArgument),  # deal 1 ends at 300
        (market.SectorDeals(0, 400, (0, 1, 2)), ExitCode.ErrIllegalArgument),  # 3 KiB of deals in 2 KiB
    ],
    ids=["proof", "duplicate", "missing", "max-id", "expiry", "too-large"],
)
def test_verify_deals_for_activation_failures(sector: market.SectorDeals, code: ExitCode) -> None:
    rt = new_market()
    deals = [proposal(piece=0), proposal(piece=1, end=300), proposal(piece=2)]
    add_escrow(rt, CLIENT, 10**9)
    add_escrow(rt, PROVIDER, 10**9)
    publish(rt, [sign(d) for d in deals])
    with aborts(code):
        verify_for_activation(rt, [sector])


def test_verify_deals_for_activation_checks_provider_and_start() -> None:
    rt = new_market()
    a, _ = two_deals(rt)
    with aborts(ExitCode.ErrForbidden):
        as_miner(rt, OTHER_PROVIDER)
        rt.call(
            MARKET,
            market.MarketMethod.VerifyDealsForActivation,
            market.VerifyDealsForActivationParams((market.SectorDeals(SEAL_PROOF_2KIB, 400, (a,)),)),
        )
    rt.reset()
    rt.curr_epoch = 101
    with aborts(ExitCode.ErrIllegalArgument):
        verify_for_activation(rt, [market.SectorDeals(SEAL_PROOF_2KIB, 400, (a,))])


def test_verify_deals_for_activation_only_from_miners() -> None:
    rt = new_market()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(
            MARKET, market.MarketMethod.VerifyDealsForActivation, market.VerifyDealsForActivationParams(())
        )


def activate(rt: MockRuntime, deal_ids: tuple[int, ...], expiry: int = 400) -> market.ActivateDealsResult:
    as_miner(rt)
    raw = rt.call_decoded(
        MARKET, market.MarketMethod.ActivateDeals, market.ActivateDealsParams(deal_ids, expiry)
    )
    rt.verify()
    return market.ActivateDealsResult.from_cbor(raw)


def test_activate_deals_records_states() -> None:
    rt = new_market()
    a, b = two_deals(rt)
    rt.curr_epoch = 60
    result = activate(rt, (a, b))
    assert result.nonverified_deal_space == 2048 and result.verified_infos == ()
    assert deal_state(rt, a) == market.DealState(60, EPOCH_UNDEFINED, EPOCH_UNDEFINED)
    # Still pending until the first cron update.
    assert tables(rt).pending.has(tables(rt).proposal(a).cid().bytes)  # type: ignore[union-attr]


def test_activate_deals_failures() -> None:
    rt = new_market()
    a, b = two_deals(rt)
    activate(rt, (a,))
    with aborts(ExitCode.ErrIllegalArgument):
        activate(rt, (a,))
    rt.reset()
    with aborts(ExitCode.ErrNotFound):
        activate(rt, (9,))
    rt.reset()
    with aborts(ExitCode.ErrIllegalArgument):
        activate(rt, (b,), expiry=250)
    rt.reset()
    rt.curr_epoch = 150
    with aborts(ExitCode.ErrIllegalArgument):
        activate(rt, (b,))


# -- OnMinerSectorsTerminate ------------------------------------------------------------------------


def terminate(rt: MockRuntime, epoch: int, deal_ids: tuple[int, ...], miner: Address = PROVIDER) -> None:
    as_miner(rt, miner)
    rt.call(
        MARKET,
        market.MarketMethod.OnMinerSectorsTerminate,
        market.OnMinerSectorsTerminateParams(epoch, deal_ids),
    )
    rt.verify()


def test_terminate_marks_active_deals_slashed() -> None:
    rt = new_market()
    a, b = two_deals(rt)
    activate(rt, (a, b))
    # Deal a ends at 200, so terminating at 200 leaves it alone; deal b (ends 300) is slashed; unknown
    # deal IDs (already cleaned up) are skipped.
    terminate(rt, 200, (a, b, 77))
    assert deal_state(rt, a).slash_epoch == EPOCH_UNDEFINED  # type: ignore[union-attr]
    assert deal_state(rt, b).slash_epoch == 200  # type: ignore[union-attr]
    terminate(rt, 250, (b,))  # already slashed: unchanged
    assert deal_state(rt, b).slash_epoch == 200  # type: ignore[union-attr]


def test_terminate_failures() -> None:
    rt = new_market()
    a, _ = two_deals(rt)
    with aborts(ExitCode.ErrIllegalArgument):
        terminate(rt, 150, (a,))  # never activated
    rt.reset()
    activate(rt, (a,))
    with aborts(ExitCode.ErrIllegalState):
        terminate(rt, 150, (a,), miner=OTHER_PROVIDER)


# -- ComputeDataCommitment ----------------------------------------------------------------------------


def test_compute_data_commitment() -> None:
    rt = new_market()
    a, b = two_deals(rt)
    as_miner(rt)
    first = expect_commd(rt, 0, 1)
    second = expect_commd(rt, 1)
    raw = rt.call_decoded(
        MARKET,
        market.MarketMethod.ComputeDataCommitment,
        market.ComputeDataCommitmentParams(
            (market.SectorDataSpec((a, b), SEAL_PROOF_2KIB), market.SectorDataSpec((b,), SEAL_PROOF_2KIB))
        ),
    )
    rt.verify()
    assert market.ComputeDataCommitmentReturn.from_cbor(raw).commds == (first, second)


def test_compute_data_commitment_missing_deal() -> None:
    rt = new_market()
    as_miner(rt)
    with aborts(ExitCode.ErrNotFound):
        rt.call(
            MARKET,
            market.MarketMethod.ComputeDataCommitment,
            market.ComputeDataCommitmentParams((market.SectorDataSpec((3,), SEAL_PROOF_2KIB),)),
        )


# -- CronTick -------------------------------------------------------------------------------------------


def cron(rt: MockRuntime, epoch: int, burnt: int = 0) -> None:
    rt.curr_epoch = epoch
    rt.set_caller(builtin.CRON_ACTOR_CODE, builtin.CRON_ACTOR_ADDR)
    rt.expect_validate_caller_addr(builtin.CRON_ACTOR_ADDR)
    if burnt:
        rt.expect_send(builtin.BURNT_FUNDS_ACTOR_ADDR, METHOD_SEND, None, burnt)
    rt.call(MARKET, market.MarketMethod.CronTick)
    rt.verify()
    assert state(rt).last_cron == epoch


def test_cron_pays_provider_and_expires_deal() -> None:
    rt = new_market()
    deal = proposal(start=100, end=200, price=10)
    deal_id = publish_one(rt, deal)
    rt.curr_epoch = 50
    activate(rt, (deal_id,))
    cron(rt, 99)  # nothing scheduled yet
    cron(rt, 100)  # first update: leaves the pending set, nothing due yet
    assert not tables(rt).pending.has(stored(deal).cid().bytes)
    assert deal_state(rt, deal_id).last_updated_epoch == 100  # type: ignore[union-attr]
    cron(rt, 104)
    assert escrow(rt, PROVIDER) == deal.provider_collateral + 40
    assert escrow(rt, CLIENT) == deal.client_balance_requirement - 40
    assert locked(rt, CLIENT) == deal.client_balance_requirement - 40
    # Long after the end: the rest is paid, collaterals are released, the deal is gone.
    cron(rt, 260)
    assert escrow(rt, PROVIDER) == deal.provider_collateral + deal.total_storage_fee
    assert locked(rt, PROVIDER) == 0
    assert escrow(rt, CLIENT) == deal.client_collateral
    assert locked(rt, CLIENT) == 0
    assert tables(rt).proposal(deal_id) is None and deal_state(rt, deal_id) is None
    st = state(rt)
    assert st.total_locked == 0
    assert SetMultimap.load(rt.store, st.deal_ops_by_epoch).keys() == []


def test_cron_slashes_terminated_deal() -> None:
    rt = new_market()
    deal = proposal(start=100, end=200, price=10)
    deal_id = publish_one(rt, deal)
    activate(rt, (deal_id,))
    cron(rt, 100)
    terminate(rt, 150, (deal_id,))
    # Paid up to the termination; the provider's collateral is burnt; the client gets the rest back.
    cron(rt, 152, burnt=deal.provider_collateral)
    assert escrow(rt, PROVIDER) == 500
    assert locked(rt, PROVIDER) == 0
    assert escrow(rt, CLIENT) == deal.client_balance_requirement - 500
    assert locked(rt, CLIENT) == 0
    assert tables(rt).proposal(deal_id) is None
    assert state(rt).total_locked == 0


def test_cron_times_out_unactivated_deal() -> None:
    rt = new_market()
    deal = proposal(start=100, end=200)
    deal_id = publish_one(rt, deal)
    cron(rt, 100, burnt=deal.provider_collateral)
    assert escrow(rt, PROVIDER) == 0
    assert escrow(rt, CLIENT) == deal.client_balance_requirement
    assert locked(rt, CLIENT) == 0
    t = tables(rt)
    assert t.proposal(deal_id) is None
    assert not t.pending.has(stored(deal).cid().bytes)
    assert HamtSet.load(rt.store, state(rt).pending_proposals).members() == []


def test_cron_only_from_cron_actor() -> None:
    rt = new_market()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, STRANGER)
    rt.expect_validate_caller_addr(builtin.CRON_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(MARKET, market.MarketMethod.CronTick)


def test_full_lifecycle_state_is_deterministic() -> None:
    """The same operations give the same state root: no hidden order in the HAMTs and AMTs."""
    heads = []
    for _ in range(2):
        rt = new_market()
        a, b = two_deals(rt)
        activate(rt, (a, b))
        cron(rt, 100)
        heads.append(rt.head)
    assert heads[0] == heads[1]
