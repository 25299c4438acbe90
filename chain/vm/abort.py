"""Failures of the machine, not of the chain: they abort execution instead of becoming a receipt.

A receipt must be the same on every node, so only what follows from the state and the message may
decide it. A Python exception raised by an actor's own logic (a TypeError, a ZeroDivisionError, an
assertion) is deterministic, a bug every node hits alike, and becomes SysErrIllegalInstruction as a
Wasm trap does on the FVM. The failures below depend on the node that runs the message instead: two
nodes would compute different state roots from the same tipset if they were turned into receipts.

- MemoryError: the host ran out of memory (or refused an allocation).
- RecursionError: the interpreter's recursion limit or C stack, which the VM sets from
  `max_call_depth` but which differs between interpreters and platforms.
- OSError: the host's I/O failed, e.g. the LevelDB store under the state (disk full, read error).
- A block missing from the store: the state is content-addressed, so every block reachable from a
  state root exists on a node with the full state; one that is missing means this node's store is
  incomplete or damaged (Lotus's runtime treats a failed store read as fatal too, as ref-fvm does a
  missing reachable block).
- Anything else a blockstore raises: a lookup of bytes by hash has no chain-defined failure.

Such a failure raises ExecutionAborted out of the VM with the message it stopped; the VM reverts that
message, and apply_tipset reverts the whole tipset (chain/vm/vm.py, chain/vm/tipset_apply.py).
"""

from typing import Final

from chain.encoding.cid import CID
from chain.store.blockstore import BlockNotFound

MACHINE_FAILURES: Final[tuple[type[BaseException], ...]] = (
    MemoryError,
    RecursionError,
    OSError,
    BlockNotFound,
)


class ExecutionAborted(Exception):
    """The machine failed while running a message; nothing about the chain can be concluded from it.

    The state tree is left as it was before the message (apply_message) or before the tipset
    (apply_tipset); the caller should stop applying this tipset, report the error and may retry later.
    """


class MissingBlock(ExecutionAborted):
    """An actor read a block its state references and the store does not have it."""

    def __init__(self, cid: CID) -> None:
        super().__init__(f"block {cid} is missing from the store")
        self.cid = cid


class StoreFailed(ExecutionAborted):
    """The blockstore raised while the VM read or wrote a block."""


def machine_failure(exc: BaseException) -> BaseException | None:
    """The machine-dependent failure behind exc (exc itself or its direct cause), or None if exc is a
    deterministic error."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, MACHINE_FAILURES):
            return candidate
    return None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
