"""Messages and signed messages (lotus chain/types/message.go, signedmessage.go).

Message CBOR: [Version, To, From, Nonce, Value, GasLimit, GasFeeCap, GasPremium, Method, Params] with
addresses as their bytes and token amounts as Filecoin big integers. SignedMessage CBOR: [Message,
Signature bytes].

Identity: a message's CID is the blake2b-256 dag-cbor CID of its bytes. A signed message is known by
its own CID when secp256k1- (or delegated-) signed, but by the unsigned message's CID when BLS-signed,
because blocks carry BLS messages without their signatures (the block's BLSAggregate stands for them).

Both classes cache their serialized bytes and CID: they are frozen, so the cache cannot go stale, and
message validation, the mempool and block assembly ask for the CID many times.
"""

from dataclasses import dataclass, field
from typing import Any, Final

from chain.crypto.keys import PrivateKey
from chain.crypto.signature import Signature, SigType, verify
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    expect_bigint,
    expect_bytes,
    expect_int,
    expect_tuple,
    expect_uint,
)
from chain.types.address import Address

MESSAGE_VERSION: Final = 0
# cbor-gen's ByteArrayMaxLen, the limit lotus applies when decoding Params.
MAX_PARAMS_LENGTH: Final = 2 << 20
# lotus build/buildconstants: BlockGasLimit and the total supply (FilBase * FilecoinPrecision); the
# same on every network.
BLOCK_GAS_LIMIT: Final = 10_000_000_000
TOTAL_FILECOIN: Final = 2_000_000_000 * 10**18
# lotus buildconstants.ZeroAddress: the BLS address of the identity point, refused as a recipient.
ZERO_ADDRESS: Final = Address.parse(
    "f3yaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaby2smx7a"
)
_SIGNED_HEADER: Final = b"\x82"


class InvalidMessage(ValueError):
    """A well-formed message that breaks a rule for inclusion in a block."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    version: int = MESSAGE_VERSION
    to: Address
    from_: Address
    nonce: int
    value: int
    gas_limit: int
    gas_fee_cap: int
    gas_premium: int
    method: int
    params: bytes = b""
    _bytes: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _cid: CID | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (
            0 <= self.version <= UINT64_MAX
            and 0 <= self.nonce <= UINT64_MAX
            and 0 <= self.method <= UINT64_MAX
            and INT64_MIN <= self.gas_limit <= INT64_MAX
        ):
            raise ValueError(
                "message fields out of range: Version, Nonce and Method are uint64, GasLimit is int64"
            )
        if type(self.params) is not bytes:
            raise TypeError(f"message params must be bytes, got {type(self.params).__name__}")

    # encodings ------------------------------------------------------------------------------------
    def to_cbor(self) -> list[Any]:
        return [
            self.version,
            self.to.to_bytes(),
            self.from_.to_bytes(),
            self.nonce,
            encode_bigint(self.value),
            self.gas_limit,
            encode_bigint(self.gas_fee_cap),
            encode_bigint(self.gas_premium),
            self.method,
            self.params,
        ]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "Message") -> "Message":
        (version, to, from_, nonce, value, gas_limit, fee_cap, premium, method, params) = expect_tuple(
            raw, 10, what
        )
        return cls(
            version=expect_uint(version, f"{what}.Version"),
            to=Address.from_cbor(to, f"{what}.To"),
            from_=Address.from_cbor(from_, f"{what}.From"),
            nonce=expect_uint(nonce, f"{what}.Nonce"),
            value=expect_bigint(value, f"{what}.Value"),
            gas_limit=expect_int(gas_limit, f"{what}.GasLimit"),
            gas_fee_cap=expect_bigint(fee_cap, f"{what}.GasFeeCap"),
            gas_premium=expect_bigint(premium, f"{what}.GasPremium"),
            method=expect_uint(method, f"{what}.Method"),
            params=expect_bytes(params, f"{what}.Params", max_len=MAX_PARAMS_LENGTH),
        )

    def to_bytes(self) -> bytes:
        data = self._bytes
        if data is None:
            data = dagcbor.encode(self.to_cbor())
            object.__setattr__(self, "_bytes", data)
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> "Message":
        """Decode a message block; as lotus DecodeMessage, only version 0 is accepted."""
        msg = cls.from_cbor(dagcbor.decode(data))
        if msg.version != MESSAGE_VERSION:
            raise DecodeError(f"Message.Version: unsupported message version {msg.version}")
        object.__setattr__(msg, "_bytes", bytes(data))  # strict decoding means data is canonical
        return msg

    def cid(self) -> CID:
        cid = self._cid
        if cid is None:
            cid = CID.hash_of(self.to_bytes())
            object.__setattr__(self, "_cid", cid)
        return cid

    def signing_bytes(self) -> bytes:
        """What a sender signs: the message CID bytes."""
        return self.cid().bytes

    # economics ------------------------------------------------------------------------------------
    def chain_length(self) -> int:
        return len(self.to_bytes())

    def required_funds(self) -> int:
        """The most the message can cost in gas: GasFeeCap * GasLimit."""
        return self.gas_fee_cap * self.gas_limit

    def effective_gas_premium(self, base_fee: int) -> int:
        """The premium the block producer gets: GasPremium capped at GasFeeCap - BaseFee (>= 0)."""
        return min(self.gas_premium, max(self.gas_fee_cap - base_fee, 0))

    def validate_for_block_inclusion(self, min_gas: int) -> None:
        """Syntax rules for a message in a block (lotus Message.ValidForBlockInclusion, nv >= 18).

        min_gas is the gas that storing the message on chain costs (the pricelist's OnChainMessage).
        """
        if self.version != MESSAGE_VERSION:
            raise InvalidMessage(f"message version {self.version} is unsupported")
        if self.to == ZERO_ADDRESS:
            raise InvalidMessage("'To' is the zero address")
        if self.value < 0:
            raise InvalidMessage("'Value' cannot be negative")
        if self.value > TOTAL_FILECOIN:
            raise InvalidMessage("'Value' cannot be greater than the total Filecoin supply")
        if self.gas_fee_cap < 0:
            raise InvalidMessage("'GasFeeCap' cannot be negative")
        if self.gas_premium < 0:
            raise InvalidMessage("'GasPremium' cannot be negative")
        if self.gas_premium > self.gas_fee_cap:
            raise InvalidMessage("'GasFeeCap' is less than 'GasPremium'")
        if self.gas_limit > BLOCK_GAS_LIMIT:
            raise InvalidMessage(f"'GasLimit' {self.gas_limit} exceeds the block gas limit {BLOCK_GAS_LIMIT}")
        if self.gas_limit <= 0:
            raise InvalidMessage(f"'GasLimit' {self.gas_limit} must be positive")
        if self.gas_limit < min_gas:
            raise InvalidMessage(
                f"'GasLimit' {self.gas_limit} is less than the cost of storing the message on chain {min_gas}"
            )


@dataclass(frozen=True, slots=True)
class SignedMessage:
    message: Message
    signature: Signature
    _bytes: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _cid: CID | None = field(default=None, init=False, repr=False, compare=False)

    def to_cbor(self) -> list[Any]:
        return [self.message.to_cbor(), self.signature.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SignedMessage") -> "SignedMessage":
        message, signature = expect_tuple(raw, 2, what)
        return cls(
            Message.from_cbor(message, f"{what}.Message"), Signature.from_cbor(signature, f"{what}.Signature")
        )

    def to_bytes(self) -> bytes:
        data = self._bytes
        if data is None:
            data = _SIGNED_HEADER + self.message.to_bytes() + dagcbor.encode(self.signature.to_bytes())
            object.__setattr__(self, "_bytes", data)
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> "SignedMessage":
        data = bytes(data)
        signed = cls.from_cbor(dagcbor.decode(data))
        object.__setattr__(signed, "_bytes", data)
        # The input is canonical, so the message's own encoding sits between the array header and the
        # signature: keep it, sparing a re-encode when the message CID is asked for (verification).
        tail = len(dagcbor.encode(signed.signature.to_bytes()))
        object.__setattr__(signed.message, "_bytes", data[1:-tail])
        return signed

    def cid(self) -> CID:
        """The CID Lotus knows this message by: the unsigned CID if BLS-signed, else its own."""
        cid = self._cid
        if cid is None:
            bls = self.signature.type == SigType.BLS
            cid = self.message.cid() if bls else CID.hash_of(self.to_bytes())
            object.__setattr__(self, "_cid", cid)
        return cid

    def chain_length(self) -> int:
        """Bytes the message takes on chain: a BLS message is stored without its signature."""
        if self.signature.type == SigType.BLS:
            return self.message.chain_length()
        return len(self.to_bytes())

    def verify_signature(self, signer: Address) -> None:
        """Check the signature against signer, the sender's key address (resolve ID senders first);
        raises chain.crypto.signature.SignatureError."""
        verify(self.signature, signer, self.message.signing_bytes())


def sign_message(message: Message, key: PrivateKey) -> SignedMessage:
    """Sign a message with a wallet key (over its CID bytes, as lotus wallet does)."""
    return SignedMessage(message, key.sign(message.signing_bytes()))
