"""A clean pointer from an AMT or HAMT node to a child: the child's CID and, once loaded, the decoded
child (both trees load children lazily and keep what they decoded)."""

from typing import Generic, TypeVar

from chain.encoding.cid import CID

N = TypeVar("N")


class Link(Generic[N]):
    __slots__ = ("cid", "node")

    def __init__(self, cid: CID, node: N | None = None) -> None:
        self.cid = cid
        self.node = node
