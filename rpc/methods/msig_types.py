"""The result shapes of the Msig* methods that are Lotus API types (lotus api/api_full.go)."""

from typing import Annotated

from chain.encoding.schema import Bytes, Int64, LotusJson, Name, TokenAmount, Uint64
from chain.types.address import Address


class MsigTransaction(LotusJson):
    """api.MsigTransaction: a pending multisig transaction and the signers who approved it."""

    id: Annotated[Int64, Name("ID")]
    to: Address
    value: TokenAmount
    method: Uint64
    params: Bytes
    approved: tuple[Address, ...]
