"""Lotus JSON: the JSON shapes of Lotus's API for chain types, kept apart from their CBOR codecs.

Conventions (Go encoding/json over lotus types): CIDs as {"/": "<cid>"}, token amounts and other big
integers as decimal strings, byte strings as standard padded base64, addresses as strings with the
node's network prefix. Go writes a nil byte slice as null; Lotus's messages decoded from chain have nil
Params when empty, and the zero Signature has nil Data, so empty Params and empty signature Data are
written as null here, and read back from null or "".

Readers take untrusted JSON values (as json.loads gives them) and raise DecodeError naming the field.
Like Go, they ignore keys they do not know (e.g. the "CID" key Lotus adds to messages).
"""

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from chain.crypto.signature import Signature, SigType
from chain.encoding.bigint import MAX_BIGINT_BYTES
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import INT64_MAX, INT64_MIN, UINT64_MAX
from chain.types.address import DEFAULT_NETWORK, Address
from chain.types.message import MESSAGE_VERSION, Message, SignedMessage
from chain.types.tipset import TipSetKey

_T = TypeVar("_T")
_DIGITS: Final = frozenset("0123456789")
# Decimal digits of the largest big integer a Filecoin big int can hold (127 magnitude bytes).
_MAX_BIGINT_DIGITS: Final = len(str(1 << (8 * (MAX_BIGINT_BYTES - 1))))


def _kind(raw: Any) -> str:
    return "null" if raw is None else type(raw).__name__


def _object(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise DecodeError(f"{what}: expected a JSON object, got {_kind(raw)}")
    return raw


def _field(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj:
        raise DecodeError(f"{what}: missing field {key!r}")
    return obj[key]


# scalars --------------------------------------------------------------------------------------------


def uint_from_json(raw: Any, what: str) -> int:
    if type(raw) is not int or not 0 <= raw <= UINT64_MAX:
        raise DecodeError(f"{what}: expected an unsigned 64-bit integer, got {_kind(raw)} {raw!r}"[:200])
    return raw


def int_from_json(raw: Any, what: str) -> int:
    if type(raw) is not int or not INT64_MIN <= raw <= INT64_MAX:
        raise DecodeError(f"{what}: expected a signed 64-bit integer, got {_kind(raw)} {raw!r}"[:200])
    return raw


def bigint_to_json(value: int) -> str:
    return str(value)


def bigint_from_json(raw: Any, what: str) -> int:
    """A decimal string, optionally negative (Go big.Int SetString base 10)."""
    if type(raw) is not str:
        raise DecodeError(f"{what}: expected a decimal string, got {_kind(raw)}")
    digits = raw[1:] if raw.startswith("-") else raw
    if not digits or not set(digits) <= _DIGITS:
        raise DecodeError(f"{what}: {raw[:80]!r} is not a decimal integer")
    if len(digits) > _MAX_BIGINT_DIGITS:
        raise DecodeError(f"{what}: integer of {len(digits)} digits is too large")
    value = int(raw)
    if (abs(value).bit_length() + 7) // 8 + 1 > MAX_BIGINT_BYTES:
        raise DecodeError(f"{what}: integer exceeds the {MAX_BIGINT_BYTES}-byte big integer limit")
    return value


def bytes_to_json(data: bytes) -> str | None:
    return base64.b64encode(data).decode("ascii") if data else None


def bytes_from_json(raw: Any, what: str) -> bytes:
    if raw is None:
        return b""
    if type(raw) is not str:
        raise DecodeError(f"{what}: expected base64 text or null, got {_kind(raw)}")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"{what}: invalid base64: {exc}") from None


def cid_to_json(cid: CID) -> dict[str, str]:
    return {"/": str(cid)}


def cid_from_json(raw: Any, what: str) -> CID:
    obj = _object(raw, what)
    if set(obj) != {"/"} or type(obj["/"]) is not str:
        raise DecodeError(f'{what}: expected a CID as {{"/": "<cid>"}}')
    try:
        return CID.parse(obj["/"])
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from None


def address_to_json(address: Address, network: str = DEFAULT_NETWORK) -> str:
    return address.to_string(network)


def address_from_json(raw: Any, what: str) -> Address:
    if type(raw) is not str:
        raise DecodeError(f"{what}: expected an address string, got {_kind(raw)}")
    try:
        return Address.parse(raw)
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from None


def _list_from_json(raw: Any, item: Callable[[Any, str], _T], what: str) -> list[_T]:
    if raw is None:
        return []
    if type(raw) is not list:
        raise DecodeError(f"{what}: expected a JSON array, got {_kind(raw)}")
    return [item(value, f"{what}[{i}]") for i, value in enumerate(raw)]


# chain types ----------------------------------------------------------------------------------------


def signature_to_json(signature: Signature) -> dict[str, Any]:
    return {"Type": int(signature.type), "Data": bytes_to_json(signature.data)}


def signature_from_json(raw: Any, what: str = "Signature") -> Signature:
    obj = _object(raw, what)
    kind = _field(obj, "Type", what)
    if type(kind) is not int or kind not in (SigType.SECP256K1, SigType.BLS, SigType.DELEGATED):
        raise DecodeError(f"{what}.Type: invalid signature type {kind!r}")
    data = bytes_from_json(_field(obj, "Data", what), f"{what}.Data")
    try:
        return Signature(SigType(kind), data)
    except ValueError as exc:
        raise DecodeError(f"{what}: {exc}") from None


def message_to_json(message: Message, network: str = DEFAULT_NETWORK) -> dict[str, Any]:
    return {
        "Version": message.version,
        "To": address_to_json(message.to, network),
        "From": address_to_json(message.from_, network),
        "Nonce": message.nonce,
        "Value": bigint_to_json(message.value),
        "GasLimit": message.gas_limit,
        "GasFeeCap": bigint_to_json(message.gas_fee_cap),
        "GasPremium": bigint_to_json(message.gas_premium),
        "Method": message.method,
        "Params": bytes_to_json(message.params),
        "CID": cid_to_json(message.cid()),
    }


def message_from_json(raw: Any, what: str = "Message") -> Message:
    """Read a message; Version may be left out (0) and Params null or left out (empty)."""
    obj = _object(raw, what)
    params = bytes_from_json(obj.get("Params"), f"{what}.Params")
    try:
        return Message(
            version=uint_from_json(obj.get("Version", MESSAGE_VERSION), f"{what}.Version"),
            to=address_from_json(_field(obj, "To", what), f"{what}.To"),
            from_=address_from_json(_field(obj, "From", what), f"{what}.From"),
            nonce=uint_from_json(_field(obj, "Nonce", what), f"{what}.Nonce"),
            value=bigint_from_json(_field(obj, "Value", what), f"{what}.Value"),
            gas_limit=int_from_json(_field(obj, "GasLimit", what), f"{what}.GasLimit"),
            gas_fee_cap=bigint_from_json(_field(obj, "GasFeeCap", what), f"{what}.GasFeeCap"),
            gas_premium=bigint_from_json(_field(obj, "GasPremium", what), f"{what}.GasPremium"),
            method=uint_from_json(_field(obj, "Method", what), f"{what}.Method"),
            params=params,
        )
    except DecodeError:
        raise
    except ValueError as exc:
        raise DecodeError(f"{what}: {exc}") from None


def signed_message_to_json(signed: SignedMessage, network: str = DEFAULT_NETWORK) -> dict[str, Any]:
    return {
        "Message": message_to_json(signed.message, network),
        "Signature": signature_to_json(signed.signature),
        "CID": cid_to_json(signed.cid()),
    }


def signed_message_from_json(raw: Any, what: str = "SignedMessage") -> SignedMessage:
    obj = _object(raw, what)
    return SignedMessage(
        message_from_json(_field(obj, "Message", what), f"{what}.Message"),
        signature_from_json(_field(obj, "Signature", what), f"{what}.Signature"),
    )


def tipset_key_to_json(key: TipSetKey) -> list[dict[str, str]]:
    return [cid_to_json(cid) for cid in key.cids]


def tipset_key_from_json(raw: Any, what: str = "TipSetKey") -> TipSetKey:
    """A JSON array of CIDs; null is the empty key (Lotus: 'the heaviest tipset')."""
    return TipSetKey(tuple(_list_from_json(raw, cid_from_json, what)))
