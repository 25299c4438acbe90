"""ClientFindData and ClientMinerQueryOffer connect to each provider at the addresses its miner has on
chain before they query it: a provider restarted on another port is reached there, not at the address
this node's host last knew (seen as "No known addresses to peer" after a devnet restart). A provider that
cannot be reached still gets its offer, with the error, and the other providers' offers are unaffected."""

from types import SimpleNamespace
from typing import Any, Final, cast

from chain.encoding.cid import CID
from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.deal_states import StorageDealStatus
from node.markets.retrievals import RetrievalError
from node.p2p.protocols import PeerID
from node.p2p.streamio import StreamFailure
from rpc.methods.client import client_find_data

ROOT: Final = CID.parse("bafkreig77dxvhmyu4p6peyraeuthocixqrhwaxsxhif66xpgjaqbqo5qbe")
REACHED: Final = Address.new_id(1000)
GONE: Final = Address.new_id(1002)
PEERS: Final = {
    REACHED: "12D3KooWFb9b5ZoCYNinRrdE2dcDaqvSX4SWgWdRMYcdTTJAMcAN",
    GONE: "12D3KooWANo7ZVj39VbCXNFNd6BKArSCxycztT9FSMzX18RUStYK",
}


class Retrievals:
    """Connects to a miner's on-chain addresses (the real one asks the chain); GONE cannot be reached."""

    def __init__(self) -> None:
        self.connected: set[str] = set()

    async def provider_peer(self, miner: Address, peer: PeerID | None) -> PeerID:
        if miner == GONE:
            raise RetrievalError(f"cannot reach {PEERS[miner]}: connection refused")
        assert peer is not None and peer.to_base58() == PEERS[miner]
        self.connected.add(PEERS[miner])
        return peer


class Host:
    """Streams open only to connected peers, as a host without the peer's addresses."""

    def __init__(self, retrievals: Retrievals) -> None:
        self.retrievals = retrievals

    async def open_stream(self, peer: PeerID, protocol: object, *, timeout: float, dial: bool = False) -> Any:
        if peer.to_base58() not in self.retrievals.connected:
            raise StreamFailure(f"No known addresses to peer {peer.to_base58()}")
        raise StreamFailure("reached: the provider hung up")  # the query itself is not under test here


def deal_with(miner: Address) -> Any:
    proposal = SimpleNamespace(provider=miner, piece_cid=None)
    return SimpleNamespace(
        root=ROOT,
        state=StorageDealStatus.StorageDealActive,
        client_deal_proposal=SimpleNamespace(proposal=proposal),
        provider_peer=PEERS[miner],
    )


async def test_find_data_connects_to_each_provider_at_its_on_chain_addresses_first() -> None:
    retrievals = Retrievals()
    markets = SimpleNamespace(
        client=SimpleNamespace(deals=lambda: [deal_with(REACHED), deal_with(GONE)]),
        host=Host(retrievals),
        retrievals=retrievals,
    )
    node = cast(FullNode, SimpleNamespace(markets=markets))
    reached, gone = await client_find_data(node, ROOT, None)
    assert (reached.miner, gone.miner) == (REACHED, GONE)
    assert "reached" in reached.err  # connected first, so the query got as far as the provider
    assert "No known addresses" in gone.err  # unreachable: its offer says so, nothing raised
