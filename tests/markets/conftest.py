"""A provider serving retrieval over HTTP on 127.0.0.1 (port 0): an RPC server with the app mounted."""

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from node.markets.http_retrieval import RetrievalHttpApp
from node.markets.piecestore import PieceStore, RetrievalAsk, StoredPiece
from node.markets.unixfs import CHUNK_SIZE, ImportedCar, import_to_car
from rpc.registry import Registry
from rpc.server import RpcServer


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
