"""Filecoin signatures: the type-tagged byte form and verification against a signer's address.

What each type signs (lotus lib/sigs): secp256k1 signs blake2b-256(data) and is 65 bytes r||s||v with
the recovery id v (0..3) last; BLS signs data itself with the min-pk scheme (G2 signatures of 96
bytes, DST BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_, i.e. blspy BasicSchemeMPL); delegated
(Ethereum accounts, f410) signs keccak-256(data) with secp256k1. For a message, data is the message
CID bytes; for a block header, its signing bytes.

Verification never trusts the signature's shape: every malformed input ends in SignatureError with a
message naming what is wrong. This module sits below chain.types, so it sees addresses only through
the KeyAddress protocol (protocol number and payload), which chain.types.address.Address satisfies.

Many BLS signatures at once (`verify_bls_batch`, in the check worker of a catch-up) are verified
together with random weights through pyblst (blst's points with scalar multiplication and Miller loops,
which blspy does not offer); single signatures and message aggregates stay with blspy, as fast for
them. pyblst refuses the encodings blspy refuses: not canonical, not on the curve, not in the
subgroup (tests/chain/test_crypto_bls_batch.py builds such points).
"""

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any, Final, Protocol

import coincurve
from blspy import BasicSchemeMPL, G1Element, G2Element
from Crypto.Hash import keccak
from pyblst import BlstFP12Element, BlstP1Element, BlstP2Element, final_verify, miller_loop

from chain.crypto.msm import multi_scalar_mul
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bytes
from chain.encoding.schema import bytes_from_json, bytes_to_json, json_object


class SigType(IntEnum):
    SECP256K1 = 1
    BLS = 2
    DELEGATED = 3


_SIG_TYPES: Final = {int(t): t for t in (SigType.SECP256K1, SigType.BLS, SigType.DELEGATED)}

# go-state-types crypto.SignatureMaxLength: the whole byte form, type byte included.
SIGNATURE_MAX_LENGTH: Final = 200
SECP256K1_SIGNATURE_LENGTH: Final = 65
BLS_SIGNATURE_LENGTH: Final = 96
BLS_PUBLIC_KEY_LENGTH: Final = 48
# Compressed encodings of the points at infinity (flag bits 0b11 then zeros).
BLS_G1_INFINITY: Final = b"\xc0" + bytes(47)
BLS_G2_INFINITY: Final = b"\xc0" + bytes(95)

# Address protocol numbers (chain.types.address.Protocol), repeated here to keep imports downward.
_ID, _SECP256K1, _BLS, _DELEGATED = 0, 1, 3, 4
_EAM_NAMESPACE_PREFIX: Final = b"\x0a"  # uvarint(10): f410 payloads start with it

# Filecoin uses the basic scheme (distinct messages, public key not prepended to the message).
_SCHEME: Final = BasicSchemeMPL
BLS_DST: Final = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_"
BLS_G1_GENERATOR: Final = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
)
# A batch that fails is verified again one signature at a time: the bound keeps that cost in check.
BLS_BATCH_MAX: Final = 64
# Random weights of 64 bits: a batch with a bad signature passes with probability at most 2^-64.
_BATCH_WEIGHT_BOUND: Final = 2**64 - 1


class SignatureError(ValueError):
    """A signature that is malformed, of the wrong kind for its signer, or does not verify."""


class KeyAddress(Protocol):
    """What verification needs of an address: its protocol number and payload."""

    @property
    def protocol(self) -> int: ...

    @property
    def payload(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature as Filecoin carries it: type byte || data.

    Type 0 is allowed only so that Lotus's zero-value Signature{} (encoded as the single byte 00) can be
    written, as in lotus's TestInteropBH; decoding refuses it, as go-state-types does.
    """

    type: int
    data: bytes

    def __post_init__(self) -> None:
        if type(self.data) is not bytes:
            raise TypeError(f"signature data must be bytes, got {type(self.data).__name__}")
        if not 0 <= self.type <= 0xFF:
            raise ValueError(f"signature type {self.type} does not fit in a byte")
        if len(self.data) + 1 > SIGNATURE_MAX_LENGTH:
            raise ValueError(f"signature of {len(self.data) + 1} bytes exceeds {SIGNATURE_MAX_LENGTH}")

    def to_bytes(self) -> bytes:
        return bytes((self.type,)) + self.data

    @classmethod
    def from_bytes(cls, raw: bytes, what: str = "signature") -> "Signature":
        if not isinstance(raw, bytes | bytearray):
            raise DecodeError(f"{what}: expected bytes, got {type(raw).__name__}")
        if len(raw) == 0:
            raise DecodeError(f"{what}: empty signature bytes")
        if len(raw) > SIGNATURE_MAX_LENGTH:
            raise DecodeError(f"{what}: {len(raw)} bytes exceeds the limit of {SIGNATURE_MAX_LENGTH}")
        kind = _SIG_TYPES.get(raw[0])
        if kind is None:
            raise DecodeError(f"{what}: invalid signature type {raw[0]}")
        return cls(kind, bytes(raw[1:]))

    def to_cbor(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "signature") -> "Signature":
        return cls.from_bytes(expect_bytes(raw, what), what)

    def to_json(self, network: str = "") -> dict[str, Any]:
        """Lotus JSON: {"Type": 1 | 2 | 3, "Data": base64}; Lotus's zero signature has null Data."""
        return {"Type": int(self.type), "Data": bytes_to_json(self.data)}

    @classmethod
    def from_json(cls, raw: Any, what: str = "Signature") -> "Signature":
        obj = json_object(raw, what)
        if "Type" not in obj or "Data" not in obj:
            raise DecodeError(f"{what}: missing field {'Type' if 'Type' not in obj else 'Data'!r}")
        kind = obj["Type"]
        if type(kind) is not int or kind not in (SigType.SECP256K1, SigType.BLS, SigType.DELEGATED):
            raise DecodeError(f"{what}.Type: invalid signature type {kind!r}")
        data = bytes_from_json(obj["Data"], f"{what}.Data")
        try:
            return cls(SigType(kind), data)
        except ValueError as exc:
            raise DecodeError(f"{what}: {exc}") from None


# hashing ------------------------------------------------------------------------------------------


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def keccak_256(data: bytes) -> bytes:
    """Ethereum's keccak-256 (the pre-standard padding, not SHA3-256)."""
    return keccak.new(digest_bits=256, data=data).digest()


def eth_address_of(public_key: bytes) -> bytes:
    """The 20-byte Ethereum address of a 65-byte uncompressed secp256k1 public key."""
    if len(public_key) != 65 or public_key[0] != 0x04:
        raise ValueError("an Ethereum address needs a 65-byte uncompressed secp256k1 public key")
    return keccak_256(public_key[1:])[12:]


# secp256k1 ----------------------------------------------------------------------------------------


def recover_secp256k1(signature: bytes, digest: bytes) -> bytes:
    """The 65-byte uncompressed public key that made signature (r||s||v) over a 32-byte digest."""
    if len(signature) != SECP256K1_SIGNATURE_LENGTH:
        raise SignatureError(
            f"secp256k1 signature must be {SECP256K1_SIGNATURE_LENGTH} bytes, got {len(signature)}"
        )
    if signature[64] > 3:
        raise SignatureError(f"secp256k1 signature has invalid recovery id {signature[64]}")
    try:
        key = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except ValueError as exc:
        raise SignatureError(f"secp256k1 signature does not recover a public key: {exc}") from None
    return key.format(compressed=False)


def sign_secp256k1(secret: coincurve.PrivateKey, digest: bytes) -> bytes:
    """RFC 6979 deterministic, low-s signature r||s||v over a 32-byte digest."""
    return secret.sign_recoverable(digest, hasher=None)


# BLS ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def bls_public_key(data: bytes) -> G1Element:
    """Parse and check a compressed G1 public key (cached: the same keys sign again and again)."""
    if len(data) != BLS_PUBLIC_KEY_LENGTH:
        raise SignatureError(f"BLS public key must be {BLS_PUBLIC_KEY_LENGTH} bytes, got {len(data)}")
    if data == BLS_G1_INFINITY:
        # blst's key validation refuses the identity, which would verify any identity signature.
        raise SignatureError("BLS public key is the point at infinity")
    try:
        return G1Element.from_bytes(data)
    except (ValueError, RuntimeError) as exc:
        raise SignatureError(f"invalid BLS public key: {exc}") from None


def bls_signature_point(data: bytes) -> G2Element:
    if len(data) != BLS_SIGNATURE_LENGTH:
        raise SignatureError(f"BLS signature must be {BLS_SIGNATURE_LENGTH} bytes, got {len(data)}")
    try:
        return G2Element.from_bytes(data)
    except (ValueError, RuntimeError) as exc:
        raise SignatureError(f"invalid BLS signature point: {exc}") from None


def verify_bls(signature: bytes, public_key: bytes, message: bytes) -> bool:
    return bool(_SCHEME.verify(bls_public_key(public_key), message, bls_signature_point(signature)))


def _bls_valid(signature: bytes, public_key: bytes, message: bytes) -> bool:
    try:
        return verify_bls(signature, public_key, message)
    except SignatureError:
        return False


@lru_cache(maxsize=8192)
def _blst_public_key(data: bytes) -> BlstP1Element:
    """bls_public_key's checks, then a pyblst point (cached likewise; a refused key raises ValueError,
    SignatureError from blspy's checks)."""
    bls_public_key(data)  # the length, the point at infinity and blspy's own parsing
    return BlstP1Element.uncompress(data)  # in the subgroup, as blspy checked


_G1: Final = BlstP1Element.uncompress(BLS_G1_GENERATOR)


def verify_bls_batch(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Each (signature, public key, message)'s outcome, as verify_bls would give it (False where it
    raises SignatureError), at a lower cost per signature than one by one.

    The signatures are checked together, up to BLS_BATCH_MAX at a time, with random weights r_i from
    the CSPRNG (r_1 = 1): e(g1, sum r_i sig_i) == prod e(r_i pk_i, H(m_i)), the pairings of one key
    taken as one, e(pk, sum r_i H(m_i)); the weighted sums share their doublings (chain.crypto.msm).
    When every signature is valid that holds; when one is not, it holds with probability at most
    2^-64, since every point was checked to be in its prime-order subgroup. A batch that fails, and
    any input pyblst refuses to parse, is verified one by one with verify_bls, so exactly the bad
    ones come out False.
    """
    outcomes: list[bool] = []
    for start in range(0, len(items), BLS_BATCH_MAX):
        outcomes += _verify_bls_chunk(items[start : start + BLS_BATCH_MAX])
    return outcomes


def _verify_bls_chunk(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    outcomes = [False] * len(items)
    batched: list[int] = []
    signatures: list[BlstP2Element] = []
    weights: list[int] = []
    # Per public key, its point and the weighted hashes of what it signed: e(pk, sum r_i H(m_i)) is one
    # Miller loop per key, not one per signature (a block's three signatures share its worker's key).
    by_key: dict[bytes, tuple[BlstP1Element, list[BlstP2Element], list[int]]] = {}
    for i, (signature, public_key, message) in enumerate(items):
        try:
            if len(signature) != BLS_SIGNATURE_LENGTH:
                raise ValueError("not a signature's length")
            key = _blst_public_key(public_key)
            point = BlstP2Element.uncompress(signature)
        except (SignatureError, ValueError):
            outcomes[i] = _bls_valid(signature, public_key, message)  # blspy says what it refuses
            continue
        weight = secrets.randbelow(_BATCH_WEIGHT_BOUND) + 1 if batched else 1
        signatures.append(point)
        weights.append(weight)
        _, hashes, key_weights = by_key.setdefault(public_key, (key, [], []))
        hashes.append(BlstP2Element.hash_to_group(message, BLS_DST))
        key_weights.append(weight)
        batched.append(i)
    if not batched:
        return outcomes
    # The weighted sums share their doublings (chain.crypto.msm): a 64-bit weight costs ~45 us there,
    # ~167 us by scalar_mul, which walks 256 bits whatever the scalar.
    pairings: BlstFP12Element | None = None  # prod e(r_i pk_i, H(m_i)), before the final exponentiation
    for key, hashes, key_weights in by_key.values():
        if len(hashes) == 1:  # r pk: a multiplication in G1 costs half one in G2
            loop = miller_loop(_weighted_sum([key], key_weights), hashes[0])
        else:
            loop = miller_loop(key, _weighted_sum(hashes, key_weights))
        pairings = loop if pairings is None else pairings * loop
    if final_verify(miller_loop(_G1, _weighted_sum(signatures, weights)), pairings):
        for i in batched:
            outcomes[i] = True
    else:
        for i in batched:
            outcomes[i] = _bls_valid(*items[i])
    return outcomes


def _weighted_sum(points: Sequence[Any], weights: Sequence[int]) -> Any:
    total = multi_scalar_mul(points, weights)
    if total is None:  # the weights are at least 1 and there is a point
        raise AssertionError("no weighted point to sum")
    return total


def aggregate_bls(signatures: Sequence[Signature]) -> Signature:
    """One BLS signature standing for all given ones; no signatures gives the identity point, as the
    block producer in Lotus writes for a block without BLS messages."""
    points = []
    for i, sig in enumerate(signatures):
        if sig.type != SigType.BLS:
            raise SignatureError(f"signature {i} is of type {sig.type}, not BLS")
        points.append(bls_signature_point(sig.data))
    return Signature(SigType.BLS, bytes(_SCHEME.aggregate(points)))


def verify_bls_aggregate(
    signature: Signature, public_keys: Sequence[bytes], messages: Sequence[bytes]
) -> None:
    """Check an aggregate over (public key, message) pairs; raise SignatureError if it fails.

    As Lotus's VerifyBlsAggregate: with no messages there is nothing to check. Messages must be
    distinct (the basic scheme's rule; a block cannot include the same message twice anyway).
    """
    if signature.type != SigType.BLS:
        raise SignatureError(f"aggregate signature is of type {signature.type}, not BLS")
    if len(public_keys) != len(messages):
        raise SignatureError(f"{len(public_keys)} public keys for {len(messages)} messages")
    point = bls_signature_point(signature.data)
    if not messages:
        return
    if len(set(messages)) != len(messages):
        raise SignatureError("BLS aggregate covers the same message more than once")
    keys = [bls_public_key(pk) for pk in public_keys]
    if not _SCHEME.aggregate_verify(keys, list(messages), point):
        raise SignatureError("BLS aggregate signature does not verify")


# verification against an address -------------------------------------------------------------------


def verify(signature: Signature, signer: KeyAddress, data: bytes) -> None:
    """Check that signer's key signed data; raise SignatureError saying why not (lotus sigs.Verify)."""
    protocol = signer.protocol
    if protocol == _ID:
        raise SignatureError("ID addresses must be resolved to a key address before verifying a signature")
    kind = signature.type
    if kind == SigType.SECP256K1:
        if protocol != _SECP256K1:
            raise SignatureError(f"secp256k1 signature for an address of protocol {protocol}")
        public_key = recover_secp256k1(signature.data, blake2b_256(data))
        if hashlib.blake2b(public_key, digest_size=20).digest() != signer.payload:
            raise SignatureError("secp256k1 signature was not made by the signer's key")
    elif kind == SigType.BLS:
        if protocol != _BLS:
            raise SignatureError(f"BLS signature for an address of protocol {protocol}")
        if not verify_bls(signature.data, signer.payload, data):
            raise SignatureError("BLS signature does not verify against the signer's key")
    elif kind == SigType.DELEGATED:
        if protocol != _DELEGATED or not signer.payload.startswith(_EAM_NAMESPACE_PREFIX):
            raise SignatureError("delegated signature for an address that is not an f410 address")
        public_key = recover_secp256k1(signature.data, keccak_256(data))
        if _EAM_NAMESPACE_PREFIX + eth_address_of(public_key) != signer.payload:
            raise SignatureError("delegated signature was not made by the signer's key")
    else:
        raise SignatureError(f"cannot verify a signature of unsupported type {kind}")


def is_valid(signature: Signature, signer: KeyAddress, data: bytes) -> bool:
    try:
        verify(signature, signer, data)
    except SignatureError:
        return False
    return True
