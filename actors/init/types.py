"""The init actor's methods, params and returns (builtin-actors actors/init).

Methods: Constructor (1), Exec (2, and its FRC-42 export). Exec4 (3, for f4 addresses made by the
Ethereum address manager) is not supported: filpy has no EAM.
"""

from enum import IntEnum
from typing import Annotated

from chain.encoding.cid import CID
from chain.encoding.schema import Bytes, CborTuple, Name
from chain.types.address import Address


class InitMethod(IntEnum):
    Constructor = 1
    Exec = 2
    ExecExported = 81225168  # frc42 method_hash("Exec")


class ConstructorParams(CborTuple):
    network_name: str


class ExecParams(CborTuple):
    code_cid: Annotated[CID, Name("CodeCID")]
    constructor_params: Bytes


class ExecReturn(CborTuple):
    id_address: Annotated[Address, Name("IDAddress")]
    robust_address: Address
