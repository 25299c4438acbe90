"""Shared set-up for the market actor tests: parties, funded escrows, signed proposals, publication.

Deal proposals are signed for real with a secp256k1 client key; the mock runtime checks those
signatures with chain.crypto (expect_verify_signature_checked) unless a test says otherwise.
"""

from dataclasses import dataclass, replace

from actors import builtin
from actors.balance_table import BalanceTable
from actors.market.actor import ACTOR as MARKET
from actors.market.state import MarketState, MarketTables
from actors.market.types import (
    ClientDealProposal,
    DealProposal,
    DealState,
    MarketMethod,
    PublishStorageDealsParams,
    PublishStorageDealsReturn,
)
from actors.miner.types import GetControlAddressesReturn, MinerMethod
from actors.power.types import CurrentTotalPowerReturn, PowerMethod
from actors.reward.types import RewardMethod, ThisEpochRewardReturn
from actors.smoothing import FilterEstimate
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.types.address import Address
from proofs.commp import commp_of_bytes
from tests.actors.mock_runtime import MockRuntime

MARKET_ADDR = builtin.STORAGE_MARKET_ACTOR_ADDR
OWNER = Address.new_id(101)
WORKER = Address.new_id(102)
CONTROL = Address.new_id(103)
PROVIDER = Address.new_id(1000)
OTHER_PROVIDER = Address.new_id(1001)
CLIENT = Address.new_id(1100)
OTHER_CLIENT = Address.new_id(1101)
STRANGER = Address.new_id(1200)

CLIENT_KEY = PrivateKey.derive(KeyType.SECP256K1, b"market test client")
CLIENT_KEY_ADDR = Address.of_key(CLIENT_KEY)
OTHER_CLIENT_KEY = PrivateKey.derive(KeyType.BLS, b"market test other client")
OTHER_CLIENT_KEY_ADDR = Address.of_key(OTHER_CLIENT_KEY)

SIGNABLE = builtin.CALLER_TYPES_SIGNABLE
SEAL_PROOF_2KIB = 5  # StackedDrg2KiBV1_1
SECTOR_SIZE_2KIB = 2048
FIL = 10**18

PIECES = [commp_of_bytes(bytes([i]) * 1016) for i in range(4)]  # four 1 KiB (padded) pieces
PIECE_CIDS = [piece_cid_v1(p.commitment) for p in PIECES]


def piece_cid(i: int) -> CID:
    return PIECE_CIDS[i]


def new_market(epoch: int = 0) -> MockRuntime:
    """A constructed market with the test parties' codes and addresses registered."""
    rt = MockRuntime(receiver=MARKET_ADDR)
    for address, code in (
        (OWNER, builtin.ACCOUNT_ACTOR_CODE),
        (WORKER, builtin.ACCOUNT_ACTOR_CODE),
        (CONTROL, builtin.ACCOUNT_ACTOR_CODE),
        (CLIENT, builtin.ACCOUNT_ACTOR_CODE),
        (OTHER_CLIENT, builtin.ACCOUNT_ACTOR_CODE),
        (STRANGER, builtin.ACCOUNT_ACTOR_CODE),
        (PROVIDER, builtin.MINER_ACTOR_CODE),
        (OTHER_PROVIDER, builtin.MINER_ACTOR_CODE),
    ):
        rt.set_actor_code(address, code)
    rt.add_id_address(CLIENT_KEY_ADDR, CLIENT)
    rt.add_id_address(OTHER_CLIENT_KEY_ADDR, OTHER_CLIENT)
    rt.key_addresses[CLIENT] = CLIENT_KEY_ADDR
    rt.key_addresses[OTHER_CLIENT] = OTHER_CLIENT_KEY_ADDR
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    rt.call(MARKET, 1)
    rt.verify()
    rt.curr_epoch = epoch
    return rt


def expect_control_addresses(rt: MockRuntime, miner: Address = PROVIDER) -> None:
    rt.expect_send(
        miner,
        MinerMethod.ControlAddresses,
        None,
        0,
        GetControlAddressesReturn(OWNER, WORKER, (CONTROL,)),
    )


def add_escrow(rt: MockRuntime, party: Address, amount: int, caller: Address | None = None) -> None:
    """AddBalance for party (a client, or a miner whose owner pays)."""
    payer = caller or (OWNER if rt.actor_codes.get(party) == builtin.MINER_ACTOR_CODE else party)
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, payer)
    rt.value_received = amount
    rt.expect_validate_caller_type(*SIGNABLE)
    if rt.actor_codes.get(party) == builtin.MINER_ACTOR_CODE:
        expect_control_addresses(rt, party)
    rt.call(MARKET, MarketMethod.AddBalance, party)
    rt.verify()
    rt.value_received = 0
    rt.balance += amount


def proposal(
    *,
    start: int = 100,
    end: int = 200,
    price: int = 10,
    provider_collateral: int = 1000,
    client_collateral: int = 500,
    client: Address = CLIENT_KEY_ADDR,
    provider: Address = PROVIDER,
    piece: int = 0,
    label: str | bytes = "deal",
    verified: bool = False,
) -> DealProposal:
    return DealProposal(
        piece_cid=piece_cid(piece),
        piece_size=PIECES[piece].padded_size,
        verified_deal=verified,
        client=client,
        provider=provider,
        label=label,
        start_epoch=start,
        end_epoch=end,
        storage_price_per_epoch=price,
        provider_collateral=provider_collateral,
        client_collateral=client_collateral,
    )


def sign(deal: DealProposal, key: PrivateKey = CLIENT_KEY) -> ClientDealProposal:
    """The client's real signature over the proposal's CBOR, as Lotus's client makes it."""
    return ClientDealProposal(deal, key.sign(deal.signing_bytes()))


BAD_SIGNATURE = Signature(SigType.SECP256K1, bytes(65))


@dataclass
class Network:
    """What the reward and power actors report during PublishStorageDeals."""

    baseline_power: int = 0
    raw_power: int = 0
    circulating_supply: int = 0


def expect_publish_preamble(rt: MockRuntime, network: Network, caller: Address = WORKER) -> None:
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, caller)
    rt.circulating_supply = network.circulating_supply
    rt.expect_validate_caller_type(*SIGNABLE)
    expect_control_addresses(rt)
    rt.expect_send(
        builtin.REWARD_ACTOR_ADDR,
        RewardMethod.ThisEpochReward,
        None,
        0,
        ThisEpochRewardReturn(FilterEstimate(0, 0), network.baseline_power),
    )
    rt.expect_send(
        builtin.STORAGE_POWER_ACTOR_ADDR,
        PowerMethod.CurrentTotalPower,
        None,
        0,
        CurrentTotalPowerReturn(network.raw_power, network.raw_power, 0, FilterEstimate(0, 0)),
    )


def publish(
    rt: MockRuntime,
    deals: list[ClientDealProposal],
    network: Network | None = None,
    caller: Address = WORKER,
) -> PublishStorageDealsReturn:
    """PublishStorageDeals with every signature checked for real; returns the decoded return."""
    network = network or Network()
    expect_publish_preamble(rt, network, caller)
    for deal in deals:
        rt.expect_verify_signature_checked(
            deal.client_signature, deal.proposal.client, deal.proposal.signing_bytes()
        )
    raw = rt.call_decoded(MARKET, MarketMethod.PublishStorageDeals, PublishStorageDealsParams(tuple(deals)))
    rt.verify()
    return PublishStorageDealsReturn.from_cbor(raw)


def publish_one(rt: MockRuntime, deal: DealProposal) -> int:
    """Fund both parties for deal and publish it; return its deal ID."""
    add_escrow(rt, CLIENT, deal.client_balance_requirement)
    add_escrow(rt, PROVIDER, deal.provider_collateral)
    result = publish(rt, [sign(deal)])
    assert len(result.ids) == 1
    return result.ids[0]


def stored(deal: DealProposal) -> DealProposal:
    """The proposal as the market stores it: both parties by ID."""
    client = CLIENT if deal.client == CLIENT_KEY_ADDR else deal.client
    return replace(deal, client=client)


def state(rt: MockRuntime) -> MarketState:
    return rt.state(MarketState)


def tables(rt: MockRuntime) -> MarketTables:
    return MarketTables(rt.store, state(rt))


def escrow(rt: MockRuntime, party: Address) -> int:
    return BalanceTable.load(rt.store, state(rt).escrow_table).get(party)


def locked(rt: MockRuntime, party: Address) -> int:
    return BalanceTable.load(rt.store, state(rt).locked_table).get(party)


def deal_state(rt: MockRuntime, deal_id: int) -> DealState | None:
    return tables(rt).deal_state(deal_id)


def as_miner(rt: MockRuntime, miner: Address = PROVIDER) -> None:
    rt.set_caller(builtin.MINER_ACTOR_CODE, miner)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
