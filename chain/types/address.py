"""Filecoin addresses: a protocol byte and a payload, with a string form per network.

Bytes form: protocol byte || payload. Payloads: ID = uvarint(actor id); secp256k1 and actor =
blake2b-160 of the public key or of the actor data; BLS = the 48-byte compressed G1 public key;
delegated (f4) = uvarint(namespace) || subaddress.

String form: network prefix ('f' mainnet, 't' testnet), protocol digit, then for ID the decimal id,
for f4 the decimal namespace and 'f', and otherwise base32-lower (no padding) of payload || checksum,
where checksum = blake2b-32 over protocol || payload.

Parsing follows go-address (`decode`, `newAddress`, `constants.go`) rule for rule:
- ID strings are parsed like Go's strconv.ParseUint(raw, 10, 63): at most 19 ASCII digits, leading
  zeros accepted (so 't0007' is t07; the string form written back is always canonical), value at most
  2^63-1. 'f018446744073709551615' (2^64-1) is therefore rejected: go-address has rejected IDs of
  2^63 and above since 2021 (commit 02fcaf4, "fix: reject 64bit addresses"); the vectors' note about
  commit 088d2a0 describes the 2020 code. The same bound applies to the bytes form and to f4
  namespaces.
- base32 text must be lower case, unpadded and canonical (no stray trailing bits: go-address
  re-encodes and compares).
- The empty string and b'' are Lotus's "undefined" address; here they are errors, since no chain
  structure holds one.
"""

import base64
import hashlib
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Final

from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bytes
from chain.encoding.schema import DEFAULT_NETWORK, OptionalKind, kind_name, kind_of
from chain.encoding.varint import decode_uvarint, encode_uvarint

if TYPE_CHECKING:
    from chain.crypto.keys import PrivateKey


class Protocol(IntEnum):
    ID = 0
    SECP256K1 = 1
    ACTOR = 2
    BLS = 3
    DELEGATED = 4


MAINNET: Final = "f"
TESTNET: Final = "t"
# filpy runs devnets, whose addresses are written with the test prefix (DEFAULT_NETWORK, 't');
# str(address) uses it.
NETWORKS: Final = (MAINNET, TESTNET)

# Limits from go-address constants.go.
PAYLOAD_HASH_LENGTH: Final = 20
BLS_PUBLIC_KEY_LENGTH: Final = 48
CHECKSUM_LENGTH: Final = 4
MAX_SUBADDRESS_LENGTH: Final = 54
MAX_INT64_STRING_LENGTH: Final = 19
# Address strings parsed recently, kept: a node reads the same senders' and actors' addresses over and
# over (MpoolPush, StateGetActor), and a secp256k1 address costs a base32 round trip and a blake2b
# checksum to parse (about half of decoding a pushed message). Addresses are immutable, so sharing
# one is safe; strings that fail to parse are not kept.
_PARSED_CACHE_SIZE: Final = 8192
MAX_ADDRESS_STRING_LENGTH: Final = 2 + MAX_INT64_STRING_LENGTH + 1 + 93
MAX_ID: Final = (1 << 63) - 1
# go-address UnmarshalCBOR refuses address byte strings longer than this.
MAX_ADDRESS_BYTES: Final = 64
# The Ethereum Address Manager's actor id: the namespace of f410 (Ethereum) addresses.
EAM_NAMESPACE: Final = 10

_B32_ALPHABET: Final = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_DIGITS: Final = frozenset("0123456789")


def _blake2b(data: bytes, size: int) -> bytes:
    return hashlib.blake2b(data, digest_size=size).digest()


def checksum(address_bytes: bytes) -> bytes:
    """The 4-byte checksum written at the end of non-ID address strings."""
    return _blake2b(address_bytes, CHECKSUM_LENGTH)


def _b32_encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _b32_decode(text: str) -> bytes:
    if not set(text) <= _B32_ALPHABET:
        bad = next(ch for ch in text if ch not in _B32_ALPHABET)
        raise DecodeError(f"invalid address encoding: {bad!r} is not in the base32 alphabet")
    try:
        data = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except ValueError:
        raise DecodeError(
            f"invalid address encoding: {len(text)} base32 characters is not a valid length"
        ) from None
    if _b32_encode(data) != text:
        raise DecodeError("invalid address encoding: base32 text is not canonical (non-zero trailing bits)")
    return data


def _parse_decimal(text: str, what: str) -> int:
    # strconv.ParseUint(text, 10, 63): ASCII digits only, no sign, leading zeros allowed.
    if len(text) > MAX_INT64_STRING_LENGTH:
        raise DecodeError(f"invalid address length: {what} has more than {MAX_INT64_STRING_LENGTH} digits")
    if not text or not set(text) <= _DIGITS:
        raise DecodeError(f"invalid address payload: {what} {text!r} is not a decimal number")
    value = int(text)
    if value > MAX_ID:
        raise DecodeError(f"invalid address payload: {what} {value} exceeds 2^63-1")
    return value


def _read_uvarint(payload: bytes, what: str) -> tuple[int, int]:
    value, end = decode_uvarint(payload, 0)
    if value > MAX_ID:
        raise DecodeError(f"invalid address payload: {what} {value} exceeds 2^63-1")
    return value, end


def _check_payload(protocol: int, payload: bytes) -> None:
    if protocol == Protocol.ID:
        try:
            _, end = _read_uvarint(payload, "id")
        except DecodeError as exc:
            raise DecodeError(f"invalid ID address payload: {exc}") from None
        if end != len(payload):
            raise DecodeError(f"invalid address length: ID payload has {len(payload) - end} trailing bytes")
    elif protocol == Protocol.SECP256K1 or protocol == Protocol.ACTOR:
        if len(payload) != PAYLOAD_HASH_LENGTH:
            raise DecodeError(
                f"invalid address length: {Protocol(protocol).name} payload must be {PAYLOAD_HASH_LENGTH}"
                f" bytes, got {len(payload)}"
            )
    elif protocol == Protocol.BLS:
        if len(payload) != BLS_PUBLIC_KEY_LENGTH:
            raise DecodeError(
                f"invalid address length: BLS payload must be {BLS_PUBLIC_KEY_LENGTH} bytes,"
                f" got {len(payload)}"
            )
    elif protocol == Protocol.DELEGATED:
        try:
            _, end = _read_uvarint(payload, "namespace")
        except DecodeError as exc:
            raise DecodeError(f"invalid delegated address payload: {exc}") from None
        if len(payload) - end > MAX_SUBADDRESS_LENGTH:
            raise DecodeError(
                f"invalid address length: delegated subaddress of {len(payload) - end} bytes exceeds"
                f" {MAX_SUBADDRESS_LENGTH}"
            )
    else:
        raise DecodeError(f"unknown address protocol {protocol}")


# Addresses parsed from their bytes form, by those bytes (Address.from_bytes): a chain exchange answer
# or a block's messages name the same few senders and recipients again and again, and an Address is
# immutable, so the parsed value is shared. Emptied when full.
_DECODED: "dict[bytes, Address]" = {}
_DECODED_MAX: Final = 1 << 14  # some 4 MB at most


@dataclass(frozen=True, slots=True, repr=False)
class Address:
    """A Filecoin address; constructing one validates the payload for its protocol (DecodeError)."""

    protocol: Protocol
    payload: bytes

    def __post_init__(self) -> None:
        if type(self.payload) is not bytes:
            raise TypeError(f"address payload must be bytes, got {type(self.payload).__name__}")
        _check_payload(self.protocol, self.payload)
        if type(self.protocol) is not Protocol:
            object.__setattr__(self, "protocol", Protocol(self.protocol))

    # constructors ---------------------------------------------------------------------------------
    @classmethod
    def new_id(cls, actor_id: int) -> "Address":
        if not 0 <= actor_id <= MAX_ID:
            raise ValueError(f"actor id must be in 0..2^63-1, got {actor_id}")
        return cls(Protocol.ID, encode_uvarint(actor_id))

    @classmethod
    def new_secp256k1(cls, public_key: bytes) -> "Address":
        """f1 address of a secp256k1 public key (Lotus hashes the 65-byte uncompressed form)."""
        return cls(Protocol.SECP256K1, _blake2b(public_key, PAYLOAD_HASH_LENGTH))

    @classmethod
    def new_actor(cls, data: bytes) -> "Address":
        """f2 address: blake2b-160 of the data (the init actor hashes creator address || nonce)."""
        return cls(Protocol.ACTOR, _blake2b(data, PAYLOAD_HASH_LENGTH))

    @classmethod
    def new_bls(cls, public_key: bytes) -> "Address":
        return cls(Protocol.BLS, bytes(public_key))

    @classmethod
    def new_delegated(cls, namespace: int, subaddress: bytes) -> "Address":
        if not 0 <= namespace <= MAX_ID:
            raise ValueError(f"namespace must be in 0..2^63-1, got {namespace}")
        if len(subaddress) > MAX_SUBADDRESS_LENGTH:
            raise ValueError(f"subaddress of {len(subaddress)} bytes exceeds {MAX_SUBADDRESS_LENGTH}")
        return cls(Protocol.DELEGATED, encode_uvarint(namespace) + bytes(subaddress))

    @classmethod
    def of_key(cls, key: "PrivateKey") -> "Address":
        """The address a wallet key signs for: f1 (secp256k1), f3 (BLS) or f410 (delegated)."""
        from chain.crypto.keys import KeyType

        if key.type is KeyType.SECP256K1:
            return cls.new_secp256k1(key.public_key)
        if key.type is KeyType.BLS:
            return cls.new_bls(key.public_key)
        return cls.new_delegated(EAM_NAMESPACE, key.eth_address())

    @classmethod
    def from_bytes(cls, data: bytes) -> "Address":
        """Parse the bytes form (protocol byte || payload), as go-address NewFromBytes."""
        if type(data) is bytes and cls is Address:
            known = _DECODED.get(data)
            if known is not None:
                return known
            address = cls._from_bytes(data)
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
            _DECODED[data] = address
            return address
        return cls._from_bytes(data)

    @classmethod
    def _from_bytes(cls, data: bytes) -> "Address":
        if not isinstance(data, bytes | bytearray):
            raise DecodeError(f"address: expected bytes, got {type(data).__name__}")
        if len(data) == 0:
            raise DecodeError("empty address bytes (the undefined address)")
        if len(data) == 1:
            raise DecodeError("invalid address length: a protocol byte without payload")
        protocol = data[0]
        if protocol > Protocol.DELEGATED:
            raise DecodeError(f"unknown address protocol {protocol}")
        return cls(Protocol(protocol), bytes(data[1:]))

    @classmethod
    def parse(cls, text: str, network: str | None = None) -> "Address":
        """Parse the string form; with network given, also require that prefix."""
        address, prefix = parse_with_network(text)
        if network is not None and prefix != network:
            raise DecodeError(f"address {text!r} is for network {prefix!r}, expected {network!r}")
        return address

    # encodings ------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return bytes((self.protocol,)) + self.payload

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def to_cbor(self) -> bytes:
        """The CBOR form of an address is a byte string of its bytes form."""
        return self.to_bytes()

    @classmethod
    def from_cbor(cls, raw: object, what: str = "address") -> "Address":
        data = expect_bytes(raw, what, max_len=MAX_ADDRESS_BYTES)
        try:
            return cls.from_bytes(data)
        except DecodeError as exc:
            raise DecodeError(f"{what}: {exc}") from None

    def to_json(self, network: str = DEFAULT_NETWORK) -> str:
        """Lotus JSON: the string form with the node's network prefix."""
        return self.to_string(network)

    @classmethod
    def from_json(cls, raw: object, what: str = "address") -> "Address":
        if type(raw) is not str:
            raise DecodeError(f"{what}: expected an address string, got {kind_name(raw)}")
        try:
            return cls.parse(raw)
        except DecodeError as exc:
            raise DecodeError(f"{what}: {exc}") from None

    def to_string(self, network: str = DEFAULT_NETWORK) -> str:
        if network not in NETWORKS:
            raise ValueError(f"unknown network prefix {network!r}: expected 'f' or 't'")
        protocol = self.protocol
        if protocol == Protocol.ID:
            return f"{network}0{self.id}"
        cksm = checksum(self.to_bytes())
        if protocol == Protocol.DELEGATED:
            namespace, end = decode_uvarint(self.payload, 0)
            return f"{network}4{namespace}f{_b32_encode(self.payload[end:] + cksm)}"
        return f"{network}{int(protocol)}{_b32_encode(self.payload + cksm)}"

    def __str__(self) -> str:
        """The string form with the devnet ('t') prefix; use to_string(network) to choose."""
        return self.to_string(DEFAULT_NETWORK)

    def __repr__(self) -> str:
        return f"Address({self.to_string(DEFAULT_NETWORK)!r})"

    # accessors ------------------------------------------------------------------------------------
    @property
    def id(self) -> int:
        if self.protocol != Protocol.ID:
            raise ValueError(f"{self} is not an ID address")
        return decode_uvarint(self.payload, 0)[0]

    @property
    def namespace(self) -> int:
        if self.protocol != Protocol.DELEGATED:
            raise ValueError(f"{self} is not a delegated address")
        return decode_uvarint(self.payload, 0)[0]

    @property
    def subaddress(self) -> bytes:
        if self.protocol != Protocol.DELEGATED:
            raise ValueError(f"{self} is not a delegated address")
        return self.payload[decode_uvarint(self.payload, 0)[1] :]

    def is_key_address(self) -> bool:
        """Whether signatures can be checked against this address without resolving it first."""
        return self.protocol in (Protocol.SECP256K1, Protocol.BLS, Protocol.DELEGATED)


def parse_with_network(text: str) -> tuple[Address, str]:
    """Parse an address string; return it and its network prefix ('f' or 't')."""
    if not isinstance(text, str):
        raise DecodeError(f"address: expected a string, got {type(text).__name__}")
    return _parse_with_network(text)


@lru_cache(maxsize=_PARSED_CACHE_SIZE)
def _parse_with_network(text: str) -> tuple[Address, str]:
    if len(text) == 0:
        raise DecodeError("empty address string (the undefined address)")
    if len(text) > MAX_ADDRESS_STRING_LENGTH or len(text) < 3:
        raise DecodeError(f"invalid address length: {len(text)} characters in {text[:120]!r}")
    network = text[0]
    if network not in NETWORKS:
        raise DecodeError(f"unknown address network {network!r} in {text!r}: expected 'f' or 't'")
    digit = text[1]
    if digit not in "01234":
        raise DecodeError(f"unknown address protocol {digit!r} in {text!r}")
    protocol = Protocol(int(digit))
    raw = text[2:]
    if protocol == Protocol.ID:
        return Address(protocol, encode_uvarint(_parse_decimal(raw, "id"))), network

    if protocol == Protocol.DELEGATED:
        namespace_text, sep, rest = raw.partition("f")
        if not sep:
            raise DecodeError(f"invalid address payload: delegated address {text!r} has no 'f' separator")
        namespace = _parse_decimal(namespace_text, "namespace")
        data = _b32_decode(rest)
        if len(data) < CHECKSUM_LENGTH:
            raise DecodeError(f"invalid address length: {text!r} is too short to hold a checksum")
        subaddress, cksm = data[:-CHECKSUM_LENGTH], data[-CHECKSUM_LENGTH:]
        if len(subaddress) > MAX_SUBADDRESS_LENGTH:
            raise DecodeError(
                f"invalid address length: delegated subaddress of {len(subaddress)} bytes exceeds"
                f" {MAX_SUBADDRESS_LENGTH}"
            )
        payload = encode_uvarint(namespace) + subaddress
    else:
        data = _b32_decode(raw)
        if len(data) < CHECKSUM_LENGTH:
            raise DecodeError(f"invalid address length: {text!r} is too short to hold a checksum")
        payload, cksm = data[:-CHECKSUM_LENGTH], data[-CHECKSUM_LENGTH:]
        _check_payload(protocol, payload)

    if checksum(bytes((protocol,)) + payload) != cksm:
        raise DecodeError(f"invalid address checksum in {text!r}")
    return Address(protocol, payload), network


class UndefAddressKind(OptionalKind):
    """An address Go leaves as address.Undef when there is none (a channel whose creation is pending,
    a miner with no worker change pending), which Lotus JSON writes as "<empty>"; None here, and a
    null reads as none too."""

    label = "Address"
    UNDEF: Final = "<empty>"

    def __init__(self) -> None:
        super().__init__(kind_of(Address))

    def to_json(self, value: Any, network: str) -> Any:
        return self.UNDEF if value is None else self.inner.to_json(value, network)

    def from_json(self, raw: Any, what: str) -> Any:
        return None if raw is None or raw == self.UNDEF else self.inner.from_json(raw, what)

    def json_schema(self) -> dict[str, Any]:
        return {"title": "Address", "type": "string", "examples": ["f01234", self.UNDEF]}


AddressOrUndef = Annotated[Address | None, UndefAddressKind()]
