"""Why the message pool refuses a message: one class per reason, each message worded as Lotus's.

Lotus builds its errors as "<what>: <sentinel>" (lotus chain/messagepool/messagepool.go), and clients
match on the sentinel's words ("message nonce too low", "not enough funds ..."), so the texts keep
them. A refusal never changes the pool. The RPC layer turns these into JSON-RPC errors.
"""

from chain.types.fil import format_fil


class MpoolError(Exception):
    """A message the pool refuses; str() is the reason."""


class MessageTooBig(MpoolError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"mpool message too large ({size}B, limit {limit}B): message too big")


class InvalidMessage(MpoolError):
    """A message that breaks a syntax rule for block inclusion."""


class GasFeeCapTooLow(MpoolError):
    def __init__(self, fee_cap: int, minimum: int) -> None:
        super().__init__(f"gas fee cap too low (GasFeeCap: {fee_cap}, minimum base fee: {minimum})")


class InvalidSignature(MpoolError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"signature verification failed: {reason}")


class SenderInvalid(MpoolError):
    """The sender does not exist, or is not an account that may send messages."""


class NonceTooLow(MpoolError):
    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"minimum expected nonce is {expected}, got {got}: message nonce too low")
        self.expected = expected


class NonceGap(MpoolError):
    def __init__(self, nonce: int, next_nonce: int, *, replacing: bool = False) -> None:
        what = (
            "rejecting replace by fee because of nonce gap"
            if replacing
            else ("message nonce has too big a gap from expected nonce")
        )
        super().__init__(f"{what} (Nonce: {nonce}, nextNonce: {next_nonce}): unfulfilled nonce gap")


class TooManyPending(MpoolError):
    def __init__(self, sender: str, limit: int) -> None:
        super().__init__(f"too many pending messages for actor {sender} (limit {limit})")


class NotEnoughFunds(MpoolError):
    def __init__(self, required: int, balance: int, *, including_pending: bool) -> None:
        if including_pending:
            text = (
                f"not enough funds including pending messages (required: {format_fil(required)}, "
                f"balance: {format_fil(balance)}): not enough funds to execute transaction"
            )
        else:
            text = (
                f"not enough funds (required: {format_fil(required)}, balance: {format_fil(balance)}): "
                "not enough funds to execute transaction"
            )
        super().__init__(text)


class ReplaceByFeeTooLow(MpoolError):
    def __init__(self, sender: str, nonce: int, minimum: int, premium: int) -> None:
        super().__init__(
            f"message from {sender} with nonce {nonce} already in mpool, increase GasPremium to {minimum}"
            f" from {premium} to trigger replace by fee: replace by fee has too low GasPremium"
        )


class DuplicateMessage(MpoolError):
    def __init__(self, sender: str, nonce: int) -> None:
        super().__init__(
            f"message from {sender} with nonce {nonce} already in mpool: message with nonce already exists"
        )


class BaseFeeLowerBound(MpoolError):
    """A message from the network whose fee cap is far under the base fee (Lotus's soft failure)."""

    def __init__(self, fee_cap: int, bound: int) -> None:
        super().__init__(
            "GasFeeCap doesn't meet base fee lower bound for inclusion in the next 20 blocks "
            f"(GasFeeCap: {fee_cap}, baseFeeLowerBound: {bound}): validation failure"
        )
