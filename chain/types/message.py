"""Messages and signed messages (lotus chain/types/message.go, signedmessage.go).

Message CBOR: [Version, To, From, Nonce, Value, GasLimit, GasFeeCap, GasPremium, Method, Params] with
addresses as their bytes and token amounts as Filecoin big integers. SignedMessage CBOR: [Message,
Signature bytes].

Identity: a message's CID is the blake2b-256 dag-cbor CID of its bytes. A signed message is known by
its own CID when secp256k1- (or delegated-) signed, but by the unsigned message's CID when BLS-signed,
because blocks carry BLS messages without their signatures (the block's BLSAggregate stands for them).

Both classes cache their serialized bytes and CID (CachedCbor): message validation, the mempool and
block assembly ask for the CID many times.
"""

from typing import Any, Final

from chain.crypto.keys import PrivateKey
from chain.crypto.signature import Signature, SigType, verify
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import (
    MAX_BYTES_LENGTH,
    Bytes,
    CachedCbor,
    Int64,
    TokenAmount,
    Uint64,
    cid_to_json,
)
from chain.types.address import Address

MESSAGE_VERSION: Final = 0
# cbor-gen's ByteArrayMaxLen, the limit lotus applies when decoding Params.
MAX_PARAMS_LENGTH: Final = MAX_BYTES_LENGTH
# The largest message (its own CBOR, without a signature) a block may carry; the VM refuses a larger
# one. One gossipsub RPC (1 MiB): a message that cannot be gossiped reaches a block only through its
# own miner. Lotus has no consensus limit (its pool's is 64 KiB); filpy needs one above Lotus's pool
# because vanilla seal proofs are 283-929 KB each (chain/params.py for the pool's, docs/vm.md).
MAX_MESSAGE_SIZE: Final = 1 << 20
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


class Message(CachedCbor, kw_only=True):
    version: Uint64 = MESSAGE_VERSION
    to: Address
    from_: Address
    nonce: Uint64
    value: TokenAmount
    gas_limit: Int64
    gas_fee_cap: TokenAmount
    gas_premium: TokenAmount
    method: Uint64
    params: Bytes = b""

    @classmethod
    def from_bytes(cls, data: bytes) -> "Message":
        """Decode a message block; as lotus DecodeMessage, only version 0 is accepted."""
        msg = super().from_bytes(data)
        if msg.version != MESSAGE_VERSION:
            raise DecodeError(f"Message.Version: unsupported message version {msg.version}")
        return msg

    def json_extra(self, network: str) -> dict[str, Any]:
        return {"CID": cid_to_json(self.cid())}

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
        if self.chain_length() > MAX_MESSAGE_SIZE:
            raise InvalidMessage(f"message of {self.chain_length()} bytes exceeds {MAX_MESSAGE_SIZE} bytes")
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


class SignedMessage(CachedCbor):
    message: Message
    signature: Signature

    def to_bytes(self) -> bytes:
        data: bytes | None = self.__dict__.get("_bytes_")
        if data is None:
            # The array header, the message's own (cached) bytes, then the signature.
            data = _SIGNED_HEADER + self.message.to_bytes() + dagcbor.encode(self.signature.to_bytes())
            self.__dict__["_bytes_"] = data
        return data

    def keep_bytes(self, data: bytes) -> None:
        super().keep_bytes(data)
        # The bytes are canonical, so the message's own encoding sits between the array header and the
        # signature: keep it, sparing a re-encode when the message CID is asked for (verification).
        signature = 1 + len(self.signature.data)  # its bytes form: the type byte, then the data
        tail = len(dagcbor.bytes_head(signature)) + signature
        self.message.keep_bytes(data[1:-tail])

    def cid(self) -> CID:
        """The CID Lotus knows this message by: the unsigned CID if BLS-signed, else its own."""
        cid: CID | None = self.__dict__.get("_cid_")
        if cid is None:
            bls = self.signature.type == SigType.BLS
            cid = self.message.cid() if bls else CID.hash_of(self.to_bytes())
            self.__dict__["_cid_"] = cid
        return cid

    def json_extra(self, network: str) -> dict[str, Any]:
        return {"CID": cid_to_json(self.cid())}

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
