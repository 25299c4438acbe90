"""A miner's proving as the chain states it, and its sectors as its disk has them: what `lotus-miner
proving info|deadlines|deadline|faults|check` show, and what `filpy miner proving ...` prints through
the `Filpy.Proving*` RPC methods (rpc/methods/proving.py).

- `proving_info`: the current deadline, the proving period and the sector counts;
- `deadlines_view`: per deadline its next window not yet closed and its partitions' sector sets, what
  the PoSt proves and whether it is proven in the current window;
- `faults_view`: every faulty sector with its deadline and partition, whether it is declared recovering,
  and (from the node's Window PoSt scheduler, when it runs the miner) why the last check found it
  unprovable;
- `check_view`: the live sectors of one deadline checked on disk now (`SectorStore.check`: every replica
  read and hashed, the CommR compared with the chain's), good or bad with the reason.

The views are declared types (their Lotus JSON is what the RPC answers). Plain functions over the state
at a tipset (node/mining/chain_api.MinerChainState); synchronous (check_view reads whole replicas), so
callers on the trio loop use `trio.to_thread.run_sync`.
"""

from collections.abc import Callable

from actors.miner.deadlines import Partition
from actors.miner.policy import DeadlineInfo
from chain.encoding.carry import carried
from chain.encoding.schema import ChainEpoch, LotusJson, Uint64
from chain.params import Policy
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.tipset import TipSet
from chain.vm.syscalls import sealed_commitment
from node.mining.chain_api import MinerChainState
from node.mining.wdpost_proofs import provable_sectors
from node.sealing.sectors import SectorStore


class PartitionView(LotusJson, kw_only=True):
    """One partition's sector sets (Lotus api.Partition), what this window's PoSt proves (active and
    recovering) and whether it is proven in the current window."""

    index: Uint64
    all_sectors: BitField  # every sector ever assigned, terminated ones included
    live_sectors: BitField
    active_sectors: BitField  # live and not faulty
    faulty_sectors: BitField
    recovering_sectors: BitField  # faulty, declared recovered: the next PoSt proves them
    to_prove: BitField
    proven: bool

    @classmethod
    def of(cls, index: int, partition: Partition, posted: BitField) -> "PartitionView":
        return cls(
            index=index,
            all_sectors=partition.sectors,
            live_sectors=partition.live(),
            active_sectors=partition.active(),
            faulty_sectors=partition.faults,
            recovering_sectors=partition.recoveries,
            to_prove=provable_sectors(partition),
            proven=index in posted,
        )


class DeadlineView(LotusJson, kw_only=True):
    """One deadline: its next instance not yet closed (this proving period's, or the next period's
    once this one's has closed) and its partitions."""

    index: Uint64
    period_start: ChainEpoch
    open: ChainEpoch
    close: ChainEpoch
    challenge: ChainEpoch
    fault_cutoff: ChainEpoch
    current: bool  # its window is open now
    partitions: tuple[PartitionView, ...]

    @property
    def live_sectors(self) -> int:
        return sum(p.live_sectors.count() for p in self.partitions)

    @property
    def all_sectors(self) -> int:
        return sum(p.all_sectors.count() for p in self.partitions)

    @property
    def faulty_sectors(self) -> int:
        return sum(p.faulty_sectors.count() for p in self.partitions)

    @property
    def proven_partitions(self) -> tuple[int, ...]:
        return tuple(p.index for p in self.partitions if p.proven)


class ProvingInfo(LotusJson, kw_only=True):
    """`lotus-miner proving info`: where the miner is in its proving period, and its sector counts."""

    miner: Address
    current_epoch: ChainEpoch
    period_start: ChainEpoch
    next_period_start: ChainEpoch
    proving_period_boundary: ChainEpoch  # period_start modulo the proving period
    deadline_index: Uint64  # the current deadline (or the next one not yet closed)
    deadline_open: ChainEpoch
    deadline_close: ChainEpoch
    deadline_challenge: ChainEpoch
    deadline_fault_cutoff: ChainEpoch
    live_sectors: Uint64
    active_sectors: Uint64
    faulty_sectors: Uint64
    recovering_sectors: Uint64
    deadline_live_sectors: Uint64  # in the current deadline
    deadline_faulty_sectors: Uint64


class FaultySector(LotusJson, kw_only=True):
    """A faulty sector (`lotus-miner proving faults`), and what this node knows of it."""

    deadline: Uint64
    partition: Uint64
    sector: Uint64
    recovering: bool  # declared recovered: the next PoSt proves it
    reason: str | None = None  # why the node's last check found it unprovable (None: unknown here)


class SectorCheck(LotusJson, kw_only=True):
    """One sector of `lotus-miner proving check DEADLINE`."""

    deadline: Uint64
    partition: Uint64
    sector: Uint64
    good: bool
    reason: str = ""  # why it cannot be proven ("" when good)


def deadlines_view(
    state: MinerChainState, policy: Policy, miner: Address, ts: TipSet
) -> tuple[DeadlineView, ...]:
    """Every deadline of the miner at ts, by index."""
    current = state.proving_deadline(miner, ts)
    deadlines = state.miner_deadlines(miner, ts)
    views = []
    for index, deadline in enumerate(deadlines):
        info = DeadlineInfo.of(policy, current.period_start, index, ts.height).next_not_elapsed()
        partitions = state.miner_partitions(miner, index, ts)
        views.append(
            carried(
                DeadlineView,
                info,
                current=index == current.index and current.open <= ts.height < current.close,
                partitions=tuple(
                    PartitionView.of(i, p, deadline.partitions_posted) for i, p in enumerate(partitions)
                ),
            )
        )
    return tuple(views)


def proving_info(state: MinerChainState, policy: Policy, miner: Address, ts: TipSet) -> ProvingInfo:
    """The miner's proving summary at ts."""
    views = deadlines_view(state, policy, miner, ts)
    current = state.proving_deadline(miner, ts)
    partitions = [p for view in views for p in view.partitions]
    here = views[current.index] if current.index < len(views) else None
    return ProvingInfo(
        miner=miner,
        current_epoch=ts.height,
        period_start=current.period_start,
        next_period_start=current.next_period_start(),
        proving_period_boundary=current.period_start % policy.wpost_proving_period,
        deadline_index=current.index,
        deadline_open=current.open,
        deadline_close=current.close,
        deadline_challenge=current.challenge,
        deadline_fault_cutoff=current.fault_cutoff,
        live_sectors=sum(p.live_sectors.count() for p in partitions),
        active_sectors=sum(p.active_sectors.count() for p in partitions),
        faulty_sectors=sum(p.faulty_sectors.count() for p in partitions),
        recovering_sectors=sum(p.recovering_sectors.count() for p in partitions),
        deadline_live_sectors=here.live_sectors if here else 0,
        deadline_faulty_sectors=here.faulty_sectors if here else 0,
    )


def faults_view(
    state: MinerChainState,
    policy: Policy,
    miner: Address,
    ts: TipSet,
    reason: Callable[[int], str | None] | None = None,
) -> tuple[FaultySector, ...]:
    """Every faulty sector of the miner at ts, by deadline, partition and number; reason(sector) says
    why it is unprovable here, when the caller knows."""
    out = []
    for index in range(len(state.miner_deadlines(miner, ts))):
        for p_index, partition in enumerate(state.miner_partitions(miner, index, ts)):
            for number in partition.faults:
                out.append(
                    FaultySector(
                        deadline=index,
                        partition=p_index,
                        sector=number,
                        recovering=number in partition.recoveries,
                        reason=reason(number) if reason is not None else None,
                    )
                )
    return tuple(out)


def check_view(
    state: MinerChainState, store: SectorStore, miner: Address, deadline: int, ts: TipSet
) -> tuple[SectorCheck, ...]:
    """The live sectors of one of the miner's deadlines, checked on disk now (reads every replica)."""
    miner_id = state.lookup_id(miner, ts)
    partitions = state.miner_partitions(miner_id, deadline, ts)
    live = BitField().union(*(p.live() for p in partitions))
    infos = {s.sector_number: s for s in state.miner_sectors(miner_id, ts, live)} if live else {}
    comm_r = {n: sealed_commitment(info.sealed_cid) for n, info in infos.items()}
    out = []
    for p_index, partition in enumerate(partitions):
        numbers = list(partition.live())
        reasons = {f.number: f.reason for f in store.check(miner_id, numbers, chain_comm_r=comm_r)}
        for number in numbers:
            bad = reasons.get(number)
            out.append(
                SectorCheck(
                    deadline=deadline,
                    partition=p_index,
                    sector=number,
                    good=bad is None,
                    reason=bad or "",
                )
            )
    return tuple(out)
