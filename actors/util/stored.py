"""Reading an actor's own state.

A stored value that does not decode means the state is corrupt: the actor aborts with ErrIllegalState,
as builtin-actors' `context_code(USR_ILLEGAL_STATE, ...)` on a state read. `reading(what)` wraps such a
read:

    with reading(f"sector {number}"):
        return SectorOnChainInfo.from_cbor(raw)

A block missing from the store is not the chain's business but the machine's: it passes through and
aborts execution (chain/vm/abort.py; the VM's store raises MissingBlock).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from chain.encoding.errors import DecodeError
from chain.vm.exitcode import illegal_state


@contextmanager
def reading(what: str) -> Iterator[None]:
    """ErrIllegalState naming `what` for a DecodeError inside."""
    try:
        yield
    except DecodeError as exc:
        raise illegal_state(f"failed to read {what}", exc) from None
