"""A balance table: address -> token amount in a HAMT of bitwidth 6 (builtin-actors BalanceTable).

Keys are address bytes (always ID addresses in practice), values big integers. A balance that drops to
zero is deleted. Every inconsistency (a negative
balance, subtracting more than is there) is the caller's ErrIllegalState: the market only moves
amounts it has checked before.
"""

from typing import Final

from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bigint
from chain.state.hamt import Hamt
from chain.store.blockstore import Blockstore
from chain.types.address import Address
from chain.vm.exitcode import illegal_state

BALANCE_TABLE_BITWIDTH: Final = 6


class BalanceTable:
    __slots__ = ("_hamt",)

    def __init__(self, hamt: Hamt) -> None:
        self._hamt = hamt

    @classmethod
    def new(cls, store: Blockstore) -> "BalanceTable":
        return cls(Hamt.new(store, BALANCE_TABLE_BITWIDTH))

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> "BalanceTable":
        return cls(Hamt.load(store, root, BALANCE_TABLE_BITWIDTH))

    def flush(self) -> CID:
        return self._hamt.flush()

    def get(self, address: Address) -> int:
        raw = self._hamt.get(address.to_bytes())
        if raw is None:
            return 0
        try:
            return expect_bigint(raw, f"balance of {address}")
        except DecodeError as exc:
            raise illegal_state(str(exc)) from None

    def add(self, address: Address, amount: int) -> None:
        """Add amount (which may be negative) to the balance; the result must not be negative."""
        previous = self.get(address)
        total = previous + amount
        if total < 0:
            raise illegal_state(f"balance of {address} would become negative: {previous} + {amount}")
        if total == 0 and previous != 0:
            self._hamt.delete(address.to_bytes())
        else:
            # Adding zero to an absent entry stores an explicit zero, as builtin-actors does: the
            # state root depends on it.
            self._hamt.set(address.to_bytes(), encode_bigint(total))

    def subtract_with_minimum(self, address: Address, requested: int, floor: int) -> int:
        """Take up to requested from the balance without leaving less than floor; return what was taken."""
        available = max(0, self.get(address) - floor)
        taken = min(available, requested)
        if taken > 0:
            self.add(address, -taken)
        return taken

    def must_subtract(self, address: Address, amount: int) -> None:
        """Take exactly amount, which must be available."""
        previous = self.get(address)
        if amount > previous:
            raise illegal_state(f"cannot subtract {amount} from the balance {previous} of {address}")
        self.add(address, -amount)

    def total(self) -> int:
        return sum(expect_bigint(v, "balance") for v in self._hamt.values())

    def entries(self) -> dict[Address, int]:
        return {Address.from_bytes(k): expect_bigint(v, "balance") for k, v in self._hamt.items()}
