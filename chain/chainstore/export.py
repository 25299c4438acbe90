"""Which blocks a chain export holds, in the order they are written (lotus ChainStore.WalkSnapshot).

From the exported tipset's headers down to the genesis, breadth-first by parents: each header, then
the blocks it brings along. Messages (the MsgMeta and its AMTs and message blocks) of every header, or
with skip_old_messages only of the last recent_roots epochs; the parent state tree and the receipts of
headers in the last recent_roots epochs and of the genesis; the genesis block's own parent (the Filecoin
genesis block). A block is written once. Only DAG-CBOR blocks are walked into; identity CIDs and
codecs other than CBOR, DAG-CBOR and raw (piece and sector commitments) are never written, as Lotus.
"""

from collections import deque
from collections.abc import Iterator
from typing import Final

from chain.encoding.cid import CID, DAG_CBOR, RAW
from chain.encoding.multihash import IDENTITY
from chain.store.blockstore import Blockstore, get_bytes
from chain.store.car import links_of
from chain.types.block import BlockHeader
from chain.types.tipset import TipSet

CBOR: Final = 0x51
_WRITTEN_CODECS: Final = frozenset({CBOR, DAG_CBOR, RAW})


def _recurse(store: Blockstore, root: CID, walked: set[CID]) -> list[CID]:
    """root and every CID reachable from it through DAG-CBOR blocks not walked before, depth-first."""
    out = [root]
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid.codec != DAG_CBOR or cid.multihash.code == IDENTITY:
            continue
        links = links_of(cid, get_bytes(store, cid))
        fresh = [link for link in links if link not in walked]
        walked.update(fresh)
        out.extend(fresh)
        stack.extend(reversed(fresh))
    return out


def walk_snapshot(
    store: Blockstore, ts: TipSet, *, recent_roots: int, skip_old_messages: bool = False
) -> Iterator[tuple[CID, bytes]]:
    """(cid, bytes) of every block a snapshot of the chain ending at ts holds, each once."""
    seen: set[CID] = set()
    walked: set[CID] = set()
    queue = deque(ts.cids)
    recent_from = ts.height - recent_roots
    while queue:
        cid = queue.popleft()
        if cid in seen:
            continue
        seen.add(cid)
        data = get_bytes(store, cid)
        yield cid, data
        header = BlockHeader.from_bytes(data)
        extra: list[CID] = []
        if (not skip_old_messages or header.height > recent_from) and header.messages not in walked:
            walked.add(header.messages)
            extra += _recurse(store, header.messages, walked)
        if header.height > 0:
            queue.extend(header.parents)
        else:
            extra += header.parents
        if header.height == 0 or header.height > recent_from:
            for root in (header.parent_state_root, header.parent_message_receipts):
                if root not in walked:
                    walked.add(root)
                    extra += _recurse(store, root, walked)
        for link in extra:
            if link in seen or link.multihash.code == IDENTITY or link.codec not in _WRITTEN_CODECS:
                continue
            seen.add(link)
            yield link, get_bytes(store, link)
