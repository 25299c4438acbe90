"""apply_tipset: message order and de-duplication, receipts, block rewards, cron at every epoch."""

from actors import builtin
from actors.cron.types import CronEntry
from actors.reward.types import AwardBlockRewardParams, RewardMethod
from chain.crypto.keys import KeyType
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.state.amt import amt_v0_to_list
from chain.store.blockstore import get_cbor
from chain.types.address import Address
from chain.types.receipt import MessageReceipt
from chain.vm.exitcode import ExitCode
from chain.vm.invoker import DEFAULT_INVOKER
from chain.vm.tipset_apply import (
    BlockMessages,
    ImplicitMessageFailed,
    reward_message,
)
from tests.chain.vm_helpers import (
    BASE_FEE,
    FIL,
    PROBE,
    FakeRewardState,
    World,
    install_singleton,
    make_world,
    total_balance,
)

TICKER = Address.new_id(103)  # the first actor made after make_world's three accounts


def ticker_world(**kwargs: object) -> World:
    world = make_world(cron_entries=(CronEntry(TICKER, 9),), **kwargs)  # type: ignore[arg-type]
    assert world.add_probe() == TICKER
    world.tree.flush()
    return world


def ticks(world: World) -> int:
    value: int = get_cbor(world.store, world.tree.get_actor(TICKER).head)[0]  # type: ignore[union-attr]
    return value


def reward_state(world: World) -> FakeRewardState:
    return FakeRewardState.from_cbor(
        get_cbor(world.store, world.tree.get_actor(builtin.REWARD_ACTOR_ADDR).head)
    )  # type: ignore[union-attr]


def test_messages_run_once_in_block_order_and_miners_get_their_tips() -> None:
    world = ticker_world()
    miner_a, miner_b = world.ids[2], world.add_probe()
    m1 = world.message(0, world.addresses[1], value=FIL, nonce=0)
    m2 = world.message(1, world.addresses[0], value=2 * FIL, nonce=0)
    m3 = world.message(0, world.addresses[1], value=3 * FIL, nonce=1)
    before_1, before_a = world.balance(world.ids[1]), world.balance(miner_a)
    total = total_balance(world.tree)
    blocks = [
        BlockMessages(miner_a, secpk_messages=[m1, m2]),
        BlockMessages(miner_b, secpk_messages=[m1, m3]),
    ]
    result = world.apply_tipset(0, 1, blocks)
    assert [cid for cid, _ in result.applied] == [m1.message.cid(), m2.message.cid(), m3.message.cid()]
    assert [r.exit_code for r in result.receipts] == [0, 0, 0]
    stored = [MessageReceipt.from_cbor(raw) for raw in amt_v0_to_list(world.store, result.receipts_root)]
    assert stored == list(result.receipts)
    out = [ret.gas_costs for _, ret in result.applied]
    m2_fees = out[1].base_fee_burn + out[1].over_estimation_burn + out[1].miner_tip
    assert world.balance(world.ids[1]) == before_1 + FIL + 3 * FIL - 2 * FIL - m2_fees
    # Each block's miner got the tips of the messages its block ran, through the reward actor.
    assert world.balance(miner_a) == before_a + out[0].miner_tip + out[1].miner_tip
    assert world.balance(miner_b) == out[2].miner_tip
    assert world.balance(builtin.REWARD_ACTOR_ADDR) == 0
    assert reward_state(world).awards == 2
    assert total_balance(world.tree) == total
    assert result.state_root == world.tree.flush()


def test_cron_runs_at_every_epoch_including_null_rounds() -> None:
    world = ticker_world()
    world.apply_tipset(0, 1, [BlockMessages(world.ids[2])])
    assert ticks(world) == 1
    world.apply_tipset(1, 4, [BlockMessages(world.ids[2])])  # epochs 2 and 3 are null rounds
    assert ticks(world) == 1_02_03_04
    assert reward_state(world).awards == 2  # no reward for null rounds


def test_penalties_and_win_counts_reach_the_reward_message() -> None:
    world = ticker_world()
    bad = world.message(0, world.addresses[1], value=FIL, nonce=7, gas_limit=1_000_000)
    result = world.apply_tipset(0, 1, [BlockMessages(world.ids[2], secpk_messages=[bad], win_count=3)])
    assert result.receipts[0].exit_code == ExitCode.SysErrSenderStateInvalid
    state = reward_state(world)
    assert state.penalties == BASE_FEE * 1_000_000
    assert state.wins == 3


def test_bls_messages_run_before_secp_messages() -> None:
    world = make_world(key_type=KeyType.BLS)
    signed = world.message(0, world.addresses[1], value=FIL, nonce=1)
    unsigned = world.message(0, world.addresses[2], value=FIL, nonce=0).message
    result = world.apply_tipset(
        0, 1, [BlockMessages(world.ids[2], bls_messages=[unsigned], secpk_messages=[signed])]
    )
    assert [r.exit_code for r in result.receipts] == [0, 0]
    assert world.nonce(world.ids[0]) == 2


def test_same_inputs_give_the_same_roots() -> None:
    roots = []
    for _ in range(2):
        world = ticker_world()
        msgs = [world.message(0, world.addresses[1], value=FIL, nonce=n) for n in range(3)]
        result = world.apply_tipset(0, 2, [BlockMessages(world.ids[2], secpk_messages=msgs)])
        roots.append((result.state_root, result.receipts_root))
    assert roots[0] == roots[1]


def test_failing_block_reward_stops_the_tipset() -> None:
    world = ticker_world()
    msg = world.message(0, world.addresses[1], value=FIL)
    try:
        world.apply_tipset(0, 1, [BlockMessages(Address.new_id(9999), secpk_messages=[msg])])
    except ImplicitMessageFailed as exc:
        assert exc.ret.exit_code == ExitCode.SysErrInvalidReceiver
    else:
        raise AssertionError("a reward that cannot be paid must fail the tipset")


def test_award_block_reward_params_shape() -> None:
    msg = reward_message(3, AwardBlockRewardParams(Address.new_id(1000), 5, 7, 2))
    assert (msg.to, msg.from_, msg.method) == (builtin.REWARD_ACTOR_ADDR, builtin.SYSTEM_ACTOR_ADDR, 2)
    assert msg.method == RewardMethod.AwardBlockReward
    raw = dagcbor.decode(msg.params)
    assert raw == [Address.new_id(1000).to_bytes(), encode_bigint(5), encode_bigint(7), 2]


def test_reward_path_with_the_real_reward_actor() -> None:
    """The block reward goes through actors/reward.py as chain/vm/invoker.py lists it. The 'miner'
    here is an account, which refuses ApplyRewards, so the reward actor burns what it would pay."""
    assert DEFAULT_INVOKER.actor(builtin.REWARD_ACTOR_CODE) is not None, "no reward actor in the invoker"
    invoker = DEFAULT_INVOKER.with_actors(PROBE)
    world = make_world(
        invoker=invoker, reward_params=dagcbor.encode(encode_bigint(0)), reward_balance=10**6 * FIL
    )
    before_burnt = world.balance(builtin.BURNT_FUNDS_ACTOR_ADDR)
    before_reward = world.balance(builtin.REWARD_ACTOR_ADDR)
    before_miner = world.balance(world.ids[2])
    total = total_balance(world.tree)
    msg = world.message(0, world.addresses[1], value=FIL)
    result = world.apply_tipset(0, 1, [BlockMessages(world.ids[2], secpk_messages=[msg])], invoker=invoker)
    ((_, ret),) = result.applied
    assert ret.exit_code == 0
    paid_out = before_reward + ret.gas_costs.miner_tip - world.balance(builtin.REWARD_ACTOR_ADDR)
    assert paid_out >= ret.gas_costs.miner_tip > 0
    burns = ret.gas_costs.base_fee_burn + ret.gas_costs.over_estimation_burn
    assert world.balance(builtin.BURNT_FUNDS_ACTOR_ADDR) == before_burnt + burns + paid_out
    assert world.balance(world.ids[2]) == before_miner
    assert total_balance(world.tree) == total


def test_genesis_singletons_tick_through_cron() -> None:
    """Cron's genesis entries reach the real power (OnEpochTickEnd -> reward) and market (CronTick)
    actors at every epoch, null rounds included."""
    from actors.cron.types import GENESIS_ENTRIES
    from actors.market.state import MarketState
    from actors.reward.state import RewardState

    invoker = DEFAULT_INVOKER.with_actors(PROBE)
    world = make_world(
        invoker=invoker,
        cron_entries=GENESIS_ENTRIES,
        reward_params=dagcbor.encode(encode_bigint(0)),
        reward_balance=10**6 * FIL,
    )
    vm = world.vm(epoch=0)
    install_singleton(vm, builtin.STORAGE_POWER_ACTOR_ADDR, builtin.POWER_ACTOR_CODE)
    install_singleton(vm, builtin.STORAGE_MARKET_ACTOR_ADDR, builtin.MARKET_ACTOR_CODE)
    world.apply_tipset(0, 1, [BlockMessages(world.ids[2])], invoker=invoker)
    world.apply_tipset(1, 4, [BlockMessages(world.ids[2])], invoker=invoker)

    def head(address: Address) -> object:
        return get_cbor(world.store, world.tree.get_actor(address).head)  # type: ignore[union-attr]

    assert MarketState.from_cbor(head(builtin.STORAGE_MARKET_ACTOR_ADDR)).last_cron == 4
    assert RewardState.from_cbor(head(builtin.REWARD_ACTOR_ADDR)).epoch == 5
