"""A drand-compatible chained BLS beacon: chain info, entry verification, rounds for epochs, a signer.

drand's "pedersen-bls-chained" scheme (the League of Entropy mainnet's, which Filecoin used until
quicknet): the group's public key is a BLS12-381 G1 point (48 bytes compressed), each round's signature
a G2 point (96 bytes) over

    message(round) = sha256(signature of round-1 || round as uint64 big-endian)

with the basic scheme's DST `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_` (blspy BasicSchemeMPL, the
same as Filecoin's own BLS signatures). Round 0 is the chain's genesis: its "signature" is the group
hash (drand's genesis seed), so round 1 signs sha256(group hash || 1). drand's randomness of a round
is sha256(signature); Filecoin does not use it: a block's BeaconEntry carries the signature as Data,
and draws hash that with blake2b (chain/crypto/randomness.py).

The chain info (drand's `/info`) names a chain: public key, period, genesis time, group hash, scheme;
its hash is sha256(uint32-BE period || int64-BE genesis time || public key || group hash [|| beacon ID
unless "default"]), which is also the gossip topic drand publishes rounds on. `tests/consensus/
test_drand.py` checks all of this against the League of Entropy mainnet's published chain info and
rounds.

Rounds for epochs are Lotus's (chain/beacon/drand MaxBeaconRoundForEpoch, network version 16 on): the
entry an epoch uses is the last round out at the start of the epoch before it,

    t = filecoin genesis time + (epoch - 1) x block delay
    round = 1 if t < drand genesis time, else (t - drand genesis time) // period + 1

A block carries one entry per epoch since its parent, so a chained beacon needs one round per epoch:
its period must equal the block delay (Filecoin mainnet: 30 s both).

A filpy network that runs its own beacon (`DrandKey`: one node holds the secret key, made with the
genesis) starts the drand chain at the Filecoin genesis time with period = block delay, and its genesis
block carries round 0 = (0, group hash) instead of Lotus's 32 zero bytes; every later entry then
verifies from the genesis on, also the first block's (Lotus skips checking a chained beacon's entries
on top of the genesis). The group hash of such a one-signer chain is `single_signer_group_hash`.
"""

import hashlib
import secrets
import struct
from collections.abc import Iterable
from typing import Annotated, Any, Final, Protocol, Self

from blspy import BasicSchemeMPL, G1Element, G2Element
from blspy import PrivateKey as BlsSecret

from chain.consensus.beacon import InvalidBeaconEntry
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BytesKind, Int64, IntKind, LotusJson, Name, kind_name
from chain.store.lru import Lru
from chain.types.beacon import BeaconEntry

CHAINED_SCHEME: Final = "pedersen-bls-chained"
DEFAULT_BEACON_ID: Final = "default"
PUBLIC_KEY_SIZE: Final = 48
SIGNATURE_SIZE: Final = 96
HASH_SIZE: Final = 32
SECRET_KEY_SIZE: Final = 32
# How many verified rounds a beacon remembers, so that an entry seen in gossip, in a block and again in
# its validation is checked once (Lotus keeps 1024 too).
VERIFIED_CACHE: Final = 1024
_GROUP_TAG: Final = b"filpy/drand/single-signer-group/v1"


class HexBytesKind(BytesKind):
    """Bytes written as lower-case hex in JSON, as drand's chain info and HTTP API write them."""

    def to_json(self, value: Any, network: str) -> str:
        return bytes(value).hex()

    def from_json(self, raw: Any, what: str) -> bytes:
        if type(raw) is not str:
            raise DecodeError(f"{what}: expected hex text, got {kind_name(raw)}")
        try:
            data = bytes.fromhex(raw)
        except ValueError:
            raise DecodeError(f"{what}: {raw[:40]!r} is not hex") from None
        self._check_length(data, what, DecodeError)
        return data


class DrandMetadata(LotusJson):
    beacon_id: Annotated[str, Name("beaconID")] = DEFAULT_BEACON_ID


class DrandChainInfo(LotusJson, kw_only=True):
    """A drand chain's root of trust, as drand's `/info` writes it (plus `hash`, derived)."""

    public_key: Annotated[bytes, HexBytesKind(length=PUBLIC_KEY_SIZE), Name("public_key")]
    period: Annotated[int, IntKind(1, 0xFFFF_FFFF, "a period of 1..2^32-1 seconds"), Name("period")]
    genesis_time: Annotated[Int64, Name("genesis_time")]
    group_hash: Annotated[bytes, HexBytesKind(length=HASH_SIZE), Name("groupHash")]
    scheme_id: Annotated[str, Name("schemeID")] = CHAINED_SCHEME
    metadata: Annotated[DrandMetadata, Name("metadata")] = DrandMetadata()

    @property
    def hash(self) -> bytes:
        """drand's chain hash (chain.Info.Hash): what names the chain and its gossip topic."""
        h = hashlib.sha256()
        h.update(struct.pack(">Iq", self.period, self.genesis_time))
        h.update(self.public_key)
        h.update(self.group_hash)
        if self.metadata.beacon_id not in ("", DEFAULT_BEACON_ID):
            h.update(self.metadata.beacon_id.encode())
        return h.digest()

    def json_extra(self, network: str) -> dict[str, Any]:
        return {"hash": self.hash.hex()}

    @classmethod
    def from_json(cls, raw: Any, what: str | None = None) -> Self:
        """Read drand's JSON; a `hash` given must be the hash of the rest (a chain info that does not
        hash to the name it claims is someone else's chain)."""
        what = what or cls.__name__
        info = super().from_json(raw, what)
        claimed = raw.get("hash")
        if claimed is not None and claimed != info.hash.hex():
            raise DecodeError(f"{what}.hash: {str(claimed)[:70]!r} is not the hash of this chain info")
        return info

    @property
    def genesis_entry(self) -> BeaconEntry:
        """Round 0: the group hash stands as the signature round 1 is chained to."""
        return BeaconEntry(0, self.group_hash)

    def time_of_round(self, round_: int) -> int:
        """When a round is due (drand's TimeOfRound): round 1 at the genesis time."""
        return self.genesis_time + (max(round_, 1) - 1) * self.period

    def current_round(self, now: float) -> int:
        """The last round due at Unix time now (0 before the genesis)."""
        if now < self.genesis_time:
            return 0
        return int(now - self.genesis_time) // self.period + 1


class InvalidChainInfo(ValueError):
    """A chain info this implementation cannot verify entries of."""


def single_signer_group_hash(public_key: bytes, period: int, genesis_time: int) -> bytes:
    """The group hash (genesis seed) of a chain signed by one key, standing for drand's hash of its group
    file: it binds the key, period and genesis time, so a genesis block whose round 0 holds it commits
    to the whole chain info."""
    return hashlib.sha256(_GROUP_TAG + struct.pack(">Iq", period, genesis_time) + public_key).digest()


def round_message(round_: int, previous_signature: bytes) -> bytes:
    """What a chained round's signature signs: sha256(previous signature || uint64-BE round)."""
    return hashlib.sha256(previous_signature + round_.to_bytes(8, "big")).digest()


def public_key_point(public_key: bytes) -> G1Element:
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise InvalidChainInfo(f"a drand public key is {PUBLIC_KEY_SIZE} bytes (G1), got {len(public_key)}")
    try:
        point = G1Element.from_bytes(public_key)
    except (ValueError, RuntimeError) as exc:
        raise InvalidChainInfo(f"the drand public key is not a G1 point: {exc}") from None
    if point == G1Element():
        raise InvalidChainInfo("the drand public key is the point at infinity")
    return point


def signature_verifies(
    public_key: G1Element, round_: int, previous_signature: bytes, signature: bytes
) -> bool:
    """Whether signature is the chained signature of round_ after previous_signature (raises
    InvalidBeaconEntry when it is not a G2 point at all)."""
    if len(signature) != SIGNATURE_SIZE:
        raise InvalidBeaconEntry(
            f"beacon entry of round {round_}: a signature is {SIGNATURE_SIZE} bytes (G2),"
            f" got {len(signature)}"
        )
    try:
        point = G2Element.from_bytes(signature)
    except (ValueError, RuntimeError):
        raise InvalidBeaconEntry(f"beacon entry of round {round_}: the signature is not a G2 point") from None
    return bool(BasicSchemeMPL.verify(public_key, round_message(round_, previous_signature), point))


def drand_randomness(signature: bytes) -> bytes:
    """drand's randomness of a round: sha256 of its signature (Filecoin draws from the signature)."""
    return hashlib.sha256(signature).digest()


def max_round_for_epoch(
    epoch: int, *, genesis_time: int, block_delay: int, drand_genesis_time: int, period: int
) -> int:
    """Lotus's MaxBeaconRoundForEpoch (maxBeaconRoundV2): the drand round an epoch's block records."""
    latest = genesis_time + (epoch - 1) * block_delay
    if latest < drand_genesis_time:
        return 1
    return (latest - drand_genesis_time) // period + 1


class EntryLookup(Protocol):
    """Where a beacon finds rounds that have arrived (node/beacon's store; a dict in tests)."""

    def get(self, round_: int, /) -> BeaconEntry | None: ...


class DrandBeacon:
    """The chain's RandomBeacon (chain/consensus/beacon.py) over a drand chain.

    entry(round) answers from `entries` (what gossip or the local producer delivered) and raises
    LookupError for a round that has not arrived: the mining loop then skips the epoch, as a Lotus
    miner without its drand entry does. verify_entry checks one entry against the one before it.
    """

    def __init__(
        self,
        info: DrandChainInfo,
        *,
        genesis_time: int,
        block_delay: int,
        entries: EntryLookup | None = None,
        cache_size: int = VERIFIED_CACHE,
    ) -> None:
        if info.scheme_id != CHAINED_SCHEME:
            raise InvalidChainInfo(
                f"drand scheme {info.scheme_id!r} is not supported (only {CHAINED_SCHEME})"
            )
        if info.period != block_delay:
            raise InvalidChainInfo(
                f"a chained beacon needs one round per epoch: its period ({info.period} s) must be the block"
                f" delay ({block_delay} s)"
            )
        self.info = info
        self.public_key = public_key_point(info.public_key)
        self.genesis_time = genesis_time
        self.block_delay = block_delay
        self.entries = entries
        self._verified: Lru[int, bytes] = Lru(cache_size)  # round -> its signature

    @property
    def chain_hash(self) -> bytes:
        return self.info.hash

    # -- RandomBeacon ---------------------------------------------------------------------------------
    def max_beacon_round_for_epoch(self, epoch: int) -> int:
        return max_round_for_epoch(
            epoch,
            genesis_time=self.genesis_time,
            block_delay=self.block_delay,
            drand_genesis_time=self.info.genesis_time,
            period=self.info.period,
        )

    def entry(self, round_: int) -> BeaconEntry:
        if round_ == 0:
            return self.info.genesis_entry
        found = self.entries.get(round_) if self.entries is not None else None
        if found is None:
            raise LookupError(
                f"drand round {round_} (due at {self.info.time_of_round(round_)}) has not arrived"
            )
        return found

    def verify_entry(self, entry: BeaconEntry, previous: BeaconEntry) -> None:
        if entry.round != previous.round + 1:
            raise InvalidBeaconEntry(
                f"beacon entry of round {entry.round} does not follow round {previous.round}: a chained"
                " beacon's entries are consecutive rounds"
            )
        if previous.round == 0 and previous.data != self.info.group_hash:
            raise InvalidBeaconEntry(
                "the chain's round 0 is not this beacon's genesis: its data is not the group hash"
                f" {self.info.group_hash.hex()}"
            )
        known = self._known(entry.round)
        if known is not None:
            if known != entry.data:
                raise InvalidBeaconEntry(
                    f"beacon entry of round {entry.round} differs from the round's verified signature"
                )
            return
        if not signature_verifies(self.public_key, entry.round, previous.data, entry.data):
            raise InvalidBeaconEntry(
                f"beacon entry of round {entry.round}: the signature does not verify against the chain's"
                f" public key and round {previous.round}'s signature"
            )
        self.remember(entry)

    # -- chains of entries ----------------------------------------------------------------------------
    def verify_chain(self, entries: Iterable[BeaconEntry], trusted: BeaconEntry) -> None:
        """Verify consecutive entries from a trusted one (the genesis entry, or one checked before)."""
        previous = trusted
        for entry in entries:
            self.verify_entry(entry, previous)
            previous = entry

    def verify_linked(self, round_: int, previous_signature: bytes, signature: bytes) -> None:
        """Verify a round as drand publishes it, with the previous signature it claims (gossip): raise
        InvalidBeaconEntry unless the key signed exactly that link. Nothing is remembered: the claimed
        previous signature is not known to be the chain's, so the round is not known to be either."""
        if round_ < 1:
            raise InvalidBeaconEntry(f"drand round {round_}: rounds start at 1")
        if round_ == 1 and previous_signature != self.info.group_hash:
            raise InvalidBeaconEntry("drand round 1 is not chained to the group hash")
        if not signature_verifies(self.public_key, round_, previous_signature, signature):
            raise InvalidBeaconEntry(
                f"drand round {round_}: the signature does not verify against the chain's public key and"
                " the previous signature it claims"
            )

    def _known(self, round_: int) -> bytes | None:
        return self._verified.get(round_)

    def remember(self, entry: BeaconEntry) -> None:
        """Record an entry as verified (its signature checked against its predecessor's)."""
        self._verified.put(entry.round, entry.data)


class DrandKey:
    """The secret key of a one-signer drand chain (what the beacon node keeps in its keystore)."""

    __slots__ = ("_secret", "public_key")

    def __init__(self, secret: BlsSecret) -> None:
        self._secret = secret
        self.public_key = bytes(secret.get_g1())

    @classmethod
    def generate(cls) -> "DrandKey":
        return cls(BasicSchemeMPL.key_gen(secrets.token_bytes(32)))

    @classmethod
    def derive(cls, seed: bytes) -> "DrandKey":
        """A key from seed material (tests and reproducible fixtures; never for a real network)."""
        return cls(BasicSchemeMPL.key_gen(hashlib.sha256(seed).digest()))

    @classmethod
    def from_bytes(cls, data: bytes) -> "DrandKey":
        """The 32-byte big-endian scalar (kyber's and blspy's order)."""
        if len(data) != SECRET_KEY_SIZE:
            raise ValueError(f"a drand secret key is {SECRET_KEY_SIZE} bytes, got {len(data)}")
        try:
            secret = BlsSecret.from_bytes(data)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"not a BLS12-381 secret key: {exc}") from None
        if bytes(secret) == bytes(SECRET_KEY_SIZE):
            raise ValueError("a drand secret key is not zero")
        return cls(secret)

    def to_bytes(self) -> bytes:
        return bytes(self._secret)

    def __repr__(self) -> str:  # never the secret
        return f"DrandKey(public_key={self.public_key.hex()[:16]}...)"

    def chain_info(self, *, genesis_time: int, period: int) -> DrandChainInfo:
        """The chain this key signs alone, starting at genesis_time with rounds every period seconds."""
        return DrandChainInfo(
            public_key=self.public_key,
            period=period,
            genesis_time=genesis_time,
            group_hash=single_signer_group_hash(self.public_key, period, genesis_time),
        )

    def sign_round(self, round_: int, previous_signature: bytes) -> bytes:
        return bytes(BasicSchemeMPL.sign(self._secret, round_message(round_, previous_signature)))

    def next_entry(self, previous: BeaconEntry) -> BeaconEntry:
        """The round after previous, signed."""
        round_ = previous.round + 1
        return BeaconEntry(round_, self.sign_round(round_, previous.data))
