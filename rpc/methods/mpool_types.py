"""The API shapes of the Mpool* and Gas* methods (lotus api/api_full.go, api/api_types.go), declared once
with their Go field names, and built from the message pool's own values by their `of` constructors.
"""

from typing import Annotated, Final, Self

from chain.encoding.cid import CID
from chain.encoding.schema import LotusJson, Name, TokenAmount
from chain.mpool.checks import CheckStatusCode
from chain.mpool.checks import MessageCheckStatus as PoolCheckStatus
from chain.mpool.push import SendSpec
from rpc.jsontypes import JsonValue

# What Go writes for a zero uuid.UUID (a MessageSendSpec without MsgUuid).
ZERO_UUID: Final = "00000000-0000-0000-0000-000000000000"


class MessageSendSpec(LotusJson):
    """lotus api.MessageSendSpec: the most a message may pay in fees (0: the node's default, 0.07 FIL),
    whether to set the fee cap to exactly that, and the client's id for the push (accepted, unused)."""

    max_fee: TokenAmount = 0
    msg_uuid: str = ZERO_UUID
    maximize_fee_cap: bool = False

    def send_spec(self) -> SendSpec:
        return SendSpec(max_fee=self.max_fee, maximize_fee_cap=self.maximize_fee_cap)


class MessageCheckStatus(LotusJson):
    """lotus api.MessageCheckStatus: one check of one message (`Cid` and the embedded CheckStatus's
    Code, OK, Err and free-form Hint)."""

    cid: CID
    code: CheckStatusCode
    ok: Annotated[bool, Name("OK")]
    err: str
    hint: JsonValue = None

    @classmethod
    def of(cls, status: PoolCheckStatus) -> Self:
        return cls(cid=status.cid, code=status.code, ok=status.ok, err=status.err, hint=status.hint or None)
