"""Choosing and opening a node's beacon: `--beacon mock` (Lotus's mock, the default) or `--beacon drand`
(a drand chain this network runs itself).

Where the drand chain's configuration lives:

- **the genesis block** commits to it: its one beacon entry is the drand chain's round 0, (0, group
  hash), instead of Lotus's 32 zero bytes, and the group hash of a one-signer chain is
  sha256(tag || period || genesis time || public key) (chain/consensus/drand.py). The block keeps
  Lotus's shape; its CID names the beacon too, so nodes given different beacons are on different
  genesis blocks and hello disconnects them. Which beacon a chain runs is read off its genesis
  (`beacon_kind_of`): 32 zero bytes is the mock.
- **`drand.json`** in the repo, beside genesis.car: the chain info as drand's `/info` prints it (public
  key, period, genesis time, group hash, scheme, hash). Every node of the network needs it, as Lotus
  needs its build's ChainInfoJSON; a node checks it against its genesis before using it
  (`check_genesis_commits`), so a wrong or edited file is refused with a message.
- **the secret key** only in the keystore of the node that produces the rounds: `drand-<chain hash>`,
  KeyInfo type `drand-bls12381`, the 32-byte big-endian scalar. The devnet builder makes it with the
  genesis (`create_drand_chain`); the node holding it signs and publishes each round.

The drand chain starts at the Filecoin genesis time with period = block delay, so epoch e's block
carries round e; a devnet that mines only on demand (block delay 0) cannot run it.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from chain.chainstore.metadata import MetadataStore
from chain.consensus.beacon import MockBeacon, RandomBeacon
from chain.consensus.drand import (
    DrandBeacon,
    DrandChainInfo,
    DrandKey,
    InvalidChainInfo,
    single_signer_group_hash,
)
from chain.encoding.errors import DecodeError
from chain.types.block import BlockHeader
from node.atomic import read_at_most, write_atomic
from node.beacon.service import BeaconService
from node.beacon.store import BeaconStore
from node.keystore import KeyInfo, KeyNotFound, Keystore, KeystoreError

BEACON_MOCK: Final = "mock"
BEACON_DRAND: Final = "drand"
BEACON_KINDS: Final = (BEACON_MOCK, BEACON_DRAND)
CHAIN_INFO_FILE: Final = "drand.json"
KEY_TYPE: Final = "drand-bls12381"
KEY_PREFIX: Final = "drand-"
MAX_CHAIN_INFO_BYTES: Final = 16 << 10
LOTUS_GENESIS_ENTRY_DATA: Final = bytes(32)


class BeaconSetupError(Exception):
    """The beacon cannot be set up from what the repo holds; the message says what to do."""


def key_name(chain_hash: bytes) -> str:
    return KEY_PREFIX + chain_hash.hex()


def beacon_kind_of(genesis: BlockHeader) -> str:
    """Which beacon a chain was made for, from its genesis's round 0."""
    if not genesis.beacon_entries:
        raise BeaconSetupError("the genesis block carries no beacon entry")
    entry = genesis.beacon_entries[-1]
    return BEACON_MOCK if entry.round == 0 and entry.data == LOTUS_GENESIS_ENTRY_DATA else BEACON_DRAND


# -- the chain info file -------------------------------------------------------------------------------


def write_chain_info(path: Path, info: DrandChainInfo) -> None:
    write_atomic(path, (json.dumps(info.to_json(), indent=2) + "\n").encode(), 0o644)


def read_chain_info(path: Path) -> DrandChainInfo:
    data = read_at_most(path, MAX_CHAIN_INFO_BYTES + 1, BeaconSetupError)
    if data is None:
        raise BeaconSetupError(
            f"{path} is missing: a node of a chain with a drand beacon needs the chain's {CHAIN_INFO_FILE}"
            " (copy it from the node that made the genesis)"
        )
    if len(data) > MAX_CHAIN_INFO_BYTES:
        raise BeaconSetupError(f"{path}: more than {MAX_CHAIN_INFO_BYTES} bytes: not a drand chain info")
    try:
        return DrandChainInfo.from_json(json.loads(data))
    except (ValueError, DecodeError) as exc:
        raise BeaconSetupError(f"{path} is not a drand chain info: {exc}") from None


def check_genesis_commits(info: DrandChainInfo, genesis: BlockHeader) -> None:
    """Refuse a chain info that is not the one the genesis was made with."""
    expected = single_signer_group_hash(info.public_key, info.period, info.genesis_time)
    if info.group_hash != expected:
        raise BeaconSetupError(
            f"drand chain {info.hash.hex()}: its group hash is not the hash of its key, period and genesis"
            " time, so the genesis cannot vouch for its key"
        )
    entry = genesis.beacon_entries[-1] if genesis.beacon_entries else None
    if entry != info.genesis_entry:
        found = "none" if entry is None else f"round {entry.round}, {entry.data.hex()}"
        raise BeaconSetupError(
            f"genesis {genesis.cid()} was not made for drand chain {info.hash.hex()}: its beacon entry is"
            f" {found}, the chain's round 0 is the group hash {info.group_hash.hex()}"
        )


# -- making one (the devnet builder) ---------------------------------------------------------------------


def create_drand_chain(
    keystore: Keystore, info_path: Path, *, genesis_time: int, period: int, key: DrandKey | None = None
) -> DrandChainInfo:
    """A new one-signer drand chain for a genesis at genesis_time: its key into the keystore, its chain
    info into info_path. Build the genesis with `info.genesis_entry` afterwards."""
    if period < 1:
        raise BeaconSetupError(
            "a drand beacon needs a block delay of at least one second: its rounds follow the clock"
            " (a devnet that mines only on demand runs the mock beacon)"
        )
    key = DrandKey.generate() if key is None else key
    info = key.chain_info(genesis_time=genesis_time, period=period)
    try:
        keystore.put(key_name(info.hash), KeyInfo(type=KEY_TYPE, private_key=key.to_bytes()), overwrite=True)
        write_chain_info(info_path, info)
    except (KeystoreError, OSError) as exc:
        raise BeaconSetupError(f"cannot store the drand beacon's key and chain info: {exc}") from None
    return info


def load_key(keystore: Keystore, info: DrandChainInfo) -> DrandKey | None:
    """The chain's secret key if this node holds it (then it produces the rounds)."""
    name = key_name(info.hash)
    try:
        stored = keystore.get(name)
    except KeyNotFound:
        return None
    except KeystoreError as exc:
        raise BeaconSetupError(f"the drand key {name}: {exc}") from None
    if stored.type != KEY_TYPE:
        raise BeaconSetupError(f"keystore entry {name} has type {stored.type!r}, expected {KEY_TYPE!r}")
    try:
        key = DrandKey.from_bytes(stored.private_key)
    except ValueError as exc:
        raise BeaconSetupError(f"keystore entry {name}: {exc}") from None
    if key.public_key != info.public_key:
        raise BeaconSetupError(f"keystore entry {name} is not the key of drand chain {info.hash.hex()}")
    return key


# -- opening one (node assembly) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeBeacon:
    """What node assembly gets: the chain's RandomBeacon (for the state manager, mining and
    validation) and, for a drand chain, the service to run (gossip topic, producer, waiting)."""

    kind: str
    beacon: RandomBeacon
    service: BeaconService | None


def open_beacon(
    kind: str,
    *,
    genesis: BlockHeader,
    block_delay: int,
    info_path: Path,
    keystore: Keystore,
    meta: MetadataStore,
) -> NodeBeacon:
    """The beacon a node of this genesis runs. kind is what the user asked for (`--beacon`); it must
    be the one the genesis was made for. meta: where the drand store keeps its rounds (the repo's
    LevelDB under node/beacon/store.py's NAMESPACE)."""
    if kind not in BEACON_KINDS:
        raise BeaconSetupError(f"--beacon: expected one of {', '.join(BEACON_KINDS)}, got {kind!r}")
    made_for = beacon_kind_of(genesis)
    if kind != made_for:
        raise BeaconSetupError(
            f"this chain's genesis was made for the {made_for} beacon, not {kind}: start with --beacon"
            f" {made_for}, or make a new chain (filpy devnet --reset --beacon {kind})"
        )
    if kind == BEACON_MOCK:
        return NodeBeacon(kind, MockBeacon(), None)
    info = read_chain_info(info_path)
    check_genesis_commits(info, genesis)
    try:
        beacon = DrandBeacon(info, genesis_time=genesis.timestamp, block_delay=block_delay)
    except InvalidChainInfo as exc:
        raise BeaconSetupError(f"{info_path}: {exc}") from None
    store = BeaconStore(meta, info.hash)
    service = BeaconService(beacon, store, key=load_key(keystore, info))
    return NodeBeacon(kind, beacon, service)
