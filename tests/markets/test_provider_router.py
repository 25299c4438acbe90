"""node/markets/provider_router.py: a node that provides for several miners serves them on one host, each
proposal reaching the provider of its proposal's miner, each status request the provider holding the
deal, and the ask protocol answering for every miner; a proposal for a miner the node does not serve is
refused with the reason."""

import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Final, cast

import trio

from actors.market.types import ClientDealProposal, DealProposal
from chain.chainstore.metadata import MemoryMetadata
from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.types.address import Address
from node.markets import storage_types as wire
from node.markets.deal_store import DealStore, ProviderDealRecord
from node.markets.provider_router import ProviderRouter, router_of
from node.markets.storage_ask import AskStore
from node.p2p.host import Libp2pHost

GENESIS: Final = Address.new_id(1000)
CREATED: Final = Address.new_id(1002)
CLIENT: Final = Address.new_id(1001)


class Host:
    """The part of a libp2p host the router uses: its protocol handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def set_stream_handler(self, protocol: object, handler: Any) -> None:
        self.handlers[str(protocol)] = handler


@dataclass
class Records:
    """A deal store's lookup: deal UUID -> the miner the deal is with."""

    deals: dict[bytes, Address] = field(default_factory=dict)

    def get(self, key: bytes) -> Any:
        miner = self.deals.get(key)
        if miner is None:
            return None
        return SimpleNamespace(client_deal_proposal=SimpleNamespace(proposal=SimpleNamespace(provider=miner)))


@dataclass
class Provider:
    """A storage provider that says who answered."""

    miner: Address
    store: DealStore[ProviderDealRecord]
    asks: AskStore

    async def propose(self, params: wire.DealParams, peer: str) -> wire.DealResponse:
        return wire.DealResponse(True, f"{self.miner} from {peer}")

    async def status(self, request: wire.DealStatusRequest) -> wire.DealStatusResponse:
        return wire.DealStatusResponse(deal_uuid=request.deal_uuid, error=f"answered by {self.miner}")


def proposal_for(miner: Address) -> wire.DealParams:
    piece = CID.parse("baga6ea4seaqhfjcq47ay6vbbxujwzsyza3rdly2nlicr5m5yjnhd77zx4efhwja")
    deal = DealProposal(piece, 2048, False, CLIENT, miner, "bafkqaaa", 100, 200, 1, 1, 0)
    signed = ClientDealProposal(deal, Signature(SigType.SECP256K1, bytes(65)))
    return wire.DealParams(
        deal_uuid=uuid.uuid4().bytes,
        is_offline=True,
        client_deal_proposal=signed,
        deal_data_root=CID.parse("bafkqaaa"),
        transfer=wire.Transfer(),
    )


async def test_each_miner_s_deals_reach_its_own_provider_on_one_host() -> None:
    host = Host()
    records = Records()
    store = cast(DealStore[ProviderDealRecord], records)
    asks = AskStore(MemoryMetadata())
    router = router_of(cast(Libp2pHost, host), trio.to_thread.run_sync)
    assert router_of(cast(Libp2pHost, host), trio.to_thread.run_sync) is router  # one per host
    router.add(Provider(GENESIS, store, asks))
    assert {str(wire.DEAL_PROTOCOL), str(wire.STATUS_PROTOCOL), str(wire.ASK_PROTOCOL)} <= set(host.handlers)
    # one provider: every proposal goes to it (which refuses one for another miner with the reason)
    assert (await router.propose(proposal_for(CREATED), "p")).message == f"{GENESIS} from p"

    router.add(Provider(CREATED, store, asks))  # a miner created while the node runs
    for miner in (GENESIS, CREATED):
        answer = await router.propose(proposal_for(miner), "p")
        assert (answer.accepted, answer.message) == (True, f"{miner} from p")
    stranger = Address.new_id(1234)
    refused = await router.propose(proposal_for(stranger), "p")
    assert not refused.accepted
    assert (
        refused.message == f"this provider does not serve miner {stranger} (it serves {GENESIS}, {CREATED})"
    )

    # status requests go to the provider holding the deal; an unknown deal to one that says so
    deal = uuid.uuid4().bytes
    records.deals[deal] = CREATED
    request = wire.DealStatusRequest(deal, Signature(SigType.SECP256K1, bytes(65)))
    assert (await router.status(request, "p")).error == f"answered by {CREATED}"
    unknown = wire.DealStatusRequest(uuid.uuid4().bytes, Signature(SigType.SECP256K1, bytes(65)))
    assert (await router.status(unknown, "p")).error == f"answered by {GENESIS}"

    # a restarted provider of a miner takes its place, and its asks are the ones answered for that miner
    assert router.asks_of(CREATED) is asks and router.asks_of(stranger) is None
    again = Provider(CREATED, store, AskStore(MemoryMetadata()))
    router.add(again)
    assert router.providers[CREATED] is again and list(router.providers) == [GENESIS, CREATED]
    assert router.asks_of(CREATED) is again.asks and router.asks_of(GENESIS) is asks


def test_a_router_without_providers_answers_that_it_has_no_deal() -> None:
    router = ProviderRouter(cast(Libp2pHost, Host()), trio.to_thread.run_sync)
    request = wire.DealStatusRequest(bytes(16), Signature(SigType.SECP256K1, bytes(65)))
    answer = trio.run(router.status, request, "p")
    assert answer.error == f"no storage deal found with deal UUID {uuid.UUID(bytes=bytes(16))}"
