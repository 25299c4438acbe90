"""The provider's piece store and the client's import store: durable, verified, crash-safe."""

import json
import os
from pathlib import Path

import pytest

from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.store.car import CarReader
from node.markets.imports import ImportStore, ImportStoreError
from node.markets.piecestore import PieceMismatch, PieceStore, PieceStoreError, RetrievalAsk
from node.markets.unixfs import CHUNK_SIZE, import_to_car
from proofs.commp import commp_of_bytes


@pytest.fixture
def car(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(2 * CHUNK_SIZE + 99)
    (tmp_path / "file").write_bytes(data)
    import_to_car(tmp_path / "file", tmp_path / "file.car")
    return tmp_path / "file.car", data


def test_a_piece_is_indexed_served_and_kept(tmp_path: Path, car: tuple[Path, bytes]) -> None:
    path, _ = car
    raw = path.read_bytes()
    expected = piece_cid_v1(commp_of_bytes(raw).commitment)
    store = PieceStore.open(tmp_path / "pieces")
    piece = store.add_car(path, piece_cid=expected, ask=RetrievalAsk(price_per_byte=3))
    assert piece.piece_cid == expected and piece.car_size == len(raw) and piece.blocks == 4
    root = piece.roots[0]
    assert store.pieces_with(root) == [piece]
    block = store.get_block(root)
    assert block is not None and block in raw
    with store.open_piece(expected) as reader:
        assert reader.size == piece.unpadded_size
        assert reader.read(0, len(raw)) == raw
        tail = reader.read(len(raw) - 10, 100)
        assert tail == raw[-10:] + bytes(90)
        assert reader.read(reader.size - 5, 100) == bytes(5)
        assert reader.read(reader.size, 10) == b""
    again = PieceStore.open(tmp_path / "pieces")
    assert again.get(expected) == piece and again.get_block(root) == block
    assert again.get(expected).ask == RetrievalAsk(price_per_byte=3)  # type: ignore[union-attr]
    assert again.remove(expected) and not again.remove(expected)
    assert again.get_block(root) is None and PieceStore.open(tmp_path / "pieces").pieces() == []


def test_a_wrong_piece_cid_or_a_bad_car_is_refused(tmp_path: Path, car: tuple[Path, bytes]) -> None:
    path, _ = car
    store = PieceStore.open(tmp_path / "pieces")
    other = piece_cid_v1(commp_of_bytes(b"other").commitment)
    with pytest.raises(PieceMismatch, match="not " + str(other)):
        store.add_car(path, piece_cid=other)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    (tmp_path / "bad.car").write_bytes(bytes(raw))
    with pytest.raises(PieceStoreError, match="do not hash"):
        store.add_car(tmp_path / "bad.car")
    with pytest.raises(PieceStoreError, match="cannot read"):
        store.add_car(tmp_path / "missing.car")
    assert store.pieces() == [] and list((tmp_path / "pieces").iterdir()) == []


def test_imports_are_durable_and_give_the_deal_data(tmp_path: Path, car: tuple[Path, bytes]) -> None:
    store = ImportStore.open(tmp_path / "imports")
    first = store.import_file(tmp_path / "file")
    second = store.import_car(car[0])
    assert (first.import_id, second.import_id) == (1, 2)
    assert first.root == second.root and first.piece_cid == second.piece_cid
    assert first.payload_size == len(car[1]) and second.payload_size == first.car_size
    assert first.car_path.read_bytes() == car[0].read_bytes()
    data = store.deal_piece_cid(first.root)
    assert data.to_json() == {
        "PayloadSize": first.car_size,
        "PieceSize": first.piece_size,
        "PieceCID": {"/": str(first.piece_cid)},
    }
    reopened = ImportStore.open(tmp_path / "imports")
    assert reopened.imports() == [first, second]
    assert reopened.import_file(tmp_path / "file").import_id == 3
    assert reopened.remove(2) and not second.car_path.exists()
    assert [item.import_id for item in ImportStore.open(tmp_path / "imports").imports()] == [1, 3]
    assert first.lotus_json()["Root"] == {"/": str(first.root)}


def test_import_failures_leave_nothing(tmp_path: Path, car: tuple[Path, bytes]) -> None:
    store = ImportStore.open(tmp_path / "imports")
    with pytest.raises(ImportStoreError, match="is not a file"):
        store.import_file(tmp_path / "missing")
    (tmp_path / "junk.car").write_bytes(b"\x05junk!")
    with pytest.raises(ImportStoreError, match="not a valid CAR"):
        store.import_car(tmp_path / "junk.car")
    with pytest.raises(ImportStoreError, match="no import has root"):
        store.deal_piece_cid(import_root(car[0]))
    assert [p.name for p in (tmp_path / "imports").iterdir()] == []


def test_a_crash_between_car_and_record_is_cleaned_up(tmp_path: Path, car: tuple[Path, bytes]) -> None:
    directory = tmp_path / "imports"
    store = ImportStore.open(directory)
    made = store.import_file(tmp_path / "file")
    (directory / "7.car").write_bytes(b"orphan")
    (directory / ".8.car.partial").write_bytes(b"half")
    (directory / "9.json").write_text(json.dumps({"ImportID": "nonsense"}))
    reopened = ImportStore.open(directory)
    assert reopened.imports() == [made]
    assert not (directory / "7.car").exists() and not (directory / ".8.car.partial").exists()
    assert reopened.import_file(tmp_path / "file").import_id == 10


def import_root(path: Path) -> CID:
    with path.open("rb") as stream:
        return CarReader(stream).roots[0]


def test_an_export_is_written_whole_or_not_at_all(tmp_path: Path, car: tuple[Path, bytes]) -> None:
    # ClientExport (`filpy client retrieve ROOT OUT`) to a directory is refused in words, and an export
    # that fails leaves no `.OUT.partial` beside OUT.
    from node.markets.retrievals import _export

    car_path, data = car
    with car_path.open("rb") as f:
        root = CarReader(f).roots[0]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(IsADirectoryError, match="out is a directory: name the file to write"):
        _export(car_path, root, out_dir, False)
    with pytest.raises(OSError):
        _export(tmp_path / "missing.car", root, tmp_path / "file.out", True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "file.car", "out"]
    _export(car_path, root, tmp_path / "file.out", False)
    assert (tmp_path / "file.out").read_bytes() == data
    assert not (tmp_path / ".file.out.partial").exists()
