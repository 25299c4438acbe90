"""The Window PoSt schedulers a node runs, for the parts that ask about them (the proving RPC methods).

A scheduler made with `WindowPoStScheduler.for_node` lists itself in its node's `proving` while it runs
(`FullNode.proving`, made on first use), so that whatever starts the schedulers (filpy devnet, filpy
daemon, a test) needs no wiring for the RPC to find them: `Filpy.ProvingCheck` reads the sectors of the
scheduler's sector store, `Filpy.ProvingMiners` lists the miners.
"""

from typing import TYPE_CHECKING

from chain.types.address import Address
from node.fullnode import FullNode

if TYPE_CHECKING:  # node/mining/wdpost.py imports this module
    from node.mining.wdpost import WindowPoStScheduler


class LocalProving:
    def __init__(self) -> None:
        self._schedulers: list[WindowPoStScheduler] = []

    @classmethod
    def of(cls, node: FullNode) -> "LocalProving":
        """The node's registry, made on first use."""
        if node.proving is None:
            node.proving = cls()
        return node.proving

    def add(self, scheduler: "WindowPoStScheduler") -> None:
        if scheduler not in self._schedulers:
            self._schedulers.append(scheduler)

    def remove(self, scheduler: "WindowPoStScheduler") -> None:
        if scheduler in self._schedulers:
            self._schedulers.remove(scheduler)

    def miners(self) -> list[Address]:
        """The miners whose PoSts this node makes (ID addresses once their scheduler has seen a head)."""
        return [s.miner_id or s.miner for s in self._schedulers]

    def scheduler(self, miner: Address) -> "WindowPoStScheduler | None":
        """The running scheduler of a miner (by the address it was made with, or its ID address)."""
        for scheduler in self._schedulers:
            if miner in (scheduler.miner, scheduler.miner_id):
                return scheduler
        return None
