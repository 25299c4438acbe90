"""Where computed tipset states are remembered across restarts: tipset key -> (state root, receipts root).

`StateIndex` is the protocol the state manager writes through; `MemoryStateIndex` keeps entries in a
dict (tests, scratch nodes) and `LevelDBStateIndex` keeps them in the repo's LevelDB under their own
key prefix, beside the blocks (LevelDBBlockstore.db). An entry is written only after the blocks of the
state and receipts it names were written, so an entry found after a crash names blocks that exist.
"""

from typing import Any, Final, Protocol

import structlog

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_cid, expect_tuple
from chain.types.tipset import TipSetKey

STATE_INDEX_PREFIX: Final = b"/stmgr/tipset-state/"

_log = structlog.get_logger(__name__)


class StateIndex(Protocol):
    def get(self, key: TipSetKey) -> tuple[CID, CID] | None:
        """(state root, receipts root) computed for the tipset, or None."""
        ...

    def put(self, key: TipSetKey, state_root: CID, receipts_root: CID) -> None: ...


def _encode(state_root: CID, receipts_root: CID) -> bytes:
    return dagcbor.encode([state_root, receipts_root])


def _decode(data: bytes, what: str) -> tuple[CID, CID]:
    state, receipts = expect_tuple(dagcbor.decode(data), 2, what)
    return expect_cid(state, f"{what}.StateRoot"), expect_cid(receipts, f"{what}.ReceiptsRoot")


class MemoryStateIndex:
    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[TipSetKey, tuple[CID, CID]] = {}

    def get(self, key: TipSetKey) -> tuple[CID, CID] | None:
        return self._entries.get(key)

    def put(self, key: TipSetKey, state_root: CID, receipts_root: CID) -> None:
        self._entries[key] = (state_root, receipts_root)

    def __len__(self) -> int:
        return len(self._entries)


class LevelDBStateIndex:
    """Entries in a plyvel database (the repo's datastore) keyed by prefix || tipset-key CID bytes."""

    __slots__ = ("_db", "_prefix")

    def __init__(self, db: Any, prefix: bytes = STATE_INDEX_PREFIX) -> None:
        self._db = db
        self._prefix = prefix

    def _key(self, key: TipSetKey) -> bytes:
        return self._prefix + key.cid().bytes

    def get(self, key: TipSetKey) -> tuple[CID, CID] | None:
        data: bytes | None = self._db.get(self._key(key))
        if data is None:
            return None
        try:
            return _decode(data, f"tipset state of {key}")
        except DecodeError as exc:
            # A damaged entry only costs a recomputation.
            _log.warning("damaged tipset state entry ignored", tipset=str(key), error=str(exc))
            return None

    def put(self, key: TipSetKey, state_root: CID, receipts_root: CID) -> None:
        self._db.put(self._key(key), _encode(state_root, receipts_root))
