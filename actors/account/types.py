"""The account actor's methods, state and params (builtin-actors actors/account).

State (tuple): [Address], the key address. Methods: Constructor (1), PubkeyAddress (2),
AuthenticateMessage (under its FRC-42 number, as builtin-actors exports it from v10) and
UniversalReceiverHook (FRC-42 number of "Receive").
"""

from enum import IntEnum
from typing import Annotated, Final

from chain.encoding.schema import Bytes, CborTuple, IntKind
from chain.types.address import Address

UINT32_MAX: Final = (1 << 32) - 1
Uint32 = Annotated[int, IntKind(0, UINT32_MAX, "an unsigned 32-bit integer")]


class AccountMethod(IntEnum):
    Constructor = 1
    PubkeyAddress = 2
    AuthenticateMessage = 2643134072  # frc42 method_hash("AuthenticateMessage")
    UniversalReceiverHook = 3726118371  # frc42 method_hash("Receive")


class AccountState(CborTuple):
    address: Address


class AuthenticateMessageParams(CborTuple):
    signature: Bytes  # the signature's bytes without the type byte
    message: Bytes


class UniversalReceiverParams(CborTuple):
    type: Uint32  # what kind of asset is received
    payload: Bytes
