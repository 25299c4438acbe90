"""Messages for the tests: a plain transfer with every field valid, any of them changed by keyword; a
message with no gas set."""

from chain.crypto.keys import KeyType, PrivateKey
from chain.types.address import Address
from chain.types.message import Message

ALICE = PrivateKey.derive(KeyType.SECP256K1, b"alice")


def transfer(**changes: object) -> Message:
    """1 FIL from ALICE's key address to ID 1001 at nonce 0, with `changes` applied."""
    fields: dict[str, object] = {
        "to": Address.new_id(1001),
        "from_": Address.of_key(ALICE),
        "nonce": 0,
        "value": 10**18,
        "gas_limit": 1_000_000,
        "gas_fee_cap": 200,
        "gas_premium": 100,
        "method": 0,
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def unpriced(to: Address, from_: Address, *, nonce: int = 0, value: int = 0, method: int = 0) -> Message:
    """A message with no gas limit, fee cap or premium: what StateCall runs and gas estimation fills in."""
    return Message(
        to=to, from_=from_, nonce=nonce, value=value, gas_limit=0, gas_fee_cap=0, gas_premium=0, method=method
    )
