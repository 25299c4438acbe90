"""Storage miner and power queries on a state tree (Lotus StateMinerInfo, StateMinerPower,
StateMinerSectors, StateMinerActiveSectors, StateSectorGetInfo, StateMinerDeadlines,
StateMinerPartitions, StateMinerFaults, StateMinerRecoveries, StateMinerProvingDeadline,
StateMinerAvailableBalance, StateListMiners) and the Winning PoSt sector selection
(stmgr.GetSectorsForWinningPoSt)."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar, cast

from actors import builtin
from actors.miner.deadlines import Deadline, Deadlines, Partition
from actors.miner.policy import DeadlineInfo
from actors.miner.state import SECTORS_AMT_BITWIDTH, MinerInfo, MinerState, SectorOnChainInfo, Sectors
from actors.power.state import CLAIMS_HAMT_BITWIDTH, Claim, ClaimsTable, PowerState
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.params import Policy
from chain.state.amt import Amt
from chain.state.hamt import Hamt
from chain.state.tree import StateTree
from chain.stmgr.actors import StateQueryError, get_actor, lookup_id, read_actor_state
from chain.store.blockcache import cache_of
from chain.store.blockstore import BlockNotFound, Blockstore, get_decoded
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.vm.exitcode import ActorError
from proofs.post import winning_post_sector_challenge
from proofs.registered import SEAL_PARAMS, make_prover_id

T = TypeVar("T")

POWER_ACTOR: Final = builtin.STORAGE_POWER_ACTOR_ADDR


def _remembered(tree: StateTree, kind: tuple[object, ...], compute: Callable[[], T]) -> T:
    """compute(), a value derived from the whole state, once per (state root, kind) in the store's
    block cache: validating a block reads the same miner's claim and power in the same states more than
    once (is it a miner, is it eligible, what does it win), and so does each block of a tipset. A tree
    changed since it was loaded (no root) computes every time."""
    root = tree.root
    cache = cache_of(tree.store) if root is not None else None
    if cache is None or root is None:
        return compute()
    found = cache.derived(kind, root)
    if isinstance(found, _Found):
        return cast(T, found.value)
    value = compute()
    cache.remember(kind, root, _Found(value))
    return value


@dataclass(frozen=True, slots=True)
class _Found:
    """A remembered value, None included."""

    value: object


def _reading(what: str, fn: Callable[[], T], miner: Address | None = None) -> T:
    """Run a read of actor state; the actors' own errors (ActorError) become StateQueryError saying
    what was read (of miner: its string form, a checksum and base32, is made only then)."""
    try:
        return fn()
    except (ActorError, BlockNotFound, DecodeError) as exc:
        raise StateQueryError(f"{what if miner is None else f'{what} {miner}'}: {exc}") from None


# -- power ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MinerPower:
    """Lotus api.MinerPower: the miner's claim (zero when it has none), the network's power (over miners
    above the consensus minimum, as power State.TotalPower) and whether the miner meets the minimum."""

    miner: Claim
    total: Claim
    has_min_power: bool


def power_state(tree: StateTree) -> PowerState:
    state: PowerState = read_actor_state(tree, POWER_ACTOR, PowerState)
    return state


def total_power(state: PowerState) -> Claim:
    """Lotus power State.TotalPower: the totals over miners above the consensus minimum."""
    return Claim(0, state.total_raw_byte_power, state.total_quality_adj_power)


def miner_claim(tree: StateTree, miner: Address) -> Claim | None:
    """The miner's power claim (None: it has none); remembered per state root."""
    return _remembered(tree, ("miner-claim", miner), lambda: _miner_claim(tree, miner))


def _miner_claim(tree: StateTree, miner: Address) -> Claim | None:
    return _claim_in(tree, power_state(tree), lookup_id(tree, miner))


def _claim_in(tree: StateTree, state: PowerState, miner_id: Address) -> Claim | None:
    """miner_id's entry in state's claims table, remembered by the table's root CID (which fixes every
    claim in it) in the store's block cache: the states of consecutive tipsets differ (cron changes the
    power actor's state each epoch) but mostly share their claims table, so the ones a block's
    validation opens (its parent's, its lookback's) find it read already."""
    root = state.claims
    cache = cache_of(tree.store)
    kind = ("claims-table-entry", miner_id)
    if cache is not None:
        found = cache.derived(kind, root)
        if isinstance(found, _Found):
            return cast(Claim | None, found.value)
    claim = _reading("power claims", lambda: ClaimsTable.load(tree.store, root).get(miner_id))
    if cache is not None:
        cache.remember(kind, root, _Found(claim))
    return claim


def miner_power(tree: StateTree, policy: Policy, miner: Address) -> MinerPower:
    """As Lotus GetPowerRaw: a miner without a claim has zero power and no minimum. Remembered per state
    root (and the policy's consensus minimum)."""
    kind = ("miner-power", miner, policy.consensus_miner_min_power, policy.consensus_miner_min_miners)
    return _remembered(tree, kind, lambda: _miner_power(tree, policy, miner))


def _miner_power(tree: StateTree, policy: Policy, miner: Address) -> MinerPower:
    state = power_state(tree)
    miner_id = tree.lookup_id(miner)
    claim = None if miner_id is None else _claim_in(tree, state, miner_id)
    if claim is None:
        return MinerPower(Claim(0, 0, 0), total_power(state), False)
    return MinerPower(claim, total_power(state), state.claim_meets_consensus_minimum(policy, claim))


def list_miners(tree: StateTree) -> list[Address]:
    """Every miner with a power claim, in ID order (Lotus StateListMiners)."""
    state = power_state(tree)

    def read() -> list[Address]:
        claims = Hamt.load(tree.store, state.claims, CLAIMS_HAMT_BITWIDTH)
        return sorted((Address.from_bytes(key) for key, _ in claims.items()), key=lambda a: a.id)

    return _reading("power claims", read)


# -- miner state ---------------------------------------------------------------------------------------


def miner_state(tree: StateTree, miner: Address) -> MinerState:
    actor = get_actor(tree, miner)
    if actor.code != builtin.MINER_ACTOR_CODE:
        raise StateQueryError(f"{miner} is not a storage miner actor")
    state: MinerState = read_actor_state(tree, miner, MinerState)
    return state


def miner_info(tree: StateTree, miner: Address) -> MinerInfo:
    """The miner's info (MinerState.get_info, through the store's block cache: it rarely changes, so
    consecutive states share it)."""
    return _info_of(tree, miner, miner_state(tree, miner))


def _info_of(tree: StateTree, miner: Address, state: MinerState) -> MinerInfo:
    return _reading("info of miner", lambda: get_decoded(tree.store, state.info, MinerInfo.from_cbor), miner)


def sector_info(tree: StateTree, miner: Address, number: int) -> SectorOnChainInfo | None:
    state = miner_state(tree, miner)
    return _reading("sectors of", lambda: Sectors.load(tree.store, state.sectors).get(number), miner)


def miner_sectors(
    tree: StateTree, miner: Address, numbers: BitField | None = None
) -> list[SectorOnChainInfo]:
    """The miner's sectors (those numbered in `numbers`, or all), in sector-number order."""
    state = miner_state(tree, miner)

    def read() -> list[SectorOnChainInfo]:
        sectors = Sectors.load(tree.store, state.sectors)
        if numbers is not None:
            return [s for s in (sectors.get(n) for n in numbers) if s is not None]
        everything = Amt.load(tree.store, state.sectors, SECTORS_AMT_BITWIDTH)
        return [SectorOnChainInfo.from_cbor(raw) for _, raw in everything.items()]

    return _reading("sectors of", read, miner)


def miner_deadlines(tree: StateTree, miner: Address) -> list[Deadline]:
    state = miner_state(tree, miner)

    def read() -> list[Deadline]:
        deadlines = Deadlines.load(tree.store, state.deadlines)
        return [deadlines.get(tree.store, i) for i in range(len(deadlines.due))]

    return _reading("deadlines of", read, miner)


def miner_partitions(tree: StateTree, miner: Address, deadline: int) -> list[Partition]:
    state = miner_state(tree, miner)

    def read() -> list[Partition]:
        deadlines = Deadlines.load(tree.store, state.deadlines)
        if not 0 <= deadline < len(deadlines.due):
            raise StateQueryError(f"deadline {deadline} out of range 0..{len(deadlines.due) - 1}")
        return [p for _, p in deadlines.get(tree.store, deadline).load_partitions(tree.store).items()]

    return _reading("partitions of", read, miner)


def _all_partitions(tree: StateTree, miner: Address) -> Iterator[Partition]:
    for index in range(len(miner_deadlines(tree, miner))):
        yield from miner_partitions(tree, miner, index)


def miner_faults(tree: StateTree, miner: Address) -> BitField:
    return BitField().union(*(p.faults for p in _all_partitions(tree, miner)))


def miner_recoveries(tree: StateTree, miner: Address) -> BitField:
    return BitField().union(*(p.recoveries for p in _all_partitions(tree, miner)))


def _active_in_deadline(store: Blockstore, deadline: CID) -> BitField:
    """The active sectors of every partition of one deadline; remembered by the deadline's CID in the
    store's block cache, since a miner's consecutive states share most of their 48 deadlines."""
    cache = cache_of(store)
    if cache is not None:
        found = cache.derived("active-sectors", deadline)
        if isinstance(found, BitField):
            return found
    partitions = get_decoded(store, deadline, Deadline.from_cbor).load_partitions(store)
    active = BitField().union(*(p.active() for _, p in partitions.items()))
    if cache is not None:
        cache.remember("active-sectors", deadline, active)
    return active


def miner_active_sectors(tree: StateTree, miner: Address) -> BitField:
    """Sectors the miner proves: live and not faulty, in every partition (Lotus AllPartSectors(Active))."""
    return _active_of(tree, miner, miner_state(tree, miner))


def _active_of(tree: StateTree, miner: Address, state: MinerState) -> BitField:
    def read() -> BitField:
        deadlines = get_decoded(tree.store, state.deadlines, Deadlines.from_cbor)
        return BitField().union(*(_active_in_deadline(tree.store, cid) for cid in deadlines.due))

    return _reading("deadlines of", read, miner)


def proving_deadline(tree: StateTree, policy: Policy, miner: Address, epoch: int) -> DeadlineInfo:
    """The miner's current deadline at epoch, or the next one not yet elapsed (Lotus
    StateMinerProvingDeadline: DeadlineInfo(epoch).NextNotElapsed())."""
    state = miner_state(tree, miner)
    info = DeadlineInfo.of(policy, state.proving_period_start, state.current_deadline, epoch)
    if not info.has_elapsed():
        return info
    periods = 1 + (epoch - info.close) // policy.wpost_proving_period
    start = info.period_start + policy.wpost_proving_period * periods
    return DeadlineInfo.of(policy, start, info.index, epoch)


def available_balance(tree: StateTree, miner: Address, epoch: int) -> int:
    """What the miner could withdraw at epoch: unlocked balance less fee debt, plus funds vested but
    not yet unlocked (Lotus StateMinerAvailableBalance)."""
    actor = get_actor(tree, miner)
    state = miner_state(tree, miner)

    def read() -> int:
        _, vested = state.get_vesting(tree.store).unlock_vested(epoch)
        return state.available_balance(actor.balance) + vested

    return _reading("balance of", read, miner)


# -- Winning PoSt --------------------------------------------------------------------------------------


def winning_post_proof_type(window_post_proof: int) -> int:
    """The Winning PoSt proof of the sector size a Window PoSt proof type proves (Lotus
    WinningPoStProofTypeFromWindowPoStProofType)."""
    for params in SEAL_PARAMS.values():
        if params.window_post == window_post_proof:
            return int(params.winning_post)
    raise StateQueryError(f"no Winning PoSt proof pairs with Window PoSt proof {window_post_proof}")


@dataclass(frozen=True, slots=True)
class WinningPoStCandidates:
    """What a miner's Winning PoSt challenge picks from in a state: its active sectors in number order,
    the Winning PoSt proof type and its actor ID."""

    active: tuple[int, ...]
    proof_type: int
    miner_id: int


def winning_post_candidates(tree: StateTree, miner: Address) -> WinningPoStCandidates | None:
    """The miner's Winning PoSt candidates in this state (None: no active sector). Reading them walks
    every deadline and partition, so they are remembered in the store's block cache by what they are
    computed from: the miner's Deadlines and MinerInfo blocks and its ID. Consecutive lookback states
    (one per tipset) share them until a deadline or the info changes, not only the blocks of one tipset
    and the checks computed ahead of them."""
    state = miner_state(tree, miner)
    miner_id = lookup_id(tree, miner).id
    cache = cache_of(tree.store)
    kind = ("winning-post-candidates", miner_id, state.info)
    if cache is not None:
        found = cache.derived(kind, state.deadlines)
        if found is not None:
            return found if isinstance(found, WinningPoStCandidates) else None
    candidates = _winning_post_candidates(tree, miner, state, miner_id)
    if cache is not None:
        cache.remember(kind, state.deadlines, candidates if candidates is not None else False)
    return candidates


def _winning_post_candidates(
    tree: StateTree, miner: Address, state: MinerState, miner_id: int
) -> WinningPoStCandidates | None:
    active = tuple(_active_of(tree, miner, state))
    if not active:
        return None
    info = _info_of(tree, miner, state)
    return WinningPoStCandidates(active, winning_post_proof_type(info.window_post_proof_type), miner_id)


def sectors_for_winning_post(tree: StateTree, miner: Address, randomness: bytes) -> list[SectorOnChainInfo]:
    """The sectors a Winning PoSt must prove (Lotus GetSectorsForWinningPoSt): the challenge picks
    indexes into the miner's active sectors in number order; empty when it has none. Remembered per
    state root: a block's checks computed ahead of its validation ask for the same."""
    kind = ("winning-post-sectors", miner, randomness)
    return list(_remembered(tree, kind, lambda: tuple(_sectors_for_winning_post(tree, miner, randomness))))


def _sectors_for_winning_post(tree: StateTree, miner: Address, randomness: bytes) -> list[SectorOnChainInfo]:
    candidates = winning_post_candidates(tree, miner)
    if candidates is None:
        return []
    active = candidates.active
    prover = make_prover_id(candidates.miner_id)
    picks = winning_post_sector_challenge(candidates.proof_type, randomness, prover, len(active))
    chosen = BitField.from_bits(active[i] for i in picks)
    return miner_sectors(tree, miner, chosen)
