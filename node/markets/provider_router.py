"""The storage protocols of every miner a node provides for, on one libp2p host.

A host has one handler per protocol, and a node may provide for several miners at once (each with its
own StorageProvider, deals and ask), all announced on chain with the same provider host. The router
answers `/fil/storage/mk/1.2.0` with the provider of the proposal's Provider, `/fil/storage/status/1.2.0`
with the provider that holds the deal, and `/fil/storage/ask/1.1.0` for any of the miners.

    router_of(host, node.run_sync).add(provider)   # its miner's deals come to it from now on (a provider
                                                   # of the same miner is replaced: a restarted one)
"""

import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from chain.types.address import Address
from node.markets.deal_store import DealStore, ProviderDealRecord
from node.markets.storage_ask import AskProvider, AskStore
from node.markets.storage_types import (
    DEAL,
    STATUS,
    DealParams,
    DealResponse,
    DealStatusRequest,
    DealStatusResponse,
)
from node.p2p.host import Libp2pHost


class Provider(Protocol):
    """What the router needs of a storage provider (node/markets/storage_provider.py)."""

    @property
    def miner(self) -> Address: ...

    @property
    def store(self) -> DealStore[ProviderDealRecord]: ...

    @property
    def asks(self) -> AskStore: ...

    async def propose(self, params: DealParams, peer: str) -> DealResponse: ...

    async def status(self, request: DealStatusRequest) -> DealStatusResponse: ...


class ProviderRouter:
    """See the module docstring."""

    def __init__(self, host: Libp2pHost, run_sync: Callable[..., Awaitable[Any]]) -> None:
        self.providers: dict[Address, Provider] = {}
        DEAL.serve(host, self.propose, event="deals.proposal")
        STATUS.serve(host, self.status, event="deals.status")
        AskProvider(self.asks_of, run_sync).register(host)

    def add(self, provider: Provider) -> None:
        self.providers[provider.miner] = provider

    def asks_of(self, miner: Address) -> AskStore | None:
        provider = self.providers.get(miner)
        return None if provider is None else provider.asks

    def _for_proposal(self, params: DealParams) -> Provider | None:
        """The provider of the proposal's miner; the only one when the node provides for one miner
        (which refuses a proposal for another with the reason)."""
        miner = params.client_deal_proposal.proposal.provider
        found = self.providers.get(miner)
        if found is None and len(self.providers) == 1:
            return next(iter(self.providers.values()))
        return found

    async def propose(self, params: DealParams, peer: str) -> DealResponse:
        """The proposal answered by the provider of its miner (refused when the node serves no such miner)."""
        provider = self._for_proposal(params)
        if provider is None:
            miner = params.client_deal_proposal.proposal.provider
            served = ", ".join(str(m) for m in self.providers)
            return DealResponse(False, f"this provider does not serve miner {miner} (it serves {served})")
        return await provider.propose(params, peer)

    def _for_deal(self, deal_uuid: bytes) -> Provider | None:
        """The provider holding the deal, else any (which answers that there is no such deal)."""
        for provider in self.providers.values():
            record = provider.store.get(deal_uuid)
            if record is not None:
                return self.providers.get(record.client_deal_proposal.proposal.provider, provider)
        return next(iter(self.providers.values()), None)

    async def status(self, request: DealStatusRequest, peer: str) -> DealStatusResponse:
        """The status request answered by the provider holding the deal."""
        provider = self._for_deal(request.deal_uuid)
        if provider is None:
            deal = uuid.UUID(bytes=request.deal_uuid)
            return DealStatusResponse(
                deal_uuid=request.deal_uuid, error=f"no storage deal found with deal UUID {deal}"
            )
        return await provider.status(request)


_ROUTERS: "weakref.WeakKeyDictionary[Libp2pHost, ProviderRouter]" = weakref.WeakKeyDictionary()


def router_of(host: Libp2pHost, run_sync: Callable[..., Awaitable[Any]]) -> ProviderRouter:
    """The host's router (one per host, so that the providers served on it share its handlers)."""
    router = _ROUTERS.get(host)
    if router is None:
        router = _ROUTERS[host] = ProviderRouter(host, run_sync)
    return router
