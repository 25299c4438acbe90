"""A miner actor on MockRuntime with helpers that script the calls each method makes."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors import builtin
from actors.account.types import AccountMethod
from actors.dispatch import METHOD_SEND, encode_params
from actors.market.types import (
    ActivateDealsParams,
    ActivateDealsResult,
    MarketMethod,
    OnMinerSectorsTerminateParams,
    SectorDealData,
    SectorDeals,
    VerifyDealsForActivationParams,
    VerifyDealsForActivationReturn,
)
from actors.miner.actor import ACTOR
from actors.miner.deadlines import Deadlines
from actors.miner.policy import (
    DeadlineInfo,
    initial_pledge_for_power,
    qa_power_for_weight,
)
from actors.miner.proving import termination_penalty
from actors.miner.state import (
    MinerInfo,
    MinerState,
    PreCommits,
    SectorOnChainInfo,
    SectorPreCommitOnChainInfo,
    Sectors,
)
from actors.miner.types import (
    CRON_EVENT_PROVING_DEADLINE,
    CronEventPayload,
    DeferredCronEventParams,
    MinerConstructorParams,
    MinerMethod,
    PoStPartition,
    PowerPair,
    PreCommitSectorParams,
    ProveCommitSectorParams,
    SubmitWindowedPoStParams,
)
from actors.power.types import (
    CurrentTotalPowerReturn,
    EnrollCronEventParams,
    PowerMethod,
    UpdateClaimedPowerParams,
)
from actors.reward.types import RewardMethod, ThisEpochRewardReturn
from actors.smoothing import FilterEstimate
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID, FIL_COMMITMENT_SEALED
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from chain.encoding.multihash import Multihash
from chain.types.address import Address
from chain.types.block import PoStProof
from chain.types.sector import (
    POSEIDON_BLS12_381_A1_FC1,
    SealVerifyInfo,
    SectorID,
    SectorInfo,
    WindowPoStVerifyInfo,
)
from chain.vm.exitcode import ActorError, ExitCode
from proofs import merkle
from proofs.registered import make_prover_id
from proofs.seal import SealedSector, prove_commit, seal, verify_seal
from tests.actors.aborts import aborts
from tests.actors.mock_runtime import MockRuntime

MINER = Address.new_id(1000)
OWNER = Address.new_id(100)
WORKER = Address.new_id(101)
CONTROL = Address.new_id(102)
REPORTER = Address.new_id(103)
WORKER_KEY = Address.new_bls(bytes([0xA0]) + bytes(47))
SEAL_PROOF = 5  # StackedDRG2KiBV1_1
WPOST_PROOF = 10  # StackedDRGWindow2KiBV1_1
SECTOR_SIZE = 2048
FIL = 10**18
BALANCE = 1_000 * FIL
CIRCULATING = 1_000_000_000 * FIL
REWARD = ThisEpochRewardReturn(FilterEstimate.of(36 * FIL, 0), 1 << 60)
POWER = CurrentTotalPowerReturn(1 << 40, 1 << 40, 0, FilterEstimate.of(1 << 40, 0))
TICKET = bytes(range(32))
SEED = bytes(range(32, 64))
COMMIT_RAND = bytes([7]) * 32
POST_RAND = bytes([9]) * 32
ZERO_COMMD = piece_cid_v1(bytes([1]) * 32)
ENTROPY = dagcbor.encode(MINER.to_cbor())
REAL_ZERO_COMMD = piece_cid_v1(merkle.root_of(bytes(SECTOR_SIZE)))  # what proofs/ computes for a zero sector


def sealed_cid(comm_r: bytes) -> CID:
    return CID.v1(FIL_COMMITMENT_SEALED, Multihash(POSEIDON_BLS12_381_A1_FC1, comm_r))


def default_sealed(number: int) -> CID:
    return sealed_cid(number.to_bytes(32, "big"))


@dataclass
class Harness:
    rt: MockRuntime = field(default_factory=lambda: MockRuntime(receiver=MINER))
    # what the power actor answers to CurrentTotalPower (and passes to the deadline cron)
    power: CurrentTotalPowerReturn = POWER

    def __post_init__(self) -> None:
        rt = self.rt
        rt.curr_epoch = 10
        rt.balance = BALANCE
        rt.circulating_supply = CIRCULATING
        for address in (OWNER, WORKER, CONTROL, REPORTER):
            rt.set_actor_code(address, builtin.ACCOUNT_ACTOR_CODE)

    # -- reading --------------------------------------------------------------------------------------
    def state(self) -> MinerState:
        return self.rt.state(MinerState)

    def info(self) -> MinerInfo:
        return self.state().get_info(self.rt.store)

    def deadline(self, epoch: int | None = None) -> DeadlineInfo:
        epoch = self.rt.curr_epoch if epoch is None else epoch
        return DeadlineInfo.from_epoch(self.rt.policy, self.state().proving_period_start, epoch)

    def deadline_info(self, index: int) -> DeadlineInfo:
        """Deadline `index` in the first proving period where it has not yet closed."""
        info = DeadlineInfo.of(self.rt.policy, self.state().proving_period_start, index, self.rt.curr_epoch)
        return info.next_not_elapsed()

    def sector(self, number: int) -> SectorOnChainInfo | None:
        return Sectors.load(self.rt.store, self.state().sectors).get(number)

    def location(self, number: int) -> tuple[int, int]:
        deadlines = Deadlines.load(self.rt.store, self.state().deadlines)
        for index in range(self.rt.policy.wpost_period_deadlines):
            for part_index, partition in (
                deadlines.get(self.rt.store, index).load_partitions(self.rt.store).items()
            ):
                if number in partition.sectors:
                    return index, part_index
        raise AssertionError(f"sector {number} is in no deadline")

    def partition(self, deadline: int, index: int) -> Any:
        deadlines = Deadlines.load(self.rt.store, self.state().deadlines)
        return deadlines.get(self.rt.store, deadline).load_partitions(self.rt.store).must_get(index)

    def control_set(self) -> tuple[Address, ...]:
        return self.info().control_set()

    # -- calling -------------------------------------------------------------------------------------
    def call_fails(self, code: ExitCode, method: MinerMethod, params: object = None) -> ActorError:
        """The miner's `method` called with `params` aborts with `code` (see fails)."""
        return fails(self, code, lambda: self.rt.call(ACTOR, method, params))

    # -- construction --------------------------------------------------------------------------------
    def construct(
        self, controls: tuple[Address, ...] = (CONTROL,), window_post_proof: int = WPOST_PROOF
    ) -> None:
        rt = self.rt
        rt.set_caller(builtin.INIT_ACTOR_CODE, builtin.INIT_ACTOR_ADDR)
        rt.expect_validate_caller_addr(builtin.INIT_ACTOR_ADDR)
        rt.expect_send(WORKER, AccountMethod.PubkeyAddress, None, 0, WORKER_KEY)
        params = MinerConstructorParams(
            OWNER, WORKER, controls, window_post_proof, b"peer", (b"/ip4/127.0.0.1",)
        )
        rt.call(ACTOR, MinerMethod.Constructor, params)
        rt.verify()

    # -- expectations --------------------------------------------------------------------------------
    def expect_stats(self) -> None:
        self.rt.expect_send(builtin.REWARD_ACTOR_ADDR, RewardMethod.ThisEpochReward, None, 0, REWARD)
        self.rt.expect_send(
            builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.CurrentTotalPower, None, 0, self.power
        )

    def expect_power(self, delta: PowerPair) -> None:
        if not delta.is_zero():
            params = UpdateClaimedPowerParams(delta.raw, delta.qa)
            self.rt.expect_send(builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.UpdateClaimedPower, params, 0)

    def expect_pledge(self, delta: int) -> None:
        if delta:
            self.rt.expect_send(
                builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.UpdatePledgeTotal, encode_bigint(delta), 0
            )

    def expect_burn(self, amount: int) -> None:
        if amount > 0:
            self.rt.expect_send(builtin.BURNT_FUNDS_ACTOR_ADDR, METHOD_SEND, None, amount)

    def termination_penalty(self, sectors: list[SectorOnChainInfo]) -> int:
        """The fee for terminating sectors now, at the reward and power estimates the actors answer."""
        return termination_penalty(
            self.rt.policy,
            SECTOR_SIZE,
            self.rt.curr_epoch,
            REWARD.this_epoch_reward_smoothed,
            self.power.quality_adj_power_smoothed,
            sectors,
        )

    def expect_terminate(self, power: PowerPair, fee: int, pledge: int) -> None:
        """What TerminateSectors from the worker sends: the stats, the power given up, the fee burnt
        and the pledge released."""
        self.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
        self.rt.expect_validate_caller_addr(*self.control_set())
        self.expect_stats()
        self.expect_power(-power)
        self.expect_burn(fee)
        self.expect_pledge(-pledge)

    def expect_enroll(self, epoch: int) -> None:
        payload = encode_params(CronEventPayload(CRON_EVENT_PROVING_DEADLINE))
        params = EnrollCronEventParams(epoch, payload)
        self.rt.expect_send(builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.EnrollCronEvent, params, 0)

    # -- sealing -------------------------------------------------------------------------------------
    def precommit_params(
        self,
        number: int,
        expiration: int | None = None,
        deals: tuple[int, ...] = (),
        sealed: CID | None = None,
    ) -> PreCommitSectorParams:
        policy = self.rt.policy
        if expiration is None:
            expiration = (
                self.rt.curr_epoch + policy.max_prove_commit_duration + policy.min_sector_expiration + 500
            )
        return PreCommitSectorParams(
            SEAL_PROOF,
            number,
            sealed or default_sealed(number),
            self.rt.curr_epoch - 1,
            deals,
            expiration,
        )

    def precommit(self, params: PreCommitSectorParams, commd: CID | None = None) -> None:
        rt = self.rt
        first = not self.state().deadline_cron_active
        rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
        self.expect_stats()
        if params.deal_ids:
            request = VerifyDealsForActivationParams(
                (SectorDeals(params.seal_proof, params.expiration, params.deal_ids),)
            )
            rt.expect_send(
                builtin.STORAGE_MARKET_ACTOR_ADDR,
                MarketMethod.VerifyDealsForActivation,
                request,
                0,
                VerifyDealsForActivationReturn((SectorDealData(commd),)),
            )
        rt.expect_validate_caller_addr(*self.control_set())
        if first:
            self.expect_enroll(self.deadline().last())
        rt.call(ACTOR, MinerMethod.PreCommitSector, params)
        rt.verify()

    def precommit_zero_sector(self, number: int) -> tuple[SealedSector, bytes]:
        """Seal a zero sector for real (seal_zero_sector) and pre-commit its CommR; the sector and its
        vanilla seal proof."""
        sealed, proof = seal_zero_sector(number)
        self.precommit(self.precommit_params(number, sealed=sealed_cid(sealed.comm_r)))
        return sealed, proof

    def precommit_of(self, number: int) -> SectorPreCommitOnChainInfo:
        """Sector `number`'s pre-commit, which must be on chain."""
        precommit = PreCommits.load(self.rt.store, self.state().pre_committed_sectors).get(number)
        assert precommit is not None, f"sector {number} is not pre-committed"
        return precommit

    def expect_seal_inputs(self, number: int, proof: bytes, unsealed: CID = ZERO_COMMD) -> SealVerifyInfo:
        """Script what proving pre-committed sector `number` draws: its ticket, its seed and (where the
        pre-commit names none) its CommD, `unsealed`. Returns what the actor then asks verify_seal."""
        rt = self.rt
        precommit = self.precommit_of(number)
        pc = precommit.info
        interactive = precommit.pre_commit_epoch + rt.policy.pre_commit_challenge_delay
        rt.expect_get_randomness_from_tickets(5, pc.seal_rand_epoch, ENTROPY, TICKET)
        rt.expect_get_randomness_from_beacon(6, interactive, ENTROPY, SEED)
        if pc.unsealed_cid is None:
            rt.expect_compute_unsealed_sector_cid(SEAL_PROOF, [], unsealed)
        commd = pc.unsealed_cid or unsealed
        return SealVerifyInfo(
            SEAL_PROOF, SectorID(MINER.id, number), pc.deal_ids, TICKET, SEED, proof, pc.sealed_cid, commd
        )

    def activation(self, number: int, deal_space: int) -> tuple[int, int]:
        """The QA power and initial pledge of pre-committed sector `number` activated now with deal_space
        bytes of deals, at the reward and power estimates the actors answer."""
        duration = self.precommit_of(number).info.expiration - self.rt.curr_epoch
        qa = qa_power_for_weight(SECTOR_SIZE, duration, deal_space * duration, 0)
        pledge = initial_pledge_for_power(
            self.rt.policy, qa, REWARD.this_epoch_baseline_power, REWARD.this_epoch_reward_smoothed,
            self.power.quality_adj_power_smoothed, CIRCULATING,
        )  # fmt: skip
        return qa, pledge

    def prove_commit(
        self,
        number: int,
        proof: bytes = b"seal proof",
        verified: bool = True,
        deal_space: int = 0,
        unsealed: CID = ZERO_COMMD,
        expect_power: bool = True,
    ) -> SectorOnChainInfo | None:
        rt = self.rt
        pc = self.precommit_of(number).info
        rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
        rt.expect_validate_caller_any()
        rt.expect_verify_seal(self.expect_seal_inputs(number, proof, unsealed), verified)
        if not verified:
            rt.call(ACTOR, MinerMethod.ProveCommitSector, ProveCommitSectorParams(number, proof))
            raise AssertionError("an unverified seal proof was accepted")
        self.expect_stats()
        if pc.deal_ids:
            rt.expect_send(
                builtin.STORAGE_MARKET_ACTOR_ADDR,
                MarketMethod.ActivateDeals,
                ActivateDealsParams(pc.deal_ids, pc.expiration),
                0,
                ActivateDealsResult(deal_space),
            )
        qa, pledge = self.activation(number, deal_space)
        if expect_power:
            self.expect_power(PowerPair(SECTOR_SIZE, qa))
            self.expect_pledge(pledge)
        rt.call(ACTOR, MinerMethod.ProveCommitSector, ProveCommitSectorParams(number, proof))
        rt.verify()
        return self.sector(number)

    def commit_sector(self, number: int, **kwargs: Any) -> SectorOnChainInfo:
        """Pre-commit and prove a sector without deals."""
        self.precommit(self.precommit_params(number, **kwargs))
        self.rt.curr_epoch += self.rt.policy.pre_commit_challenge_delay + 1
        sector = self.prove_commit(number)
        assert sector is not None
        return sector

    # -- proving -------------------------------------------------------------------------------------
    def advance_to_open(self, index: int) -> DeadlineInfo:
        """Move the epoch forward to the next opening of deadline `index` (no cron runs)."""
        while True:
            info = self.deadline()
            if info.index == index and info.is_open():
                return info
            self.rt.curr_epoch += 1

    def submit_post(
        self,
        partitions: tuple[PoStPartition, ...],
        proven: list[SectorOnChainInfo],
        proof: bytes = b"post",
        verified: bool = True,
        power_delta: PowerPair | None = None,
        randomness: bytes = POST_RAND,
    ) -> None:
        rt = self.rt
        info = self.deadline()
        rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
        rt.expect_validate_caller_addr(*self.control_set())
        rt.expect_get_randomness_from_tickets(9, rt.curr_epoch - 1, b"", COMMIT_RAND)
        rt.expect_get_randomness_from_beacon(4, info.challenge, ENTROPY, randomness)
        challenged = tuple(SectorInfo(s.seal_proof, s.sector_number, s.sealed_cid) for s in proven)
        proofs = (PoStProof(WPOST_PROOF, proof),)
        rt.expect_verify_post(WindowPoStVerifyInfo(randomness, proofs, challenged, MINER.id), verified)
        if verified and power_delta is not None:
            self.expect_power(power_delta)
        params = SubmitWindowedPoStParams(info.index, partitions, proofs, rt.curr_epoch - 1, COMMIT_RAND)
        rt.call(ACTOR, MinerMethod.SubmitWindowedPoSt, params)
        rt.verify()

    def cron(self, expect: Any = None, reward: FilterEstimate | None = None) -> None:
        """Run the deadline cron at the current epoch; `expect` scripts the sends before re-enrolment."""
        rt = self.rt
        rt.set_caller(builtin.POWER_ACTOR_CODE, builtin.STORAGE_POWER_ACTOR_ADDR)
        rt.expect_validate_caller_addr(builtin.STORAGE_POWER_ACTOR_ADDR)
        if expect is not None:
            expect()
        payload = encode_params(CronEventPayload(CRON_EVENT_PROVING_DEADLINE))
        params = DeferredCronEventParams(
            payload, reward or REWARD.this_epoch_reward_smoothed, self.power.quality_adj_power_smoothed
        )
        rt.call(ACTOR, MinerMethod.OnDeferredCronEvent, params)
        rt.verify()

    def expect_next_enroll(self) -> None:
        self.expect_enroll(self.deadline(self.rt.curr_epoch + 1).last())

    def run_quiet_crons_until(self, epoch: int) -> None:
        """Run each deadline's cron (with nothing to report but re-enrolment) up to `epoch`."""
        while True:
            last = self.deadline().last()
            if last > epoch:
                self.rt.curr_epoch = epoch
                return
            self.rt.curr_epoch = last
            self.cron(self.expect_next_enroll)
            self.rt.curr_epoch = last + 1

    def market_terminate(self, deal_ids: tuple[int, ...]) -> None:
        self.rt.expect_send(
            builtin.STORAGE_MARKET_ACTOR_ADDR,
            MarketMethod.OnMinerSectorsTerminate,
            OnMinerSectorsTerminateParams(self.rt.curr_epoch, deal_ids),
            0,
        )


def seal_zero_sector(number: int) -> tuple[SealedSector, bytes]:
    """A zero 2 KiB sector sealed for real by proofs/ as this miner at the mock's ticket, and its vanilla
    seal proof for the seed the mock draws; pre-committing is left to the caller."""
    sealed = seal(SEAL_PROOF, bytes(SECTOR_SIZE), make_prover_id(MINER.id), number, TICKET)
    return sealed, prove_commit(sealed, SEED).to_bytes()


def real_verifier(info: SealVerifyInfo) -> bool:
    """What the VM's verify_seal syscall answers: the proofs/ verifier on exactly what the actor asks."""
    return verify_seal(
        info.seal_proof,
        make_prover_id(info.sector_id.miner),
        info.sector_id.number,
        info.randomness,
        info.interactive_randomness,
        commitment_of_v1(info.unsealed_cid),
        info.sealed_cid.multihash.digest,
        info.proof,
    )


def fails(h: Harness, code: ExitCode, call: Callable[[], object]) -> ActorError:
    """call() aborts with exit code `code`; the harness's runtime forgets what was left expected."""
    with aborts(code) as err:
        call()
    h.rt.reset()
    return err.value
