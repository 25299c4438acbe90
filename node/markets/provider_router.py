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
from typing import Any, Final, Protocol, TypeVar

import structlog
from libp2p.abc import INetStream

from chain.encoding.errors import DecodeError
from chain.types.address import Address
from node.markets.deal_store import DealStore, ProviderDealRecord
from node.markets.storage_ask import AskProvider, AskStore
from node.markets.storage_types import (
    DEAL_PROTOCOL,
    STATUS_PROTOCOL,
    DealParams,
    DealResponse,
    DealStatusRequest,
    DealStatusResponse,
)
from node.p2p.host import Libp2pHost
from node.p2p.streamio import StreamFailure, close_quietly, read_cbor, reset_quietly, write_cbor

_log = structlog.get_logger("deals.provider")
Q = TypeVar("Q")

STREAM_TIMEOUT: Final = 10.0
MAX_PROPOSAL_BYTES: Final = 64 << 10
MAX_STATUS_REQUEST: Final = 1 << 10


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
        host.set_stream_handler(DEAL_PROTOCOL, self._handle_proposal)
        host.set_stream_handler(STATUS_PROTOCOL, self._handle_status)
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

    async def _handle_proposal(self, stream: INetStream) -> None:
        await _exchange(stream, "proposal", MAX_PROPOSAL_BYTES, DealParams.from_cbor, self.propose)

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

    async def _handle_status(self, stream: INetStream) -> None:
        await _exchange(
            stream, "status request", MAX_STATUS_REQUEST, DealStatusRequest.from_cbor, self.status
        )

    async def status(self, request: DealStatusRequest, peer: str) -> DealStatusResponse:
        """The status request answered by the provider holding the deal."""
        provider = self._for_deal(request.deal_uuid)
        if provider is None:
            deal = uuid.UUID(bytes=request.deal_uuid)
            return DealStatusResponse(
                deal_uuid=request.deal_uuid, error=f"no storage deal found with deal UUID {deal}"
            )
        return await provider.status(request)


class _Answer(Protocol):
    def to_bytes(self) -> bytes: ...


async def _exchange(
    stream: INetStream,
    what: str,
    max_bytes: int,
    decode: Callable[[Any], Q],
    answer: Callable[[Q, str], Awaitable[_Answer]],
) -> None:
    """One request and its answer on a stream, each a CBOR message; an unreadable request resets it."""
    peer = str(stream.muxed_conn.peer_id)
    try:
        request = decode(await read_cbor(stream, max_bytes=max_bytes, timeout=STREAM_TIMEOUT))
    except (StreamFailure, DecodeError) as exc:
        _log.info(f"{what} unreadable", peer=peer, error=str(exc))
        await reset_quietly(stream)
        return
    response = await answer(request, peer)
    try:
        await write_cbor(stream, response.to_bytes(), timeout=STREAM_TIMEOUT)
    except StreamFailure as exc:
        _log.info(f"{what} answer failed", peer=peer, error=str(exc))
    finally:
        await close_quietly(stream)


_ROUTERS: "weakref.WeakKeyDictionary[Libp2pHost, ProviderRouter]" = weakref.WeakKeyDictionary()


def router_of(host: Libp2pHost, run_sync: Callable[..., Awaitable[Any]]) -> ProviderRouter:
    """The host's router (one per host, so that the providers served on it share its handlers)."""
    router = _ROUTERS.get(host)
    if router is None:
        router = _ROUTERS[host] = ProviderRouter(host, run_sync)
    return router
