"""A scripted storage scenario on the VM alone, with signed messages applied by apply_tipset across
epochs (cron at every epoch, real actors, real proofs):

accounts and transfers; power.CreateMiner; a 2 KiB sector sealed, pre-committed and proven (seal ticket
and interactive seed from the chain's randomness); Window PoSt with a real proof; a missed deadline
(undeclared fault: faulty sector, penalty, lost power) and its recovery; a storage deal (real client
signature, the piece really in the sector so that CommD matches) activated and paid out; a payment
channel voucher conditioned on a piece inclusion proof that the provider redeems on chain; a consensus
fault (two headers at one height signed by the worker) that rewards the reporter and bars the miner;
two sectors pre-committed in one batch and proven by one ProveCommitAggregate.

It runs twice: from a state made with the VM by hand (tests/chain/vm_helpers), and from a genesis built
by node/genesis.py, loaded from its CAR, whose pre-sealed miner produces the blocks and proves its
sectors' Window PoSt on schedule from the sectors directory the genesis wrote.

Every tipset checks that balances add up and that the burnt-funds actor holds exactly the gas burns and
the penalties declared here (tests/e2e/vm_chain.py).
"""

import hashlib
import io
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import pytest

from actors import builtin
from actors.account.types import AccountState
from actors.cron.types import GENESIS_ENTRIES
from actors.dispatch import METHOD_SEND, encode_params
from actors.init.types import ExecParams, ExecReturn, InitMethod
from actors.market.state import MarketState, MarketTables
from actors.market.types import ClientDealProposal, DealProposal, MarketMethod, PublishStorageDealsParams
from actors.market.types import PublishStorageDealsReturn as PublishReturn
from actors.miner.policy import (
    consensus_fault_penalty,
    pledge_penalty_for_continued_fault,
    reward_for_consensus_slash_report,
)
from actors.miner.state import MinerState, PreCommits, Sectors
from actors.miner.types import (
    DeclareFaultsRecoveredParams,
    MinerMethod,
    PieceInclusionExtra,
    PreCommitSectorBatchParams,
    PreCommitSectorParams,
    ProveCommitAggregateParams,
    ProveCommitSectorParams,
    ReportConsensusFaultParams,
    SectorDeclaration,
    SubmitWindowedPoStParams,
    encode_aggregate_proof,
)
from actors.paych.types import ConstructorParams as PaychConstructorParams
from actors.paych.types import (
    ModVerifyParams,
    PaychMethod,
    PaychState,
    SignedVoucher,
    UpdateChannelStateParams,
)
from actors.power.state import ClaimsTable, PowerState
from actors.power.types import CreateMinerParams, CreateMinerReturn, PowerMethod
from actors.reward.state import RewardState
from chain.crypto.keys import KeyType
from chain.crypto.randomness import DomainSeparationTag
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.params import DEVNET
from chain.state.tree import StateTree
from chain.store.blockstore import MemoryBlockstore
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.bitfield import BitField
from chain.types.block import BlockHeader, PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.message import sign_message
from chain.types.sector import PieceInfo
from chain.vm.exitcode import ExitCode
from chain.vm.gas import PRICES
from chain.vm.invoker import DEFAULT_INVOKER
from chain.vm.syscalls import sealed_cid
from chain.vm.vm import VM
from node.genesis import GenesisRandomness, build_genesis, genesis_car_bytes, load_genesis_car
from node.genesis_template import REWARD_ACTOR_BALANCE, parse_template
from node.preseal import read_presealed, write_presealed
from proofs import commp, fr32, merkle, pip, seal
from proofs.post import FaultySectors, generate_window_post
from proofs.registered import make_prover_id
from tests.chain.vm_helpers import install_singleton, make_world
from tests.e2e.vm_chain import BASE_FEE, Chain, Party, Prover, chain_randomness, gas_paid
from tests.mining.vm_node import presealed_miner_entry

FIL: Final = 10**18
SEAL_PROOF: Final = 5  # StackedDrg2KiBV1_1
POST_PROOF: Final = 10  # StackedDrgWindow2KiBV1_1
SECTOR_SIZE: Final = 2048
MINER_FUNDS: Final = 2_000 * FIL
POLICY: Final = DEVNET

CLIENT = Party.derive(KeyType.SECP256K1, "client")
OWNER = Party.derive(KeyType.SECP256K1, "owner")
WORKER = Party.derive(KeyType.BLS, "worker")
REPORTER = Party.derive(KeyType.SECP256K1, "reporter")
BANK = Party.derive(KeyType.SECP256K1, "bank")


@dataclass
class Start:
    chain: Chain
    bank: Party
    genesis: Prover | None = None  # the genesis miner, proving its pre-sealed sectors


# -- the two starting points -------------------------------------------------------------------------


def vm_start() -> Start:
    """Singletons installed through the VM by hand (real reward, power and market), funded accounts."""
    world = make_world(
        accounts=2,
        balance=100_000 * FIL,
        invoker=DEFAULT_INVOKER,
        cron_entries=GENESIS_ENTRIES,
        reward_params=dagcbor.encode(encode_bigint(0)),
        reward_balance=REWARD_ACTOR_BALANCE,
    )
    vm = world.vm(epoch=0)
    install_singleton(vm, builtin.STORAGE_POWER_ACTOR_ADDR, builtin.POWER_ACTOR_CODE)
    install_singleton(vm, builtin.STORAGE_MARKET_ACTOR_ADDR, builtin.MARKET_ACTOR_CODE)
    world.tree.flush()
    chain = Chain(
        world.store,
        world.tree,
        POLICY,
        chain_randomness(None, b"scenario"),
        epoch=0,
        producer=world.ids[1],  # an account: the block rewards are burnt
    )
    return Start(chain, Party(world.keys[0]))


def genesis_template() -> dict[str, Any]:
    return {
        "NetworkName": "scenario",
        "Timestamp": 1_700_000_000,
        "Accounts": [
            {"Type": "account", "Balance": str(100_000 * FIL), "Meta": {"Owner": BANK.address.to_string("t")}}
        ],
        "Miners": [presealed_miner_entry("scenario-genesis-miner", 2)],
    }


def genesis_start(sectors_dir: Path) -> Start:
    """A genesis built by node/genesis.py, imported from its CAR into a fresh store; its miner produces
    the blocks and proves from the sectors directory the genesis wrote."""
    template = parse_template(genesis_template())
    built = build_genesis(template)
    (miner,) = built.miners
    write_presealed(sectors_dir, miner, "t")
    store = MemoryBlockstore()
    header = load_genesis_car(store, io.BytesIO(genesis_car_bytes(built)))
    tree = StateTree.load(store, header.parent_state_root)
    on_disk = read_presealed(sectors_dir, miner.id_address, "t")
    prover = Prover(
        miner.id_address,
        Party(on_disk.worker_key),
        POST_PROOF,
        {s.number: s.proving_sector() for s in on_disk.sectors},
    )
    randomness = chain_randomness(GenesisRandomness.of(header), b"scenario")
    chain = Chain(store, tree, POLICY, randomness, epoch=0, producer=miner.id_address, provers=[prover])
    return Start(chain, BANK, prover)


# -- helpers -------------------------------------------------------------------------------------------


def claim_of(chain: Chain, miner: Address) -> tuple[int, int]:
    power = chain.state(builtin.STORAGE_POWER_ACTOR_ADDR, PowerState)
    claim = ClaimsTable.load(chain.store, power.claims).get(miner)
    assert claim is not None, f"{miner} has no claim"
    return claim.raw_byte_power, claim.quality_adj_power


def power_state(chain: Chain) -> PowerState:
    state: PowerState = chain.state(builtin.STORAGE_POWER_ACTOR_ADDR, PowerState)
    return state


def miner_state(chain: Chain, miner: Address) -> MinerState:
    state: MinerState = chain.state(miner, MinerState)
    return state


def pledged_by_miners(chain: Chain) -> int:
    """What the power actor's total pledge must be: every miner's initial pledge and locked rewards."""
    total = 0
    for address, actor in chain.tree.actors():
        if actor.code == builtin.MINER_ACTOR_CODE:
            state = miner_state(chain, address)
            total += state.initial_pledge + state.locked_funds
    return total


def until_open(chain: Chain, miner: Address, index: int) -> None:
    """Advance until deadline `index` of miner is open for the next tipset."""
    for _ in range(POLICY.wpost_proving_period + 1):
        info = chain.deadline_info(miner)
        if info.index == index and info.is_open():
            return
        chain.tipset()
    raise AssertionError(f"deadline {index} never opened")


def seal_and_commit(
    chain: Chain, miner: Address, number: int, data: bytes, deal_ids: tuple[int, ...], expiration: int
) -> seal.SealedSector:
    """Seal data for real, pre-commit it, wait for the interactive seed and prove it."""
    entropy = dagcbor.encode(miner.to_cbor())
    rand_epoch = chain.epoch  # before the pre-commit's epoch, as the actor requires
    ticket = chain.draw_chain(DomainSeparationTag.SealRandomness, rand_epoch, entropy)
    sealed = seal.seal(SEAL_PROOF, data, make_prover_id(miner.id), number, ticket)
    params = PreCommitSectorParams(
        SEAL_PROOF, number, sealed_cid(sealed.comm_r), rand_epoch, deal_ids, expiration
    )
    before = chain.balance(miner)
    chain.ok(OWNER, miner, MinerMethod.PreCommitSector, params)
    precommit_epoch = chain.epoch
    precommit = PreCommits.load(chain.store, miner_state(chain, miner).pre_committed_sectors).get(number)
    assert precommit is not None and precommit.pre_commit_epoch == precommit_epoch
    # With deals, the CommD the market computed from their pieces (through the VM's syscall) is the
    # sealed data's; without, the actor uses the zero sector's CommD at ProveCommit.
    assert precommit.info.unsealed_cid == (piece_cid_v1(sealed.comm_d) if deal_ids else None)
    assert miner_state(chain, miner).pre_commit_deposits >= precommit.pre_commit_deposit > 0
    assert chain.balance(miner) == before  # the deposit is locked in the miner, not paid

    seed_epoch = precommit_epoch + POLICY.pre_commit_challenge_delay
    chain.advance_to(seed_epoch)
    seed = chain.draw_beacon(DomainSeparationTag.InteractiveSealChallengeSeed, seed_epoch, entropy)
    # A proof for another seed is refused by the actor's real verification.
    wrong = seal.prove_commit(sealed, bytes(32)).to_bytes()
    ret = chain.apply(OWNER, miner, MinerMethod.ProveCommitSector, ProveCommitSectorParams(number, wrong))
    assert ret.exit_code == ExitCode.ErrIllegalArgument, ret.error
    proof = seal.prove_commit(sealed, seed).to_bytes()
    chain.ok(OWNER, miner, MinerMethod.ProveCommitSector, ProveCommitSectorParams(number, proof))
    sector = Sectors.load(chain.store, miner_state(chain, miner).sectors).get(number)
    assert sector is not None and sector.activation == chain.epoch and sector.deal_ids == deal_ids
    assert sector.sealed_cid == sealed_cid(sealed.comm_r)
    return sealed


# -- the scenario --------------------------------------------------------------------------------------


def run_scenario(start: Start) -> None:
    chain = start.chain
    bank = start.bank

    # 1. Accounts are created by transfers, and transfer to each other.
    funds = {CLIENT: 1_000 * FIL, OWNER: 5_000 * FIL, WORKER: 100 * FIL, REPORTER: 10 * FIL}
    bank_before = chain.balance(bank.address)
    result = chain.tipset(
        [(bank, chain.message(bank, p.address, METHOD_SEND, value=v)) for p, v in funds.items()]
    )
    assert [ret.exit_code for _, ret in result.applied] == [0, 0, 0, 0]
    spent = sum(gas_paid(ret) for _, ret in result.applied)
    assert chain.balance(bank.address) == bank_before - sum(funds.values()) - spent
    for party, amount in funds.items():
        actor = chain.tree.get_actor(party.address)
        assert actor is not None and actor.code == builtin.ACCOUNT_ACTOR_CODE and actor.balance == amount
        assert chain.state(party.address, AccountState).address == party.address
    ret = chain.apply(CLIENT, REPORTER.address, METHOD_SEND, value=FIL)
    assert ret.exit_code == 0
    assert chain.balance(CLIENT.address) == funds[CLIENT] - FIL - gas_paid(ret)
    assert chain.balance(REPORTER.address) == funds[REPORTER] + FIL

    # 2. The owner creates a miner through the power actor.
    miners_before = power_state(chain).miner_count
    owner_before = chain.balance(OWNER.address)
    ret = chain.apply(
        OWNER,
        builtin.STORAGE_POWER_ACTOR_ADDR,
        PowerMethod.CreateMiner,
        CreateMinerParams(OWNER.address, WORKER.address, POST_PROOF, b"", ()),
        value=MINER_FUNDS,
    )
    assert ret.exit_code == 0, ret.error
    created = CreateMinerReturn.from_cbor(dagcbor.decode(ret.receipt.return_data))
    miner = created.id_address
    assert chain.id_of(created.robust_address) == miner
    assert chain.balance(miner) == MINER_FUNDS
    assert chain.balance(OWNER.address) == owner_before - MINER_FUNDS - gas_paid(ret)
    assert power_state(chain).miner_count == miners_before + 1
    assert claim_of(chain, miner) == (0, 0)
    info = miner_state(chain, miner).get_info(chain.store)
    assert (info.owner, info.worker) == (chain.id_of(OWNER.address), chain.id_of(WORKER.address))
    assert (info.sector_size, info.window_post_proof_type) == (SECTOR_SIZE, POST_PROOF)

    # 3. A committed-capacity sector, sealed and proven for real, gains power.
    total_before = power_state(chain).total_bytes_committed
    sealed0 = seal_and_commit(chain, miner, 0, bytes(SECTOR_SIZE), (), chain.epoch + 1_000)
    assert claim_of(chain, miner) == (SECTOR_SIZE, SECTOR_SIZE)
    power = power_state(chain)
    assert power.total_bytes_committed == total_before + SECTOR_SIZE
    state = miner_state(chain, miner)
    assert state.pre_commit_deposits == 0 and state.initial_pledge > 0
    assert power.total_pledge_collateral == pledged_by_miners(chain)
    assert power.miner_meets_consensus_minimum(chain.store, POLICY, miner)

    # 4. Window PoSt with a real proof at the sector's deadline; the deadline closes without penalty.
    prover = Prover(miner, WORKER, POST_PROOF, {0: sealed0.proving_sector()}, auto=False)
    chain.provers.append(prover)
    deadline0, partition0 = chain.locate(miner, 0)
    until_open(chain, miner, deadline0)
    post = chain.post_message(prover, chain.epoch + 1)
    assert post is not None
    # A proof of other sectors' data (another replica under the same CommR claim) is refused.
    forged_prover = replace(
        prover, sectors={0: replace(sealed0.proving_sector(), replica=bytes(SECTOR_SIZE))}
    )
    with pytest.raises(FaultySectors):
        chain.post_message(forged_prover, chain.epoch + 1)
    post_params = SubmitWindowedPoStParams.from_cbor(dagcbor.decode(post.params))
    forged_proof = generate_window_post(POST_PROOF, bytes(32), [sealed0.proving_sector()]).to_bytes()
    forged_post = replace(post_params, proofs=(PoStProof(POST_PROOF, forged_proof),))
    ret = chain.apply(WORKER, miner, MinerMethod.SubmitWindowedPoSt, forged_post)
    assert ret.exit_code == ExitCode.ErrIllegalArgument and "invalid post" in (ret.error or "")
    post = chain.post_message(prover, chain.epoch + 1)
    assert post is not None
    worker_before = chain.balance(WORKER.address)
    result = chain.tipset([(WORKER, post)])
    ((_, ret),) = result.applied
    assert ret.exit_code == 0, ret.error
    assert chain.balance(WORKER.address) == worker_before - gas_paid(ret)
    assert partition0 in chain.deadline(miner, deadline0).partitions_posted
    close = chain.deadline_info(miner).close
    balance_before = chain.balance(miner)
    chain.advance_to(close)
    assert claim_of(chain, miner) == (SECTOR_SIZE, SECTOR_SIZE)
    assert chain.balance(miner) == balance_before
    assert not chain.deadline(miner, deadline0).partitions_posted  # reset for the next period

    # 5. The next period's PoSt is missed: at the deadline's end the sector is faulty, its power is
    # gone and the continued-fault fee is burnt from the miner's balance.
    until_open(chain, miner, deadline0)
    last = chain.deadline_info(miner).last()
    chain.advance_to(last - 1)
    reward = chain.state(builtin.REWARD_ACTOR_ADDR, RewardState)
    fee = pledge_penalty_for_continued_fault(
        POLICY,
        reward.this_epoch_reward_smoothed,
        power_state(chain).this_epoch_qa_power_smoothed,
        SECTOR_SIZE,
    )
    assert fee > 0
    chain.expect_burn(fee)
    balance_before = chain.balance(miner)
    network_before = power_state(chain).total_bytes_committed
    chain.tipset()  # the deadline's last epoch: its cron finds the partition unproven
    partition = chain.deadline(miner, deadline0).load_partitions(chain.store).must_get(partition0)
    assert list(partition.faults) == [0] and partition.faulty_power.raw == SECTOR_SIZE
    assert claim_of(chain, miner) == (0, 0)
    assert power_state(chain).total_bytes_committed == network_before - SECTOR_SIZE
    assert chain.balance(miner) == balance_before - fee

    # 6. Recovery: declared before the next instance's cutoff, then proven: the power is back.
    chain.ok(
        OWNER,
        miner,
        MinerMethod.DeclareFaultsRecovered,
        DeclareFaultsRecoveredParams((SectorDeclaration(deadline0, partition0, BitField.from_bits([0])),)),
    )
    partition = chain.deadline(miner, deadline0).load_partitions(chain.store).must_get(partition0)
    assert list(partition.recoveries) == [0] and claim_of(chain, miner) == (0, 0)
    until_open(chain, miner, deadline0)
    post = chain.post_message(prover, chain.epoch + 1)
    assert post is not None
    result = chain.tipset([(WORKER, post)])
    assert all(ret.exit_code == 0 for _, ret in result.applied)
    partition = chain.deadline(miner, deadline0).load_partitions(chain.store).must_get(partition0)
    assert not partition.faults and not partition.recoveries
    assert claim_of(chain, miner) == (SECTOR_SIZE, SECTOR_SIZE)
    prover.auto = True  # from now on every deadline is proven on time
    chain.advance_to(chain.deadline_info(miner).close)

    # 7. A storage deal: published with the client's real signature, its piece sealed into sector 1
    # (the CommD the market computes is the sealed data's), activated at ProveCommit, paid out by cron.
    payload = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(32))[:1016]
    piece = commp.commp_of_bytes(payload)
    assert piece.padded_size == 1024
    piece_cid = piece_cid_v1(piece.commitment)
    sector_data = fr32.pad(payload) + bytes(SECTOR_SIZE - 1024)
    assert merkle.root_of(sector_data) == commp.comm_d([piece.piece_info()], SECTOR_SIZE)
    start_epoch = chain.epoch + 20
    deal = DealProposal(
        piece_cid,
        1024,
        False,
        CLIENT.address,
        miner,
        "scenario deal",
        start_epoch,
        start_epoch + 40,
        10**12,
        FIL // 100,
        0,
    )
    chain.ok(
        CLIENT, builtin.STORAGE_MARKET_ACTOR_ADDR, MarketMethod.AddBalance, CLIENT.address, value=2 * FIL
    )
    chain.ok(OWNER, builtin.STORAGE_MARKET_ACTOR_ADDR, MarketMethod.AddBalance, miner, value=FIL)
    signed = ClientDealProposal(deal, CLIENT.key.sign(deal.signing_bytes()))
    forged = ClientDealProposal(replace(deal, label="forged"), REPORTER.key.sign(deal.signing_bytes()))
    published = PublishReturn.from_cbor(
        chain.ok(
            WORKER,
            builtin.STORAGE_MARKET_ACTOR_ADDR,
            MarketMethod.PublishStorageDeals,
            PublishStorageDealsParams((forged, signed)),
        )
    )
    assert list(published.valid_deals) == [1] and len(published.ids) == 1
    (deal_id,) = published.ids
    tables = MarketTables(chain.store, chain.state(builtin.STORAGE_MARKET_ACTOR_ADDR, MarketState))
    client_id = chain.id_of(CLIENT.address)
    assert tables.locked.get(client_id) == deal.total_storage_fee
    assert tables.locked.get(miner) == deal.provider_collateral
    sealed1 = seal_and_commit(chain, miner, 1, sector_data, (deal_id,), chain.epoch + 1_000)
    prover.sectors[1] = sealed1.proving_sector()
    tables = MarketTables(chain.store, chain.state(builtin.STORAGE_MARKET_ACTOR_ADDR, MarketState))
    deal_state = tables.deal_state(deal_id)
    assert deal_state is not None and deal_state.sector_start_epoch == chain.epoch
    assert claim_of(chain, miner) == (2 * SECTOR_SIZE, 2 * SECTOR_SIZE)
    provider_escrow = tables.escrow.get(miner)
    client_escrow = tables.escrow.get(client_id)

    # 8. A payment channel voucher whose condition is the piece being in sector 1: the provider's owner
    # redeems it on chain with a real piece inclusion proof against the sector's CommD.
    created_ch = ExecReturn.from_cbor(
        chain.ok(
            CLIENT,
            builtin.INIT_ACTOR_ADDR,
            InitMethod.Exec,
            ExecParams(
                builtin.PAYCH_ACTOR_CODE, encode_params(PaychConstructorParams(CLIENT.address, OWNER.address))
            ),
            value=10 * FIL,
        )
    )
    channel = created_ch.id_address
    condition = ModVerifyParams(
        miner,
        MinerMethod.VerifyPieceInclusion,
        dagcbor.encode(PieceInclusionExtra(1, PieceInfo(1024, piece_cid)).to_cbor()),
    )
    voucher = SignedVoucher(created_ch.robust_address, 0, 0, b"", condition, 0, 1, 3 * FIL, 0)
    voucher = replace(voucher, signature=CLIENT.key.sign(voucher.signing_bytes()))
    proof = pip.prove_piece_inclusion([piece.piece_info()], SECTOR_SIZE, 0).to_bytes()
    # The same piece claimed at the other half of the sector does not open against its CommD.
    elsewhere = pip.prove_piece_inclusion(
        [commp.PieceInfo(1024, commp.zero_piece_commitment(1024)), piece.piece_info()], SECTOR_SIZE, 1
    )
    ret = chain.apply(
        OWNER,
        channel,
        PaychMethod.UpdateChannelState,
        UpdateChannelStateParams(voucher, b"", elsewhere.to_bytes()),
    )
    assert ret.exit_code == ExitCode.ErrIllegalArgument, ret.error
    assert chain.state(channel, PaychState).to_send == 0
    chain.ok(OWNER, channel, PaychMethod.UpdateChannelState, UpdateChannelStateParams(voucher, b"", proof))
    assert chain.state(channel, PaychState).to_send == 3 * FIL
    chain.ok(OWNER, channel, PaychMethod.Settle)
    chain.advance_to(chain.state(channel, PaychState).settling_at)
    owner_before, client_before = chain.balance(OWNER.address), chain.balance(CLIENT.address)
    ret = chain.apply(OWNER, channel, PaychMethod.Collect)
    assert ret.exit_code == 0, ret.error
    assert chain.tree.get_actor(channel) is None
    assert chain.balance(OWNER.address) == owner_before + 3 * FIL - gas_paid(ret)
    assert chain.balance(CLIENT.address) == client_before + 7 * FIL

    # The deal is paid by the market's cron up to its end; then its collateral unlocks.
    chain.advance_to(deal.end_epoch + POLICY.market_deal_updates_interval)
    tables = MarketTables(chain.store, chain.state(builtin.STORAGE_MARKET_ACTOR_ADDR, MarketState))
    assert tables.proposal(deal_id) is None
    assert tables.escrow.get(miner) == provider_escrow + deal.total_storage_fee
    assert tables.escrow.get(client_id) == client_escrow - deal.total_storage_fee
    assert tables.locked.get(miner) == 0 and tables.locked.get(client_id) == 0

    # 9. A consensus fault: two different headers at one height, both signed by the worker's key.
    def header(timestamp: int) -> BlockHeader:
        unsigned = BlockHeader(
            miner=miner,
            ticket=Ticket(bytes(32)),
            election_proof=ElectionProof(1, bytes(96)),
            beacon_entries=(BeaconEntry(chain.epoch, bytes(32)),),
            parents=(CID.hash_of(b"parent"),),
            parent_weight=1,
            height=chain.epoch,
            parent_state_root=chain.tree.flush(),
            parent_message_receipts=CID.hash_of(b"receipts"),
            messages=CID.hash_of(b"messages"),
            bls_aggregate=None,
            timestamp=timestamp,
            block_sig=None,
            parent_base_fee=100,
        )
        return replace(unsigned, block_sig=WORKER.key.sign(unsigned.signing_bytes()))

    first, second = header(1), header(2)
    estimate = chain.state(builtin.REWARD_ACTOR_ADDR, RewardState).this_epoch_reward_smoothed.estimate()
    penalty = consensus_fault_penalty(POLICY, estimate)
    reporter_reward = min(penalty, reward_for_consensus_slash_report(POLICY, estimate))
    assert 0 < reporter_reward < penalty
    chain.expect_burn(penalty - reporter_reward)
    reporter_before, miner_before = chain.balance(REPORTER.address), chain.balance(miner)
    report = ReportConsensusFaultParams(first.to_bytes(), second.to_bytes(), b"")
    ret = chain.apply(REPORTER, miner, MinerMethod.ReportConsensusFault, report)
    assert ret.exit_code == 0, ret.error
    assert chain.balance(REPORTER.address) == reporter_before + reporter_reward - gas_paid(ret)
    assert chain.balance(miner) == miner_before - penalty
    info = miner_state(chain, miner).get_info(chain.store)
    assert info.consensus_fault_elapsed == chain.epoch + POLICY.consensus_fault_ineligibility_duration
    # Barred: no new sectors, and the same fault cannot be reported twice.
    barred = PreCommitSectorParams(
        SEAL_PROOF, 2, sealed_cid(sealed0.comm_r), chain.epoch, (), chain.epoch + 1_000
    )
    ret = chain.apply(OWNER, miner, MinerMethod.PreCommitSector, barred)
    assert ret.exit_code == ExitCode.ErrForbidden, ret.error
    ret = chain.apply(REPORTER, miner, MinerMethod.ReportConsensusFault, report)
    assert ret.exit_code == ExitCode.ErrForbidden, ret.error
    # Headers not signed by the worker prove nothing.
    forged_header = replace(second, block_sig=REPORTER.key.sign(second.signing_bytes()))
    bad_report = ReportConsensusFaultParams(first.to_bytes(), forged_header.to_bytes(), b"")
    ret = chain.apply(REPORTER, miner, MinerMethod.ReportConsensusFault, bad_report)
    assert ret.exit_code == ExitCode.ErrIllegalArgument, ret.error

    # Barred or not, the miner keeps proving both sectors on schedule for another proving period.
    chain.advance_to(chain.epoch + POLICY.wpost_proving_period)
    # Cron ran at every epoch: the power actor moved the reward actor on each time.
    assert chain.state(builtin.REWARD_ACTOR_ADDR, RewardState).epoch == chain.epoch + 1
    assert [index for _, index in prover.posted] == [deadline0]
    partition = chain.deadline(miner, deadline0).load_partitions(chain.store).must_get(partition0)
    assert set(partition.sectors) == {0, 1} and not partition.faults
    assert claim_of(chain, miner) == (2 * SECTOR_SIZE, 2 * SECTOR_SIZE)

    # 10. The ban over, two sectors are pre-committed in one batch and proven by one
    # ProveCommitAggregate (their vanilla seal proofs, in sector order); both gain power and are then
    # proven by Window PoSt like the others.
    assert chain.epoch > info.consensus_fault_elapsed
    aggregated = seal_and_aggregate(chain, miner, (2, 3), chain.epoch + 1_000)
    assert claim_of(chain, miner) == (4 * SECTOR_SIZE, 4 * SECTOR_SIZE)
    assert power_state(chain).total_pledge_collateral == pledged_by_miners(chain)
    for sealed in aggregated:
        prover.sectors[sealed.sector_number] = sealed.proving_sector()
    new_deadlines = {chain.locate(miner, n)[0] for n in (2, 3)}
    posted_before = len(prover.posted)
    chain.advance_to(chain.epoch + POLICY.wpost_proving_period)
    assert new_deadlines <= {index for _, index in prover.posted[posted_before:]}
    for number in (2, 3):
        index, part = chain.locate(miner, number)
        assert not chain.deadline(miner, index).load_partitions(chain.store).must_get(part).faults
    assert claim_of(chain, miner) == (4 * SECTOR_SIZE, 4 * SECTOR_SIZE)


def seal_and_aggregate(
    chain: Chain, miner: Address, numbers: tuple[int, ...], expiration: int
) -> list[seal.SealedSector]:
    """Seal committed-capacity sectors for real, pre-commit them in one PreCommitSectorBatch and prove
    them all with one ProveCommitAggregate."""
    entropy = dagcbor.encode(miner.to_cbor())
    rand_epoch = chain.epoch
    ticket = chain.draw_chain(DomainSeparationTag.SealRandomness, rand_epoch, entropy)
    sealed = [seal.seal(SEAL_PROOF, bytes(SECTOR_SIZE), make_prover_id(miner.id), n, ticket) for n in numbers]
    batch = PreCommitSectorBatchParams(
        tuple(
            PreCommitSectorParams(
                SEAL_PROOF, s.sector_number, sealed_cid(s.comm_r), rand_epoch, (), expiration
            )
            for s in sealed
        )
    )
    chain.ok(OWNER, miner, MinerMethod.PreCommitSectorBatch, batch)
    seed_epoch = chain.epoch + POLICY.pre_commit_challenge_delay
    chain.advance_to(seed_epoch)
    seed = chain.draw_beacon(DomainSeparationTag.InteractiveSealChallengeSeed, seed_epoch, entropy)
    proofs = [seal.prove_commit(s, seed).to_bytes() for s in sealed]
    sector_numbers = BitField.from_bits(numbers)
    # The proofs out of sector order are each checked against the wrong sector, and refused.
    swapped = ProveCommitAggregateParams(sector_numbers, encode_aggregate_proof(proofs[::-1]))
    ret = chain.apply(OWNER, miner, MinerMethod.ProveCommitAggregate, swapped)
    assert ret.exit_code == ExitCode.ErrIllegalArgument, ret.error
    claim_before = claim_of(chain, miner)
    params = ProveCommitAggregateParams(sector_numbers, encode_aggregate_proof(proofs))
    # Each proof is verified inline, so the message pays OnVerifySeal once per sector.
    assert seal_verifications_paid(chain, OWNER, miner, params) == len(numbers)
    chain.ok(OWNER, miner, MinerMethod.ProveCommitAggregate, params)
    assert claim_of(chain, miner) == tuple(c + len(numbers) * SECTOR_SIZE for c in claim_before)
    state = miner_state(chain, miner)
    assert state.pre_commit_deposits == 0
    sectors = Sectors.load(chain.store, state.sectors)
    for s in sealed:
        sector = sectors.get(s.sector_number)
        assert sector is not None and sector.activation == chain.epoch
        assert sector.sealed_cid == sealed_cid(s.comm_r)
    return sealed


def seal_verifications_paid(chain: Chain, sender: Party, miner: Address, params: Any) -> int:
    """How many seal verifications a ProveCommitAggregate pays for: its gas used (applied on copies of
    the state at the next epoch) under two price lists that differ only by one gas in OnVerifySeal."""
    root = chain.tree.flush()
    signed = sign_message(chain.message(sender, miner, MinerMethod.ProveCommitAggregate, params), sender.key)
    used = []
    for extra in (0, 1):
        vm = VM(
            StateTree.load(chain.store, root),
            epoch=chain.epoch + 1,
            base_fee=BASE_FEE,
            randomness=chain.randomness,
            policy=chain.policy,
            prices=replace(PRICES, verify_seal_base=PRICES.verify_seal_base + extra),
        )
        ret = vm.apply_message(signed)
        assert ret.exit_code == ExitCode.Ok, ret.error
        used.append(ret.receipt.gas_used)
    return used[1] - used[0]


def check_genesis_miner(start: Start) -> None:
    """The pre-sealed miner proved every deadline holding its sectors, on schedule, and never faulted."""
    prover = start.genesis
    assert prover is not None
    chain = start.chain
    miner = prover.miner
    deadlines = {chain.locate(miner, n)[0] for n in prover.sectors}
    periods = chain.epoch // POLICY.wpost_proving_period
    assert len(prover.posted) >= periods * len(deadlines)
    for epoch, index in prover.posted:
        assert index in deadlines
        info = chain.deadline_info(miner, epoch)
        assert info.open <= epoch < info.close
    for index in deadlines:
        for _, partition in chain.deadline(miner, index).load_partitions(chain.store).items():
            assert not partition.faults
    assert claim_of(chain, miner) == (2 * SECTOR_SIZE, 2 * SECTOR_SIZE)
    state = miner_state(chain, miner)
    assert state.locked_funds > 0  # block rewards, vesting
    assert state.fee_debt == 0


def test_scenario_on_a_state_made_with_the_vm() -> None:
    start = vm_start()
    began = time.perf_counter()
    run_scenario(start)
    print(
        json.dumps({"scenario": "vm", "tipsets": start.chain.tipsets, "seconds": time.perf_counter() - began})
    )


def test_scenario_from_a_genesis(tmp_path: Path) -> None:
    start = genesis_start(tmp_path / "sectors")
    began = time.perf_counter()
    run_scenario(start)
    check_genesis_miner(start)
    print(
        json.dumps(
            {"scenario": "genesis", "tipsets": start.chain.tipsets, "seconds": time.perf_counter() - began}
        )
    )


def test_a_genesis_miner_alone_proves_on_schedule(tmp_path: Path) -> None:
    """Only the genesis miner, through two proving periods."""
    start = genesis_start(tmp_path / "sectors")
    start.chain.advance_to(2 * POLICY.wpost_proving_period + 1)
    check_genesis_miner(start)
