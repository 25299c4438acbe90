"""Lotus JSON: the JSON shapes of Lotus's API for chain types, kept apart from their CBOR codecs.

Conventions (Go encoding/json over lotus types): CIDs as {"/": "<cid>"}, token amounts and other big
integers as decimal strings, byte strings as standard padded base64, addresses as strings with the
node's network prefix. Go writes a nil slice as null, and lotus's CBOR decoders leave empty byte strings
and empty arrays nil, so what Lotus serves from the chain has null for them (empty Params, an empty
Return, a genesis header's Parents); the zero Signature has nil Data too. The writers here therefore
write empty byte strings and empty arrays as null, and the readers accept null, "" and [].

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
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.message import MESSAGE_VERSION, Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import InvalidTipSet, TipSet, TipSetKey

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


def _optional_to_json(value: _T | None, write: Callable[[_T], Any]) -> Any:
    return None if value is None else write(value)


def _optional_from_json(raw: Any, read: Callable[[Any, str], _T], what: str) -> _T | None:
    return None if raw is None else read(raw, what)


def _list_to_json(values: tuple[_T, ...], write: Callable[[_T], Any]) -> list[Any] | None:
    return [write(value) for value in values] if values else None


def ticket_to_json(ticket: Ticket) -> dict[str, Any]:
    return {"VRFProof": bytes_to_json(ticket.vrf_proof)}


def ticket_from_json(raw: Any, what: str = "Ticket") -> Ticket:
    obj = _object(raw, what)
    return Ticket(bytes_from_json(_field(obj, "VRFProof", what), f"{what}.VRFProof"))


def election_proof_to_json(proof: ElectionProof) -> dict[str, Any]:
    return {"WinCount": proof.win_count, "VRFProof": bytes_to_json(proof.vrf_proof)}


def election_proof_from_json(raw: Any, what: str = "ElectionProof") -> ElectionProof:
    obj = _object(raw, what)
    return ElectionProof(
        int_from_json(_field(obj, "WinCount", what), f"{what}.WinCount"),
        bytes_from_json(_field(obj, "VRFProof", what), f"{what}.VRFProof"),
    )


def beacon_entry_to_json(entry: BeaconEntry) -> dict[str, Any]:
    return {"Round": entry.round, "Data": bytes_to_json(entry.data)}


def beacon_entry_from_json(raw: Any, what: str = "BeaconEntry") -> BeaconEntry:
    obj = _object(raw, what)
    return BeaconEntry(
        uint_from_json(_field(obj, "Round", what), f"{what}.Round"),
        bytes_from_json(_field(obj, "Data", what), f"{what}.Data"),
    )


def post_proof_to_json(proof: PoStProof) -> dict[str, Any]:
    return {"PoStProof": proof.proof_type, "ProofBytes": bytes_to_json(proof.proof_bytes)}


def post_proof_from_json(raw: Any, what: str = "PoStProof") -> PoStProof:
    obj = _object(raw, what)
    return PoStProof(
        int_from_json(_field(obj, "PoStProof", what), f"{what}.PoStProof"),
        bytes_from_json(_field(obj, "ProofBytes", what), f"{what}.ProofBytes"),
    )


def block_header_to_json(header: BlockHeader, network: str = DEFAULT_NETWORK) -> dict[str, Any]:
    return {
        "Miner": address_to_json(header.miner, network),
        "Ticket": _optional_to_json(header.ticket, ticket_to_json),
        "ElectionProof": _optional_to_json(header.election_proof, election_proof_to_json),
        "BeaconEntries": _list_to_json(header.beacon_entries, beacon_entry_to_json),
        "WinPoStProof": _list_to_json(header.win_post_proof, post_proof_to_json),
        "Parents": _list_to_json(header.parents, cid_to_json),
        "ParentWeight": bigint_to_json(header.parent_weight),
        "Height": header.height,
        "ParentStateRoot": cid_to_json(header.parent_state_root),
        "ParentMessageReceipts": cid_to_json(header.parent_message_receipts),
        "Messages": cid_to_json(header.messages),
        "BLSAggregate": _optional_to_json(header.bls_aggregate, signature_to_json),
        "Timestamp": header.timestamp,
        "BlockSig": _optional_to_json(header.block_sig, signature_to_json),
        "ForkSignaling": header.fork_signaling,
        "ParentBaseFee": bigint_to_json(header.parent_base_fee),
    }


def block_header_from_json(raw: Any, what: str = "BlockHeader") -> BlockHeader:
    obj = _object(raw, what)

    def get(key: str) -> Any:
        return _field(obj, key, what)

    try:
        return BlockHeader(
            miner=address_from_json(get("Miner"), f"{what}.Miner"),
            ticket=_optional_from_json(get("Ticket"), ticket_from_json, f"{what}.Ticket"),
            election_proof=_optional_from_json(
                get("ElectionProof"), election_proof_from_json, f"{what}.ElectionProof"
            ),
            beacon_entries=tuple(
                _list_from_json(get("BeaconEntries"), beacon_entry_from_json, f"{what}.BeaconEntries")
            ),
            win_post_proof=tuple(
                _list_from_json(get("WinPoStProof"), post_proof_from_json, f"{what}.WinPoStProof")
            ),
            parents=tuple(_list_from_json(get("Parents"), cid_from_json, f"{what}.Parents")),
            parent_weight=bigint_from_json(get("ParentWeight"), f"{what}.ParentWeight"),
            height=int_from_json(get("Height"), f"{what}.Height"),
            parent_state_root=cid_from_json(get("ParentStateRoot"), f"{what}.ParentStateRoot"),
            parent_message_receipts=cid_from_json(
                get("ParentMessageReceipts"), f"{what}.ParentMessageReceipts"
            ),
            messages=cid_from_json(get("Messages"), f"{what}.Messages"),
            bls_aggregate=_optional_from_json(
                get("BLSAggregate"), signature_from_json, f"{what}.BLSAggregate"
            ),
            timestamp=uint_from_json(get("Timestamp"), f"{what}.Timestamp"),
            block_sig=_optional_from_json(get("BlockSig"), signature_from_json, f"{what}.BlockSig"),
            fork_signaling=uint_from_json(get("ForkSignaling"), f"{what}.ForkSignaling"),
            parent_base_fee=bigint_from_json(get("ParentBaseFee"), f"{what}.ParentBaseFee"),
        )
    except DecodeError:
        raise
    except ValueError as exc:
        raise DecodeError(f"{what}: {exc}") from None


def tipset_to_json(tipset: TipSet, network: str = DEFAULT_NETWORK) -> dict[str, Any]:
    return {
        "Cids": tipset_key_to_json(tipset.key),
        "Blocks": [block_header_to_json(block, network) for block in tipset.blocks],
        "Height": tipset.height,
    }


def tipset_from_json(raw: Any, what: str = "TipSet") -> TipSet:
    """Read a tipset as Lotus does: from its Blocks (Cids and Height are derived, not trusted)."""
    obj = _object(raw, what)
    blocks = _list_from_json(_field(obj, "Blocks", what), block_header_from_json, f"{what}.Blocks")
    try:
        return TipSet(tuple(blocks))
    except InvalidTipSet as exc:
        raise DecodeError(f"{what}: {exc}") from None


def receipt_to_json(receipt: MessageReceipt) -> dict[str, Any]:
    return {
        "ExitCode": receipt.exit_code,
        "Return": bytes_to_json(receipt.return_data),
        "GasUsed": receipt.gas_used,
        "EventsRoot": _optional_to_json(receipt.events_root, cid_to_json),
    }


def receipt_from_json(raw: Any, what: str = "MessageReceipt") -> MessageReceipt:
    """Read a receipt; JSON does not carry the encoding version, so it comes back as version 1."""
    obj = _object(raw, what)
    return MessageReceipt(
        exit_code=int_from_json(_field(obj, "ExitCode", what), f"{what}.ExitCode"),
        return_data=bytes_from_json(_field(obj, "Return", what), f"{what}.Return"),
        gas_used=int_from_json(_field(obj, "GasUsed", what), f"{what}.GasUsed"),
        events_root=_optional_from_json(obj.get("EventsRoot"), cid_from_json, f"{what}.EventsRoot"),
    )
