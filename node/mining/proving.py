"""A miner's proving as the chain states it: its current deadline, and each deadline's partitions with
their sectors, faults, recoveries and what is proven in the current window (what `lotus-miner proving
info` and `proving deadlines` show; `filpy miner proving info|deadlines` print these).

Plain functions over the state at a tipset (node/mining/chain_api.MinerChainState); synchronous, so
callers on the trio loop use `trio.to_thread.run_sync`. What the scheduler itself is doing (proofs in
progress, messages pushed) is `WindowPoStScheduler.status()`.
"""

from dataclasses import dataclass

from actors.miner.deadlines import Partition
from actors.miner.policy import DeadlineInfo
from chain.params import Policy
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.tipset import TipSet
from node.mining.chain_api import MinerChainState
from node.mining.wdpost_proofs import provable_sectors


@dataclass(frozen=True, slots=True)
class PartitionView:
    index: int
    sectors: BitField  # every sector ever assigned, terminated ones included
    live: BitField
    active: BitField  # live and not faulty
    faulty: BitField
    recovering: BitField  # faulty, declared recovered, to be proven by the next PoSt
    to_prove: BitField  # what this window's PoSt proves: active and recovering
    proven: bool  # proven in the current challenge window

    @classmethod
    def of(cls, index: int, partition: Partition, posted: BitField) -> "PartitionView":
        return cls(
            index=index,
            sectors=partition.sectors,
            live=partition.live(),
            active=partition.active(),
            faulty=partition.faults,
            recovering=partition.recoveries,
            to_prove=provable_sectors(partition),
            proven=index in posted,
        )


@dataclass(frozen=True, slots=True)
class DeadlineView:
    """One deadline: its next instance not yet closed (this proving period's, or the next period's
    once this one's has closed) and its partitions."""

    info: DeadlineInfo
    current: bool  # the deadline whose window is open now
    partitions: tuple[PartitionView, ...]

    @property
    def index(self) -> int:
        return self.info.index

    @property
    def live_sectors(self) -> int:
        return sum(p.live.count() for p in self.partitions)

    @property
    def faulty_sectors(self) -> int:
        return sum(p.faulty.count() for p in self.partitions)

    @property
    def proven_partitions(self) -> tuple[int, ...]:
        return tuple(p.index for p in self.partitions if p.proven)


@dataclass(frozen=True, slots=True)
class ProvingInfo:
    """`lotus-miner proving info`: where the miner is in its proving period, and its sector counts."""

    miner: Address
    epoch: int
    deadline: DeadlineInfo  # the current deadline (or the next not yet closed)
    live_sectors: int
    active_sectors: int
    faulty_sectors: int
    recovering_sectors: int
    deadline_live_sectors: int  # in the current deadline
    deadline_faulty_sectors: int

    @property
    def period_start(self) -> int:
        return self.deadline.period_start

    @property
    def next_period_start(self) -> int:
        return self.deadline.next_period_start()


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
            DeadlineView(
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
        epoch=ts.height,
        deadline=current,
        live_sectors=sum(p.live.count() for p in partitions),
        active_sectors=sum(p.active.count() for p in partitions),
        faulty_sectors=sum(p.faulty.count() for p in partitions),
        recovering_sectors=sum(p.recovering.count() for p in partitions),
        deadline_live_sectors=here.live_sectors if here else 0,
        deadline_faulty_sectors=here.faulty_sectors if here else 0,
    )
