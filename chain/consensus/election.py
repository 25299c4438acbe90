"""Who may produce a block at an epoch, and the VRFs that prove it (Lotus miner.mineOne,
stmgr.MinerGetBaseInfo, stmgr.MinerEligibleToMine, gen.ComputeVRF, gen.IsRoundWinner, and the ticket
and election checks of filcns.ValidateBlock).

Randomness for a block at epoch h on a parent tipset P comes from the last beacon entry the block
carries (or, carrying none, the last one below it), drawn with the miner's address (CBOR) as entropy:
- ticket:         tag TicketProduction at h - 1 (TicketRandomnessLookback), entropy also followed by
                  P's smallest ticket's VRF proof (as after Lotus's Smoke upgrade, which devnets start
                  with);
- election proof: tag ElectionProofProduction at h;
- Winning PoSt:   tag WinningPoStChallengeSeed at h.
A VRF output is the worker key's BLS signature over the drawn bytes, checked as a signature.

Power and worker come from the lookback state (stmgr.lookback: the state `finality` epochs back).
Eligibility, as MinerEligibleToMine: the miner meets the consensus minimum in the lookback tipset's
parent state (or, while fewer than consensus_miner_min_miners miners do, has any power), and in P's
parent state has a positive claim, no fee debt and no consensus fault still barring it.
"""

from dataclasses import dataclass
from typing import Final

from actors import builtin
from actors.miner.state import SectorOnChainInfo
from chain.consensus.beacon import RandomBeacon, beacon_entries_for_block
from chain.consensus.expected import compute_win_count
from chain.crypto.keys import PrivateKey
from chain.crypto.randomness import DomainSeparationTag, draw_randomness
from chain.crypto.signature import Signature, SigType, verify
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.state.tree import StateTree
from chain.stmgr.actors import ActorNotFound, StateQueryError, resolve_to_key
from chain.stmgr.manager import StateManager
from chain.stmgr.miners import miner_claim, miner_info, miner_power, miner_state, sectors_for_winning_post
from chain.stmgr.randomness import latest_beacon_entry
from chain.store.blockcache import cache_of
from chain.types.address import Address, Protocol
from chain.types.beacon import BeaconEntry
from chain.types.election import ElectionProof, Ticket
from chain.types.tipset import TipSet

TICKET_RANDOMNESS_LOOKBACK: Final = 1  # lotus build TicketRandomnessLookback


class InvalidWorker(ValueError):
    """The miner's worker cannot sign VRFs (not a BLS key), or the key given is not the worker's."""


def miner_entropy(miner: Address) -> bytes:
    """The CBOR encoding of the miner's address: the entropy of every election draw."""
    return dagcbor.encode(miner.to_cbor())


def ticket_randomness(
    beacon_base: BeaconEntry, miner: Address, epoch: int, parent_min_ticket: Ticket
) -> bytes:
    entropy = miner_entropy(miner) + parent_min_ticket.vrf_proof
    tag = DomainSeparationTag.TicketProduction
    return draw_randomness(beacon_base.data, tag, epoch - TICKET_RANDOMNESS_LOOKBACK, entropy)


def election_randomness(beacon_base: BeaconEntry, miner: Address, epoch: int) -> bytes:
    tag = DomainSeparationTag.ElectionProofProduction
    return draw_randomness(beacon_base.data, tag, epoch, miner_entropy(miner))


def winning_post_randomness(beacon_base: BeaconEntry, miner: Address, epoch: int) -> bytes:
    tag = DomainSeparationTag.WinningPoStChallengeSeed
    return draw_randomness(beacon_base.data, tag, epoch, miner_entropy(miner))


def compute_vrf(worker_key: PrivateKey, data: bytes) -> bytes:
    """The VRF output of the worker key over data: its BLS signature (Lotus gen.ComputeVRF)."""
    signature = worker_key.sign(data)
    if signature.type != SigType.BLS:
        raise InvalidWorker("the miner's worker key is not a BLS key")
    return signature.data


def verify_vrf(worker: Address, data: bytes, proof: bytes) -> None:
    """Raise SignatureError unless proof is worker's VRF output over data (Lotus VerifyVRF)."""
    verify(Signature(SigType.BLS, proof), worker, data)


def win_count(vrf_proof: bytes, miner_power: int, network_power: int) -> int:
    """How many blocks an election VRF earns (no power in the network: none)."""
    if network_power <= 0 or miner_power <= 0:
        return 0
    return compute_win_count(vrf_proof, miner_power, network_power)


def worker_key_address(tree: StateTree, miner: Address) -> Address:
    """The miner's worker as a key address in that state (Lotus GetMinerWorkerRaw); InvalidWorker if it
    is not a BLS key (VRFs and block signatures need one). Remembered per (state root, miner) in the
    store's block cache: the blocks of a tipset, and checks computed ahead, ask again."""
    root = tree.root
    cache = cache_of(tree.store) if root is not None else None
    worker = None if cache is None or root is None else cache.derived(("worker-key", miner), root)
    if not isinstance(worker, Address):
        worker = resolve_to_key(tree, miner_info(tree, miner).worker)
        if cache is not None and root is not None:
            cache.remember(("worker-key", miner), root, worker)
    if worker.protocol != Protocol.BLS:
        raise InvalidWorker(f"the worker {worker} of miner {miner} is not a BLS key address")
    return worker


def is_miner(tree: StateTree, miner: Address) -> bool:
    """Whether the address is a storage miner with a power claim (Lotus minerIsValid, plus the code)."""
    actor = tree.get_actor(miner)
    if actor is None or actor.code != builtin.MINER_ACTOR_CODE:
        return False
    try:
        return miner_claim(tree, miner) is not None
    except (ActorNotFound, StateQueryError):
        return False


def ineligibility(
    sm: StateManager, miner: Address, base: TipSet, lookback: TipSet, base_tree: StateTree | None = None
) -> str | None:
    """Why the miner may not produce a block on base (None when it may), as MinerEligibleToMine;
    base_tree: base's parent state tree when the caller has it open already."""
    lookback_tree = sm.read_parent_tree(lookback)
    try:
        if miner_claim(lookback_tree, miner) is None:
            return f"miner {miner} has no power claim at the lookback epoch {lookback.height}"
        if not miner_power(lookback_tree, sm.policy, miner).has_min_power:
            return f"miner {miner} is below the minimum power at the lookback epoch {lookback.height}"
        tree = sm.read_parent_tree(base) if base_tree is None else base_tree
        claim = miner_claim(tree, miner)
        if claim is None or claim.quality_adj_power <= 0:
            return f"miner {miner} has no power at epoch {base.height}"
        state = miner_state(tree, miner)
        if state.fee_debt != 0:
            return f"miner {miner} has fee debt {state.fee_debt}"
        elapsed = miner_info(tree, miner).consensus_fault_elapsed
        if base.height <= elapsed:
            return f"miner {miner} is barred by a consensus fault until epoch {elapsed}"
    except (ActorNotFound, StateQueryError) as exc:
        return f"miner {miner} is not a valid miner: {exc}"
    return None


@dataclass(frozen=True, slots=True)
class MiningBase:
    """What a miner needs to try an epoch on a base tipset (Lotus api.MiningBaseInfo)."""

    miner: Address
    base: TipSet
    epoch: int
    lookback: TipSet
    lookback_state: CID
    worker: Address  # the worker's BLS key address
    miner_power: int  # quality-adjusted, at the lookback state
    network_power: int
    prev_beacon: BeaconEntry  # the last entry on the chain below the block
    beacon_entries: tuple[BeaconEntry, ...]  # what the block carries
    sectors: tuple[SectorOnChainInfo, ...]  # what its Winning PoSt proves
    ineligible: str | None  # why the miner may not mine here, or None

    @property
    def beacon_base(self) -> BeaconEntry:
        """The entry election randomness is drawn from."""
        return self.beacon_entries[-1] if self.beacon_entries else self.prev_beacon

    @property
    def eligible(self) -> bool:
        return self.ineligible is None


def mining_base(
    sm: StateManager,
    beacon: RandomBeacon,
    miner: Address,
    base: TipSet,
    epoch: int,
    beacon_entries: tuple[BeaconEntry, ...] | None = None,
) -> MiningBase | None:
    """The mining base of miner at epoch on base, or None when it has nothing to mine with (no miner
    actor at the lookback state, or no active sector to prove), as MinerGetBaseInfo."""
    prev = latest_beacon_entry(sm.chain, base)
    entries = (
        beacon_entries if beacon_entries is not None else beacon_entries_for_block(beacon, epoch, base.height)
    )
    lookback, lookback_state = sm.lookback(base, epoch)
    tree = sm.tree(lookback_state)
    actor = tree.get_actor(miner)
    if actor is None or actor.code != builtin.MINER_ACTOR_CODE:
        return None
    beacon_base = entries[-1] if entries else prev
    sectors = sectors_for_winning_post(tree, miner, winning_post_randomness(beacon_base, miner, epoch))
    if not sectors:
        return None
    power = miner_power(tree, sm.policy, miner)
    return MiningBase(
        miner=miner,
        base=base,
        epoch=epoch,
        lookback=lookback,
        lookback_state=lookback_state,
        worker=worker_key_address(tree, miner),
        miner_power=power.miner.quality_adj_power,
        network_power=power.total.quality_adj_power,
        prev_beacon=prev,
        beacon_entries=tuple(entries),
        sectors=tuple(sectors),
        ineligible=ineligibility(sm, miner, base, lookback),
    )


def compute_ticket(mbase: MiningBase, worker_key: PrivateKey) -> Ticket:
    data = ticket_randomness(mbase.beacon_base, mbase.miner, mbase.epoch, mbase.base.min_ticket())
    return Ticket(compute_vrf(worker_key, data))


def election_proof(mbase: MiningBase, worker_key: PrivateKey) -> ElectionProof | None:
    """The election proof if the miner wins the epoch, else None (Lotus gen.IsRoundWinner)."""
    vrf = compute_vrf(worker_key, election_randomness(mbase.beacon_base, mbase.miner, mbase.epoch))
    wins = win_count(vrf, mbase.miner_power, mbase.network_power)
    return ElectionProof(wins, vrf) if wins > 0 else None


def check_worker_key(mbase: MiningBase, worker_key: PrivateKey) -> None:
    if Address.of_key(worker_key) != mbase.worker:
        raise InvalidWorker(f"the key given is not the worker key {mbase.worker} of miner {mbase.miner}")
