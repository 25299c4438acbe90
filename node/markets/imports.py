"""The client's imports: files made into CARs for storage deals, kept in the repo (`imports/`).

`ImportStore.open(repo.path / "imports")`; `import_file(path)` makes the UnixFS DAG and its CAR as
`ipfs add --cid-version=1` would (node/markets/unixfs.py), computes the piece, and records it under a new
import ID, as Lotus's ClientImport did (`{Root, ImportID}`); `import_car(path)` takes a CAR as it is
(FileRef{IsCAR: true}: one root, every block checked against its CID). `deal_piece_cid(root)` is
ClientDealPieceCID's answer (`DataCIDSize{PayloadSize: CAR bytes, PieceSize: padded, PieceCID}`).

Each import is `<id>.car` and `<id>.json` in the directory, the CAR renamed into place first and the
record written atomically after it, so a crash leaves an import whole or absent (a CAR without a
record is removed the next time the store opens). Methods are synchronous (file I/O and hashing): trio
callers use `trio.to_thread.run_sync`.
"""

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import structlog

from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.encoding.schema import Int64, LotusJson, Name, Uint64
from chain.store.car import CarReader
from node.atomic import write_atomic
from node.markets.unixfs import FileImportError, import_to_car
from proofs.commp import CommPWriter

_log = structlog.get_logger(__name__)

CAR_SUFFIX: Final = ".car"
RECORD_SUFFIX: Final = ".json"


class DataCIDSize(LotusJson):
    """ClientDealPieceCID's result (lotus api.DataCIDSize)."""

    payload_size: Int64
    piece_size: Uint64
    piece_cid: Annotated[CID, Name("PieceCID")]


class ImportStoreError(Exception):
    """An import that cannot be made, found or read; the message says why."""


@dataclass(frozen=True, slots=True)
class Import:
    """One import: what `filpy client import` prints and the deal flow needs."""

    import_id: int
    root: CID
    piece_cid: CID
    piece_size: int  # padded
    payload_size: int  # bytes of the imported file (of the CAR, for a CAR import)
    car_size: int
    car_path: Path
    source: str  # the path imported
    is_car: bool = False
    created: int = 0  # unix seconds

    def deal_data(self) -> DataCIDSize:
        return DataCIDSize(self.car_size, self.piece_size, self.piece_cid)

    def to_record(self) -> dict[str, Any]:
        return {
            "ImportID": self.import_id,
            "Root": str(self.root),
            "PieceCID": str(self.piece_cid),
            "PieceSize": self.piece_size,
            "PayloadSize": self.payload_size,
            "CarSize": self.car_size,
            "CARPath": str(self.car_path),
            "Source": self.source,
            "IsCAR": self.is_car,
            "Created": self.created,
        }

    @classmethod
    def from_record(cls, raw: Any) -> "Import":
        try:
            return cls(
                int(raw["ImportID"]),
                CID.parse(raw["Root"]),
                CID.parse(raw["PieceCID"]),
                int(raw["PieceSize"]),
                int(raw["PayloadSize"]),
                int(raw["CarSize"]),
                Path(raw["CARPath"]),
                str(raw["Source"]),
                bool(raw["IsCAR"]),
                int(raw["Created"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"import record: {exc}") from None

    def lotus_json(self) -> dict[str, Any]:
        """As ClientListImports shows an import (lotus api.Import)."""
        return {
            "Key": self.import_id,
            "Err": "",
            "Root": {"/": str(self.root)},
            "Source": "import",
            "FilePath": self.source,
            "CARPath": str(self.car_path),
        }


class ImportStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._imports: dict[int, Import] = {}
        self._lock = threading.Lock()
        self._next_id = 1

    @classmethod
    def open(cls, directory: Path) -> "ImportStore":
        store = cls(directory)
        store.directory.mkdir(parents=True, exist_ok=True)
        for leftover in store.directory.glob(".*.partial"):
            leftover.unlink(missing_ok=True)
        for record in store.directory.glob(f"*{RECORD_SUFFIX}"):
            try:
                item = Import.from_record(json.loads(record.read_bytes()))
            except (OSError, ValueError) as exc:
                _log.warning("imports.unreadable_record", path=str(record), error=str(exc))
                continue
            store._imports[item.import_id] = item
        for car in store.directory.glob(f"*{CAR_SUFFIX}"):
            stem = car.name[: -len(CAR_SUFFIX)]
            if stem.isdigit() and int(stem) not in store._imports:
                car.unlink(missing_ok=True)  # a crash after the CAR and before its record
        numbers = [
            int(p.name.split(".")[0]) for p in store.directory.iterdir() if p.name.split(".")[0].isdigit()
        ]
        store._next_id = max([*numbers, *store._imports, 0]) + 1
        return store

    def _allocate(self) -> int:
        with self._lock:
            number = self._next_id
            self._next_id += 1
            return number

    def _record(self, item: Import) -> Import:
        """Keep a new import whose CAR is in place; the CAR is removed if its record cannot be written."""
        try:
            write_atomic(
                self.directory / f"{item.import_id}{RECORD_SUFFIX}", json.dumps(item.to_record()).encode()
            )
        except BaseException:
            item.car_path.unlink(missing_ok=True)
            raise
        with self._lock:
            self._imports[item.import_id] = item
        _log.info("imports.added", id=item.import_id, root=str(item.root), piece=str(item.piece_cid))
        return item

    def import_file(self, path: Path) -> Import:
        """Import a file as UnixFS into a CAR of its own; ImportStoreError if it cannot be read."""
        path = Path(path).absolute()
        if not path.is_file():
            raise ImportStoreError(f"{path} is not a file")
        number = self._allocate()
        car_path = self.directory / f"{number}{CAR_SUFFIX}"
        try:
            made = import_to_car(path, car_path)
        except FileImportError as exc:
            raise ImportStoreError(str(exc)) from None
        except OSError as exc:
            raise ImportStoreError(f"cannot import {path}: {exc.strerror or exc}") from None
        item = Import(
            number,
            made.root,
            made.piece_cid,
            made.piece_size,
            made.payload_size,
            made.car_size,
            car_path,
            str(path),
            False,
            int(time.time()),
        )
        return self._record(item)

    def import_car(self, path: Path) -> Import:
        """Import a CAR as it is (its single root is the payload): copied into the store while every
        block is checked and the piece computed."""
        path = Path(path).absolute()
        number = self._allocate()
        car_path = self.directory / f"{number}{CAR_SUFFIX}"
        tmp = car_path.with_name(f".{car_path.name}.partial")
        try:
            with path.open("rb") as source, tmp.open("wb") as out, CommPWriter(threads=2) as commp:
                tee = _CopyReader(source, out, commp)
                reader = CarReader(tee)
                if len(reader.roots) != 1:
                    raise ImportStoreError(
                        f"{path} has {len(reader.roots)} roots: a deal's CAR has exactly one"
                    )
                for _ in reader:
                    pass
                piece = commp.finish()
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, car_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ImportStoreError(f"cannot import {path}: {exc.strerror or exc}") from None
        except DecodeError as exc:
            tmp.unlink(missing_ok=True)
            raise ImportStoreError(f"{path} is not a valid CAR: {exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        item = Import(
            number,
            reader.roots[0],
            piece_cid_v1(piece.commitment),
            piece.padded_size,
            tee.size,
            tee.size,
            car_path,
            str(path),
            True,
            int(time.time()),
        )
        return self._record(item)

    def get(self, import_id: int) -> Import | None:
        return self._imports.get(import_id)

    def imports(self) -> list[Import]:
        return sorted(self._imports.values(), key=lambda item: item.import_id)

    def by_root(self, root: CID) -> list[Import]:
        return [item for item in self.imports() if item.root == root]

    def deal_piece_cid(self, root: CID) -> DataCIDSize:
        """ClientDealPieceCID: the piece of the newest import of root; ImportStoreError if none."""
        found = self.by_root(root)
        if not found:
            raise ImportStoreError(f"no import has root {root}: import the data first (filpy client import)")
        return found[-1].deal_data()

    def remove(self, import_id: int) -> bool:
        """ClientRemoveImport: forget an import and delete its CAR; False if there was none."""
        with self._lock:
            item = self._imports.pop(import_id, None)
        if item is None:
            return False
        (self.directory / f"{import_id}{RECORD_SUFFIX}").unlink(missing_ok=True)
        item.car_path.unlink(missing_ok=True)
        return True


class _CopyReader:
    """Reads for the CAR reader, copying every byte to the output and to CommP."""

    def __init__(self, source: Any, out: Any, commp: CommPWriter) -> None:
        self.source, self.out, self.commp = source, out, commp
        self.size = 0

    def read(self, size: int, /) -> bytes:
        data: bytes = self.source.read(size)
        if data:
            self.out.write(data)
            self.commp.write(data)
            self.size += len(data)
        return data
