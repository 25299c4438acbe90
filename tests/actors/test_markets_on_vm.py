"""The market, payment channel and multisig actors run by the real VM: signed messages, real signature
checks through the VM's syscall (ID signers resolved to their keys), real CommD computation, actor
creation through init.Exec, value transfers and actor deletion.

The miner, power and reward actors are small stand-ins here (the market only asks them for control
addresses and network figures, and a miner relays its calls to the market).
"""

from dataclasses import replace
from enum import IntEnum
from typing import Any

import pytest

from actors import builtin
from actors.dispatch import METHOD_SEND, ActorDef, encode_params, exported, exports
from actors.init.types import ExecParams, ExecReturn, InitMethod
from actors.market.state import MarketState, MarketTables
from actors.market.types import (
    ActivateDealsParams,
    ClientDealProposal,
    ComputeDataCommitmentParams,
    ComputeDataCommitmentReturn,
    DealProposal,
    MarketMethod,
    PublishStorageDealsParams,
    PublishStorageDealsReturn,
    SectorDataSpec,
    WithdrawBalanceParams,
)
from actors.miner.types import GetControlAddressesReturn, MinerMethod
from actors.multisig.types import (
    AddSignerParams,
    ApproveReturn,
    MultisigMethod,
    MultisigState,
    ProposeParams,
    ProposeReturn,
    TxnIDParams,
)
from actors.multisig.types import ConstructorParams as MultisigConstructorParams
from actors.paych.types import ConstructorParams as PaychConstructorParams
from actors.paych.types import (
    PaychMethod,
    PaychState,
    SignedVoucher,
    UpdateChannelStateParams,
)
from actors.power.types import CurrentTotalPowerReturn, PowerMethod
from actors.reward.types import RewardMethod, ThisEpochRewardReturn
from actors.smoothing import FilterEstimate
from chain.encoding import dagcbor
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.schema import AnyCbor, CborTuple
from chain.state.tree import Actor
from chain.store.blockstore import get_cbor, put_cbor
from chain.types.address import Address
from chain.vm.exitcode import ExitCode
from chain.vm.runtime import Runtime
from chain.vm.tipset_apply import implicit_message
from proofs.commp import comm_d, commp_of_bytes
from tests.chain.vm_helpers import (
    FIL,
    TEST_INVOKER,
    RelayParams,
    RelayReturn,
    World,
    expect_exit,
    install_singleton,
    make_world,
)

GAS = 2_000_000_000


def apply(
    world: World, sender: int, to: Address, method: int, params: Any = None, value: int = 0, epoch: int = 1
) -> Any:
    """Send a signed message; require success; return the decoded return value (None if empty)."""
    msg = world.message(sender, to, method=method, params=encode_params(params), value=value, gas_limit=GAS)
    ret = world.vm(epoch=epoch).apply_message(msg)
    expect_exit(ret.exit_code, ExitCode.Ok)
    data = ret.receipt.return_data
    return dagcbor.decode(data) if data else None


def apply_fails(world: World, sender: int, to: Address, method: int, params: Any, epoch: int = 1) -> int:
    msg = world.message(sender, to, method=method, params=encode_params(params), gas_limit=GAS)
    return world.vm(epoch=epoch).apply_message(msg).exit_code


def exec_actor(world: World, sender: int, code: Any, params: Any, value: int) -> ExecReturn:
    ret = apply(
        world,
        sender,
        builtin.INIT_ACTOR_ADDR,
        InitMethod.Exec,
        ExecParams(code, encode_params(params)),
        value,
    )
    return ExecReturn.from_cbor(ret)


def state_of(world: World, address: Address, state_type: Any) -> Any:
    actor = world.tree.get_actor(address)
    assert actor is not None
    return state_type.from_cbor(get_cbor(world.store, actor.head))


# -- payment channel ------------------------------------------------------------------------------------


def test_payment_channel_lifecycle() -> None:
    world = make_world(accounts=3)
    payer, payee = world.addresses[0], world.addresses[1]
    created = exec_actor(world, 0, builtin.PAYCH_ACTOR_CODE, PaychConstructorParams(payer, payee), 10 * FIL)
    channel = created.id_address
    st = state_of(world, channel, PaychState)
    assert (st.from_, st.to) == (world.ids[0], world.ids[1])

    # The payee redeems a voucher the payer signed with its key; the VM checks it against the payer's
    # account (the actor names the payer by ID).
    unsigned = SignedVoucher(created.robust_address, 0, 0, b"", None, 0, 1, 3 * FIL, 0)
    voucher = replace(unsigned, signature=world.keys[0].sign(unsigned.signing_bytes()))
    apply(world, 1, channel, PaychMethod.UpdateChannelState, UpdateChannelStateParams(voucher))
    assert state_of(world, channel, PaychState).to_send == 3 * FIL

    # A voucher signed by the wrong key is refused.
    forged = replace(
        unsigned, nonce=2, signature=world.keys[2].sign(replace(unsigned, nonce=2).signing_bytes())
    )
    code = apply_fails(world, 1, channel, PaychMethod.UpdateChannelState, UpdateChannelStateParams(forged))
    expect_exit(code, ExitCode.ErrIllegalArgument)

    apply(world, 0, channel, PaychMethod.Settle, epoch=5)
    settle_at = state_of(world, channel, PaychState).settling_at
    assert settle_at == 5 + world.policy.paych_settle_delay
    payee_before, payer_before = world.balance(world.ids[1]), world.balance(world.ids[0])
    msg = world.message(1, channel, method=PaychMethod.Collect, gas_limit=GAS)
    ret = world.vm(epoch=settle_at).apply_message(msg)
    expect_exit(ret.exit_code, ExitCode.Ok)
    costs = ret.gas_costs
    gas_paid = costs.base_fee_burn + costs.over_estimation_burn + costs.miner_tip
    assert world.tree.get_actor(channel) is None  # deleted, the rest going back to the payer
    assert world.balance(world.ids[0]) == payer_before + 7 * FIL
    assert world.balance(world.ids[1]) == payee_before + 3 * FIL - gas_paid


# -- multisig -------------------------------------------------------------------------------------------


def test_multisig_two_of_two() -> None:
    world = make_world(accounts=3)
    params = MultisigConstructorParams((world.addresses[0], world.addresses[1]), 2)
    created = exec_actor(world, 0, builtin.MULTISIG_ACTOR_CODE, params, 5 * FIL)
    wallet = created.id_address
    recipient = world.ids[2]
    before = world.balance(recipient)

    proposed = ProposeReturn.from_cbor(
        apply(world, 0, wallet, MultisigMethod.Propose, ProposeParams(recipient, FIL, METHOD_SEND))
    )
    assert not proposed.applied
    approved = ApproveReturn.from_cbor(
        apply(world, 1, wallet, MultisigMethod.Approve, TxnIDParams(proposed.txn_id))
    )
    assert approved.applied and approved.code == 0
    assert world.balance(recipient) == before + FIL
    assert world.balance(wallet) == 4 * FIL

    # Changing the signers goes through the multisig calling itself.
    add = ProposeParams(
        wallet, 0, MultisigMethod.AddSigner, encode_params(AddSignerParams(world.addresses[2], False))
    )
    proposed = ProposeReturn.from_cbor(apply(world, 1, wallet, MultisigMethod.Propose, add))
    approved = ApproveReturn.from_cbor(
        apply(world, 0, wallet, MultisigMethod.Approve, TxnIDParams(proposed.txn_id))
    )
    assert approved.applied and approved.code == 0
    st = state_of(world, wallet, MultisigState)
    assert st.signers == (world.ids[0], world.ids[1], world.ids[2])
    assert st.next_tx_id == 2


# -- storage market -------------------------------------------------------------------------------------


class StubMinerState(CborTuple):
    owner: Address
    worker: Address


class StubMinerMethod(IntEnum):
    ControlAddresses = MinerMethod.ControlAddresses
    Relay = 3  # calls another actor as this miner (the real miner calls the market from its methods)


@exports(StubMinerMethod.ControlAddresses)
def _control_addresses(rt: Runtime) -> GetControlAddressesReturn:
    rt.validate_immediate_caller_accept_any()
    st = rt.state(StubMinerState)
    return GetControlAddressesReturn(st.owner, st.worker, ())


@exports(StubMinerMethod.Relay)
def _relay(rt: Runtime, params: RelayParams) -> RelayReturn:
    rt.validate_immediate_caller_accept_any()
    result = rt.send(params.to, params.method, params.params, params.value)
    return RelayReturn(int(result.exit_code), result.return_data)


STUB_MINER = ActorDef.of(
    builtin.MINER_ACTOR_CODE, "stub-miner", StubMinerState, exported(StubMinerMethod, globals())
)


class Empty(CborTuple):
    pass


@exports(RewardMethod.Constructor, PowerMethod.Constructor)
def _singleton_constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(Empty())


@exports(RewardMethod.AwardBlockReward)
def _award(rt: Runtime, _params: AnyCbor) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)


@exports(RewardMethod.ThisEpochReward)
def _this_epoch_reward(rt: Runtime) -> ThisEpochRewardReturn:
    rt.validate_immediate_caller_accept_any()
    return ThisEpochRewardReturn(FilterEstimate(0, 0), 1 << 40)


@exports(PowerMethod.CurrentTotalPower)
def _total_power(rt: Runtime) -> CurrentTotalPowerReturn:
    rt.validate_immediate_caller_accept_any()
    return CurrentTotalPowerReturn(1 << 30, 1 << 30, 0, FilterEstimate(0, 0))


STUB_REWARD = ActorDef.of(builtin.REWARD_ACTOR_CODE, "stub-reward", Empty, exported(RewardMethod, globals()))

STUB_POWER = ActorDef.of(builtin.POWER_ACTOR_CODE, "stub-power", Empty, exported(PowerMethod, globals()))

MINER = Address.new_id(1000)


def market_world() -> World:
    """Accounts 0 (client), 1 (owner), 2 (worker); the market and a miner; stand-in power and reward."""
    world = make_world(accounts=3, invoker=TEST_INVOKER.with_actors(STUB_MINER, STUB_REWARD, STUB_POWER))
    vm = world.vm(epoch=0)
    install_singleton(vm, builtin.STORAGE_POWER_ACTOR_ADDR, builtin.POWER_ACTOR_CODE)
    install_singleton(vm, builtin.STORAGE_MARKET_ACTOR_ADDR, builtin.MARKET_ACTOR_CODE)
    head = put_cbor(world.store, StubMinerState(world.ids[1], world.ids[2]).to_cbor())
    world.tree.set_actor(MINER, Actor(builtin.MINER_ACTOR_CODE, head, 0, 0))
    return world


def as_miner(world: World, method: int, params: Any, epoch: int) -> bytes:
    relayed = RelayParams(builtin.STORAGE_MARKET_ACTOR_ADDR, method, encode_params(params), 0)
    code, ret = apply(world, 2, MINER, 3, relayed, epoch=epoch)
    expect_exit(code, ExitCode.Ok)
    data: bytes = ret
    return data


def cron(world: World, epoch: int) -> None:
    msg = implicit_message(
        builtin.STORAGE_MARKET_ACTOR_ADDR,
        MarketMethod.CronTick,
        b"",
        nonce=0,
        gas_limit=1 << 40,
        sender=builtin.CRON_ACTOR_ADDR,
    )
    ret = world.vm(epoch=epoch).apply_implicit_message(msg)
    expect_exit(ret.exit_code, ExitCode.Ok)


@pytest.mark.parametrize("client_by_id", [False, True], ids=["key-client", "id-client"])
def test_storage_deal_lifecycle(client_by_id: bool) -> None:
    world = market_world()
    market_addr = builtin.STORAGE_MARKET_ACTOR_ADDR
    client = world.ids[0] if client_by_id else world.addresses[0]
    pieces = [commp_of_bytes(bytes([n]) * 1016) for n in (1, 2)]
    deals = [
        DealProposal(
            piece_cid_v1(p.commitment),
            p.padded_size,
            False,
            client,
            MINER,
            f"deal {i}",
            100,
            200,
            10**9,
            10**17,
            0,
        )
        for i, p in enumerate(pieces)
    ]
    fee = sum(d.client_balance_requirement for d in deals)
    apply(world, 0, market_addr, MarketMethod.AddBalance, world.addresses[0], value=fee)
    apply(world, 1, market_addr, MarketMethod.AddBalance, MINER, value=2 * 10**17)

    # The worker publishes deals the client signed with its own key; the VM verifies the signatures.
    signed = [ClientDealProposal(d, world.keys[0].sign(d.signing_bytes())) for d in deals]
    forged = ClientDealProposal(deals[1], world.keys[1].sign(deals[1].signing_bytes()))
    ret = PublishStorageDealsReturn.from_cbor(
        apply(
            world,
            2,
            market_addr,
            MarketMethod.PublishStorageDeals,
            PublishStorageDealsParams((forged, *signed)),
        )
    )
    assert ret.ids == (0, 1) and list(ret.valid_deals) == [1, 2]

    # The CommD of a sector with both pieces, computed by the VM's syscall, matches proofs.commp.
    commds = ComputeDataCommitmentReturn.from_cbor(
        dagcbor.decode(
            as_miner(
                world,
                MarketMethod.ComputeDataCommitment,
                ComputeDataCommitmentParams((SectorDataSpec((0, 1), 5),)),
                epoch=50,
            )
        )
    )
    assert commds.commds == (piece_cid_v1(comm_d([p.piece_info() for p in pieces], 2048)),)

    as_miner(world, MarketMethod.ActivateDeals, ActivateDealsParams((0, 1), 500), epoch=60)
    for epoch in (100, 101, 150, 260):
        cron(world, epoch)
    market_state = state_of(world, market_addr, MarketState)
    tables = MarketTables(world.store, market_state)
    assert tables.escrow.get(MINER) == 2 * 10**17 + sum(d.total_storage_fee for d in deals)
    assert tables.escrow.get(world.ids[0]) == 0
    assert market_state.total_locked == 0
    assert tables.proposal(0) is None and tables.proposal(1) is None

    # The owner withdraws the provider's collateral and earnings.
    owed = tables.escrow.get(MINER)
    before = world.balance(world.ids[1])
    params = encode_params(WithdrawBalanceParams(MINER, 10**30))
    msg = world.message(1, market_addr, method=MarketMethod.WithdrawBalance, params=params, gas_limit=GAS)
    ret = world.vm(epoch=300).apply_message(msg)
    expect_exit(ret.exit_code, ExitCode.Ok)
    costs = ret.gas_costs
    gas_paid = costs.base_fee_burn + costs.over_estimation_burn + costs.miner_tip
    assert world.balance(world.ids[1]) == before + owed - gas_paid


def test_unknown_deal_ids_fail_through_the_vm() -> None:
    world = market_world()
    relayed = RelayParams(
        builtin.STORAGE_MARKET_ACTOR_ADDR,
        MarketMethod.ActivateDeals,
        encode_params(ActivateDealsParams((7,), 500)),
        0,
    )
    code, _ = apply(world, 2, MINER, 3, relayed)
    expect_exit(code, ExitCode.ErrNotFound)
