"""Fixtures of the market tests: a provider serving retrieval over HTTP on 127.0.0.1 (port 0), an RPC
server with the app mounted; and for payment channels, a client node and a provider on its chain, each
with its payment-channel manager running, and the miner that makes their tipsets."""

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.http_retrieval import RetrievalHttpApp
from node.markets.piecestore import PieceStore, RetrievalAsk, StoredPiece
from node.markets.unixfs import CHUNK_SIZE, ImportedCar, import_to_car
from rpc.registry import Registry
from rpc.server import RpcServer
from tests.markets.devnode import CLIENT, PROVIDER, PROVIDER_KEY, WORKER_KEY, Miner, make_node, party


@dataclass
class Provider:
    base: str
    store: PieceStore
    app: RetrievalHttpApp
    data: bytes
    imported: ImportedCar
    piece: StoredPiece
    car: Path


@pytest.fixture
async def provider(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Provider]:
    # Random chunks, two equal zero chunks and a short tail: duplicates and a partial leaf.
    data = os.urandom(5 * CHUNK_SIZE) + bytes(2 * CHUNK_SIZE) + b"tail"
    (tmp_path / "file").write_bytes(data)
    imported = import_to_car(tmp_path / "file", tmp_path / "file.car")
    store = PieceStore.open(tmp_path / "pieces")
    piece = store.add_car(tmp_path / "file.car", piece_cid=imported.piece_cid)
    app = RetrievalHttpApp(store, RetrievalAsk())
    server = RpcServer(Registry(), object(), secret=None, host="127.0.0.1", port=0)
    app.mount(server)
    bound = await nursery.start(server.run)
    yield Provider(f"http://127.0.0.1:{bound.port}", store, app, data, imported, piece, tmp_path / "file.car")


@dataclass
class Parties:
    client: FullNode
    provider: FullNode
    miner: Miner

    async def open_channel(self, amount: int) -> Address:
        """A channel from CLIENT to PROVIDER with amount in it, created and confirmed."""
        got = await self.client.paych.get_paych(CLIENT, PROVIDER, amount)
        assert got.channel is None and got.wait_sentinel is not None
        sentinel = got.wait_sentinel
        return await self.miner.run_until(lambda: self.client.paych.get_wait_ready(sentinel))


@pytest.fixture
async def parties(tmp_path: Path, nursery: trio.Nursery) -> Parties:
    client = make_node(tmp_path)
    provider = party(client, tmp_path / "provider-keys", PROVIDER_KEY, WORKER_KEY)
    for node in (client, provider):
        await nursery.start(node.paych.run)
    return Parties(client, provider, Miner(client))
