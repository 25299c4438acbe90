"""The result shapes of the State* methods that are Lotus API types rather than chain or actor types
(lotus api/api_full.go, api/types.go, chain/types/execresult.go, go-state-types dline.Info).

Actor and chain types (Actor, MessageReceipt, SectorOnChainInfo, DealProposal, BitField, ...) are
returned as they are declared; these classes are only the API's own wrappers, each named as Lotus
names it, except where an actor type of that name exists (the miner's MinerInfo, Deadline and
Partition): the API's versions are ApiMinerInfo, ApiDeadline and ApiPartition.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from actors.market.types import DealProposal
from actors.miner.state import BeneficiaryTerm, PendingBeneficiaryChange
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import (
    BigInt,
    Bytes,
    ChainEpoch,
    Int64,
    Kind,
    LotusJson,
    Name,
    StoragePower,
    TokenAmount,
    Uint64,
    kind_name,
)
from chain.state.tree import Actor
from chain.types.address import Address, AddressOrUndef
from chain.types.bitfield import BitField
from chain.types.message import Message
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSetKey
from rpc.jsontypes import JSON_VALUE_KIND

# -- values Lotus types as interface{} ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decoded:
    """A value decoded with an actor's declared type (its state, a method's params or return value),
    written as that type's Lotus JSON: what Lotus returns as interface{} (ActorState.State,
    MsgLookup.ReturnDec, StateDecodeParams). Read back from JSON it stays plain JSON."""

    kind: Kind
    value: Any

    def to_json(self, network: str) -> Any:
        return self.kind.to_json(self.value, network)

    @classmethod
    def from_json(cls, raw: Any, what: str = "value") -> "Decoded":
        return cls(JSON_VALUE_KIND, raw)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return {}


# -- messages -------------------------------------------------------------------------------------------


class MsgLookup(LotusJson):
    """Where a message executed (api.MsgLookup): its CID (a replacement's, if it was replaced), the
    receipt, the decoded return value, and the tipset that executed it."""

    message: CID
    receipt: MessageReceipt
    return_dec: Decoded | None
    tip_set: Annotated[TipSetKey, Name("TipSet")]
    height: ChainEpoch


class MsgGasCost(LotusJson):
    """api.MsgGasCost: where a message's gas money went (no message for a StateCall, which is free)."""

    message: CID | None
    gas_used: BigInt
    base_fee_burn: TokenAmount
    over_estimation_burn: TokenAmount
    miner_penalty: TokenAmount
    miner_tip: TokenAmount
    refund: TokenAmount
    total_cost: TokenAmount


class MessageTrace(LotusJson):
    from_: Address
    to: Address
    value: TokenAmount
    method: Uint64
    params: Bytes
    params_codec: Uint64
    gas_limit: Uint64
    read_only: bool


class ReturnTrace(LotusJson):
    exit_code: Int64
    return_: Bytes
    return_codec: Uint64


class ActorTrace(LotusJson):
    id: Annotated[Uint64, Name("Id")]
    state: Actor


class GasTrace(LotusJson):
    name: str
    total_gas: Annotated[Int64, Name("tg")]
    compute_gas: Annotated[Int64, Name("cg")]
    storage_gas: Annotated[Int64, Name("sg")]
    time_taken: Annotated[Int64, Name("tt")]


class ExecutionTrace(LotusJson):
    """types.ExecutionTrace. filpy's VM records no trace of nested sends or gas charges, so a trace
    holds the message and its receipt (Subcalls and GasCharges are null; InvokedActor is null where
    Lotus leaves it out)."""

    msg: Annotated[MessageTrace, Name("Msg")]
    msg_rct: Annotated[ReturnTrace, Name("MsgRct")]
    invoked_actor: ActorTrace | None = None
    gas_charges: tuple[GasTrace, ...] = ()
    subcalls: tuple["ExecutionTrace", ...] = ()


class InvocResult(LotusJson):
    """api.InvocResult: what applying a message without keeping it gave (StateCall, StateReplay)."""

    msg_cid: Annotated[CID, Name("MsgCid")]
    msg: Message | None
    msg_rct: Annotated[MessageReceipt | None, Name("MsgRct")]
    gas_cost: MsgGasCost
    execution_trace: ExecutionTrace
    error: str
    duration: Int64  # nanoseconds (Go's time.Duration)


# -- actors ---------------------------------------------------------------------------------------------


class ActorState(LotusJson):
    """api.ActorState: an actor's balance, code and decoded state."""

    balance: TokenAmount
    code: CID
    state: Decoded


# -- network --------------------------------------------------------------------------------------------


class ForkUpgradeParams(LotusJson):
    """api.ForkUpgradeParams: the epoch of each network upgrade (negative: before the genesis)."""

    upgrade_smoke_height: ChainEpoch
    upgrade_breeze_height: ChainEpoch
    upgrade_ignition_height: ChainEpoch
    upgrade_liftoff_height: ChainEpoch
    upgrade_assembly_height: ChainEpoch
    upgrade_refuel_height: ChainEpoch
    upgrade_tape_height: ChainEpoch
    upgrade_kumquat_height: ChainEpoch
    breeze_gas_tamping_duration: ChainEpoch
    upgrade_calico_height: ChainEpoch
    upgrade_persian_height: ChainEpoch
    upgrade_orange_height: ChainEpoch
    upgrade_claus_height: ChainEpoch
    upgrade_trust_height: ChainEpoch
    upgrade_norwegian_height: ChainEpoch
    upgrade_turbo_height: ChainEpoch
    upgrade_hyperdrive_height: ChainEpoch
    upgrade_chocolate_height: ChainEpoch
    upgrade_oh_snap_height: ChainEpoch
    upgrade_skyr_height: ChainEpoch
    upgrade_shark_height: ChainEpoch
    upgrade_hygge_height: ChainEpoch
    upgrade_lightning_height: ChainEpoch
    upgrade_thunder_height: ChainEpoch
    upgrade_watermelon_height: ChainEpoch
    upgrade_dragon_height: ChainEpoch
    upgrade_phoenix_height: ChainEpoch
    upgrade_waffle_height: ChainEpoch
    upgrade_tuktuk_height: ChainEpoch
    upgrade_teep_height: ChainEpoch
    upgrade_tock_height: ChainEpoch
    upgrade_golden_week_height: ChainEpoch
    upgrade_fire_horse_height: ChainEpoch
    upgrade_xx_height: ChainEpoch


class NetworkParams(LotusJson):
    """api.NetworkParams."""

    network_name: str
    block_delay_secs: Uint64
    consensus_miner_min_power: StoragePower
    pre_commit_challenge_delay: ChainEpoch
    fork_upgrade_params: ForkUpgradeParams
    eip155_chain_id: Annotated[Int64, Name("Eip155ChainID")]
    genesis_timestamp: Uint64


# -- miners ---------------------------------------------------------------------------------------------


class PowerClaim(LotusJson):
    """Lotus's power.Claim as the API returns it (without the proof type of the actor's claim)."""

    raw_byte_power: StoragePower
    quality_adj_power: StoragePower


class MinerPower(LotusJson):
    """api.MinerPower: the miner's claim, the network's total, and whether the miner is above the
    consensus minimum."""

    miner_power: PowerClaim
    total_power: PowerClaim
    has_min_power: bool


class ApiMinerInfo(LotusJson, kw_only=True):
    """api.MinerInfo: the miner actor's info with the pending worker change spelled out (NewWorker is
    "<empty>" and WorkerChangeEpoch -1 when none is pending) and the peer ID as text."""

    owner: Address
    worker: Address
    new_worker: AddressOrUndef
    control_addresses: tuple[Address, ...]
    worker_change_epoch: ChainEpoch
    peer_id: Annotated[str | None, Name("PeerId")]
    multiaddrs: tuple[Bytes, ...]
    window_post_proof_type: Annotated[Int64, Name("WindowPoStProofType")]
    sector_size: Uint64
    window_post_partition_sectors: Annotated[Uint64, Name("WindowPoStPartitionSectors")]
    consensus_fault_elapsed: ChainEpoch
    pending_owner_address: Address | None
    beneficiary: Address
    beneficiary_term: BeneficiaryTerm | None
    pending_beneficiary_term: PendingBeneficiaryChange | None


class ApiDeadline(LotusJson):
    """api.Deadline: the partitions proven in the current window, the optimistic proofs open to
    dispute (filpy has no disputes: always 0) and the deadline's daily fee (nv25; 0 here)."""

    post_submissions: Annotated[BitField, Name("PostSubmissions")]
    disputable_proof_count: Uint64
    daily_fee: TokenAmount


class ApiPartition(LotusJson):
    """api.Partition: a partition's sector sets."""

    all_sectors: BitField
    faulty_sectors: BitField
    recovering_sectors: BitField
    live_sectors: BitField
    active_sectors: BitField


class DlineInfo(LotusJson, kw_only=True):
    """go-state-types dline.Info: a proving deadline as seen from CurrentEpoch, with the proving
    parameters it was computed with."""

    current_epoch: ChainEpoch
    period_start: ChainEpoch
    index: Uint64
    open: ChainEpoch
    close: ChainEpoch
    challenge: ChainEpoch
    fault_cutoff: ChainEpoch
    wpost_period_deadlines: Annotated[Uint64, Name("WPoStPeriodDeadlines")]
    wpost_proving_period: Annotated[ChainEpoch, Name("WPoStProvingPeriod")]
    wpost_challenge_window: Annotated[ChainEpoch, Name("WPoStChallengeWindow")]
    wpost_challenge_lookback: Annotated[ChainEpoch, Name("WPoStChallengeLookback")]
    fault_declaration_cutoff: ChainEpoch


# -- market ---------------------------------------------------------------------------------------------


class MarketDealState(LotusJson):
    """api.MarketDealState: -1 epochs for what has not happened; SectorNumber 0 when the actor
    version does not record it (filpy's nv21 market does not)."""

    sector_number: Uint64
    sector_start_epoch: ChainEpoch
    last_updated_epoch: ChainEpoch
    slash_epoch: ChainEpoch


class MarketDeal(LotusJson):
    proposal: DealProposal
    state: MarketDealState


@dataclass(frozen=True, slots=True)
class MarketDeals:
    """StateMarketDeals: deals by ID, a JSON object keyed by the decimal deal ID (Go's map[string])."""

    deals: dict[int, MarketDeal]

    def to_json(self, network: str) -> dict[str, Any]:
        # Go writes a map's keys in string order.
        return {key: self.deals[int(key)].to_json(network) for key in sorted(map(str, self.deals))}

    @classmethod
    def from_json(cls, raw: Any, what: str = "MarketDeals") -> "MarketDeals":
        if not isinstance(raw, dict):
            raise DecodeError(f"{what}: expected a JSON object, got {kind_name(raw)}")
        deals = {}
        for key, value in raw.items():
            if not key.isdigit():
                raise DecodeError(f"{what}: {key[:40]!r} is not a deal ID")
            deals[int(key)] = MarketDeal.from_json(value, f"{what}[{key}]")
        return cls(deals)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return {
            "title": "MarketDeals",
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/MarketDeal"},
        }
