"""One sender's pending messages: by nonce, the next nonce it expects, and what they may all cost
(lotus messagepool.go msgSet)."""

from chain.mpool.config import min_replacement_premium
from chain.mpool.errors import DuplicateMessage, NonceGap, ReplaceByFeeTooLow, TooManyPending
from chain.types.message import SignedMessage


def required_funds(msg: SignedMessage) -> int:
    """The most a message can take from its sender: its value plus GasFeeCap * GasLimit.

    Lotus's pool counts only the gas part (its selection and MpoolCheckMessages add the value); filpy
    counts both on entry, so that pending messages a sender cannot pay for all together are refused.
    """
    m = msg.message
    return m.value + m.gas_fee_cap * m.gas_limit


class MsgSet:
    __slots__ = ("msgs", "next_nonce", "required")

    def __init__(self, next_nonce: int) -> None:
        self.msgs: dict[int, SignedMessage] = {}
        self.next_nonce = next_nonce
        self.required = 0

    def add(
        self,
        msg: SignedMessage,
        *,
        strict: bool,
        max_nonce_gap: int,
        max_pending: int,
        rbf_percent: int,
    ) -> bool:
        """Insert msg, replacing the message of the same nonce if it pays enough more; whether the
        pool grew. strict refuses a nonce more than max_nonce_gap past the next one."""
        nonce = msg.message.nonce
        next_nonce = self.next_nonce
        gap = False
        if nonce == next_nonce:
            next_nonce += 1
            while next_nonce in self.msgs:  # the message fills a gap
                next_nonce += 1
        elif strict and nonce > next_nonce + max_nonce_gap:
            raise NonceGap(nonce, next_nonce)
        elif nonce > next_nonce:
            gap = True
        existing = self.msgs.get(nonce)
        if existing is not None:
            if strict and gap:
                raise NonceGap(nonce, next_nonce, replacing=True)
            sender = str(msg.message.from_)
            if existing.cid() == msg.cid():
                raise DuplicateMessage(sender, nonce)
            minimum = min_replacement_premium(existing.message.gas_premium, rbf_percent)
            if msg.message.gas_premium < minimum:
                raise ReplaceByFeeTooLow(sender, nonce, minimum, msg.message.gas_premium)
            self.required -= required_funds(existing)
        elif len(self.msgs) >= max_pending:
            raise TooManyPending(str(msg.message.from_), max_pending)
        self.next_nonce = next_nonce
        self.msgs[nonce] = msg
        self.required += required_funds(msg)
        return existing is None

    def remove(self, nonce: int, applied: bool) -> SignedMessage | None:
        """Drop the message of this nonce (if any): applied when a tipset included it (or another
        message of its nonce), otherwise pruned. Returns what was dropped."""
        msg = self.msgs.pop(nonce, None)
        if msg is None:
            if applied and nonce >= self.next_nonce:
                # A message this pool never saw was applied: the sender moved past it.
                self.next_nonce = nonce + 1
                while self.next_nonce in self.msgs:
                    self.next_nonce += 1
            return None
        self.required -= required_funds(msg)
        if applied:
            if nonce >= self.next_nonce:
                self.next_nonce = nonce + 1
        elif nonce < self.next_nonce:
            # Pruned: the sender is back to needing this nonce.
            self.next_nonce = nonce
        return msg

    def required_without(self, nonce: int) -> int:
        """What the pending messages may cost, leaving out the one of this nonce (being replaced)."""
        existing = self.msgs.get(nonce)
        return self.required - (0 if existing is None else required_funds(existing))

    def in_nonce_order(self) -> list[SignedMessage]:
        return [self.msgs[n] for n in sorted(self.msgs)]
