"""Registering a storage miner (the seed's RegisterStorageMiner flow): power.CreateMiner on chain, then
this node serving the new miner.

`create_miner(node, miners, owner=, worker=, sector_size=, pledge=)` is what `filpy miner create` runs
(Lotus `lotus-miner init`'s createStorageMiner): it checks the addresses (the owner signs and pays; the
worker is a BLS key, as the miner actor requires; both keys must be in this node's wallet, since the
worker signs the miner's messages and blocks), creates the worker's account on chain if it has none
yet, pushes CreateMiner from the owner with the pledge as value (the new miner's balance, from which
the sealing pipeline pays pre-commit deposits and pledges), waits for it, and reads the new miner's ID
and robust addresses from the return. It then records the miner in `LocalMiners`, the durable list of
the miners this node serves, so that the mining loop, the Window PoSt scheduler and the sealing
pipeline start for it from the next start on.

`LocalMiners` lives in the repo's LevelDB (namespace `/miners/`, beside the chain it belongs to, so
`repo.reset_chain()` forgets it with the chain), one record per miner keyed by actor ID.
"""

import dataclasses
import re
from collections.abc import Sequence
from typing import Annotated, Any, Final

import structlog
from libp2p.peer import id as peer_ids
from multiaddr import Multiaddr

from actors import builtin
from actors.power.types import CreateMinerParams, CreateMinerReturn, PowerMethod
from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata, MetadataStore
from chain.chainstore.store import ChainStore
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import IDENTITY, SHA2_256, Multihash
from chain.encoding.schema import CborMap, Int64, LotusJson, Name, TokenAmount, Uint64
from chain.mpool.push import message_to_push
from chain.params import Policy
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.types.address import Address, Protocol
from chain.types.message import Message
from node.fullnode import FullNode
from proofs.registered import SEAL_PARAMS

log = structlog.get_logger("miner")

MINERS_NAMESPACE: Final = b"/miners/"
# Tipsets on top of CreateMiner before it counts (Lotus waits for MessageConfidence).
DEFAULT_CONFIDENCE: Final = 1
_SIZE = re.compile(r"^\s*([0-9]+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS: Final = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class MinerCreateError(Exception):
    """A miner that cannot be created as asked; the message says what is wrong. Nothing was sent."""


# -- sector sizes ---------------------------------------------------------------------------------------


def parse_sector_size(text: str) -> int:
    """Bytes of a sector size written as Lotus takes it ("2KiB", "8MiB", "512MiB", "2048"; units are
    binary, as go-units RAMInBytes)."""
    match = _SIZE.match(text)
    if match is None:
        raise MinerCreateError(f"{text!r} is not a sector size (try 2KiB, 8MiB or 512MiB)")
    number, unit, _ = match.groups()
    return int(number) * _UNITS[unit.lower()]


def format_sector_size(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def seal_proof_for(policy: Policy, sector_size: int) -> int:
    """The registered seal proof of this network for sectors of this size (MinerCreateError naming the
    sizes it allows otherwise)."""
    allowed = {SEAL_PARAMS[p].sector_size: p for p in policy.allowed_seal_proofs if p in SEAL_PARAMS}
    proof = allowed.get(sector_size)
    if proof is None:
        sizes = ", ".join(format_sector_size(s) for s in sorted(allowed))
        raise MinerCreateError(
            f"the {policy.network_name} network takes sectors of {sizes}, "
            f"not {format_sector_size(sector_size)}"
        )
    return proof


# -- the miners this node serves ------------------------------------------------------------------------


class MinerIdentity(LotusJson, kw_only=True):
    """A miner's addresses, sector size and seal proof: what the local list keeps of a miner and what
    `filpy miner create` reports, declared once for both."""

    id_address: Annotated[Address, Name("IDAddress")]
    robust_address: Address
    owner: Address
    worker: Address
    sector_size: Uint64
    seal_proof: Int64

    def identity(self) -> dict[str, Any]:
        """The fields above, as keyword arguments for another MinerIdentity."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(MinerIdentity)}


class LocalMinerRecord(CborMap, MinerIdentity, kw_only=True):
    """A miner this node serves: its identity and how it was created."""

    create_message: CID | None = None


class LocalMiners:
    """The durable list of miners this node serves (their keys are in the wallet). Synchronous."""

    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    @classmethod
    def for_chain(cls, chain: ChainStore) -> "LocalMiners":
        """The list in the chain's LevelDB (the repo's datastore), or in memory for an in-memory chain."""
        db = getattr(chain.blockstore, "db", None)
        if db is None:
            return cls(MemoryMetadata())
        return cls(LevelDBMetadata(db, namespace=MINERS_NAMESPACE, sync=True))

    def add(self, record: LocalMinerRecord) -> None:
        self._meta.put(record.id_address.id.to_bytes(8, "big"), record.to_bytes())

    def get(self, miner: Address) -> LocalMinerRecord | None:
        raw = self._meta.get(miner.id.to_bytes(8, "big"))
        return None if raw is None else self._decode(raw)

    def list(self) -> list[LocalMinerRecord]:
        """Every miner served, by actor ID."""
        return [self._decode(raw) for _, raw in self._meta.items(b"")]

    @staticmethod
    def _decode(raw: bytes) -> LocalMinerRecord:
        try:
            return LocalMinerRecord.from_bytes(raw)
        except DecodeError as exc:
            raise MinerCreateError(f"the local miners list is damaged: {exc}") from None


# -- CreateMiner ----------------------------------------------------------------------------------------


class MinerCreated(MinerIdentity, kw_only=True):
    """What `filpy miner create` reports (and an RPC method answers with)."""

    pledge: TokenAmount
    message: CID
    worker_init_message: CID | None = None

    def lines(self, network: str = "t") -> list[str]:
        """The command's output, Lotus's words."""
        out = []
        if self.worker_init_message is not None:
            out.append(
                f"Initializing worker account {self.worker.to_string(network)}, message: "
                f"{self.worker_init_message}"
            )
        out += [
            f"Pushed CreateMiner message: {self.message}",
            f"New miners address is: {self.id_address.to_string(network)} "
            f"({self.robust_address.to_string(network)})",
            f"Sector size: {format_sector_size(self.sector_size)} (seal proof {self.seal_proof})",
        ]
        return out


def _peer_bytes(peer_id: str | bytes) -> bytes:
    """A libp2p peer ID's bytes: a multihash (identity or sha2-256) of its public key, as go-libp2p
    peer.Decode checks it; from its base58 text, or given as bytes."""
    if not peer_id:
        return b""
    try:
        raw = peer_id if isinstance(peer_id, bytes) else bytes(peer_ids.ID.from_base58(peer_id).to_bytes())
        code = Multihash.from_bytes(raw).code
    except (ValueError, DecodeError) as exc:
        raise MinerCreateError(f"{peer_id!r} is not a libp2p peer ID: {exc}") from None
    if code not in (IDENTITY, SHA2_256):
        raise MinerCreateError(f"{peer_id!r} is not a libp2p peer ID: a multihash of code 0x{code:x}")
    return raw


def _multiaddr_bytes(text: str) -> bytes:
    try:
        return bytes(Multiaddr(text).to_bytes())
    except Exception as exc:  # multiaddr raises several unrelated types for bad text
        raise MinerCreateError(f"{text!r} is not a multiaddr: {exc}") from None


async def _key_address(node: FullNode, address: Address, role: str) -> Address:
    if address.protocol != Protocol.ID:
        return address
    try:
        return await node.run_sync(node.state.account_key, address, node.chain.head())
    except (ActorNotFound, StateQueryError) as exc:
        raise MinerCreateError(f"the {role} {address} is not an account on chain: {exc}") from None


async def create_miner(
    node: FullNode,
    miners: LocalMiners,
    *,
    owner: Address,
    worker: Address,
    sector_size: int,
    pledge: int = 0,
    peer_id: str | bytes = "",
    multiaddrs: Sequence[str] = (),
    confidence: int = DEFAULT_CONFIDENCE,
) -> MinerCreated:
    """Create a storage miner on chain and serve it from this node (see the module docstring)."""
    network = node.address_network
    seal_proof = seal_proof_for(node.policy, sector_size)
    window_post = SEAL_PARAMS[seal_proof].window_post
    if pledge < 0:
        raise MinerCreateError(f"the pledge cannot be negative, got {pledge}")
    owner_key = await _key_address(node, owner, "owner")
    worker_key = await _key_address(node, worker, "worker")
    if worker_key.protocol != Protocol.BLS:
        raise MinerCreateError(
            f"the worker {worker.to_string(network)} must be a BLS key (t3...): the miner actor signs "
            "blocks and tickets with it"
        )
    for role, key in (("owner", owner_key), ("worker", worker_key)):
        if not node.wallet.has(key):
            raise MinerCreateError(
                f"the {role} key {key.to_string(network)} is not in this node's wallet: import it first "
                "(filpy wallet import)"
            )
    params = CreateMinerParams(
        owner=owner_key,
        worker=worker_key,
        window_post_proof_type=window_post,
        peer=_peer_bytes(peer_id),
        multiaddrs=tuple(_multiaddr_bytes(m) for m in multiaddrs),
    )
    worker_init = await _ensure_account(node, owner_key, worker_key, confidence)
    msg = message_to_push(
        builtin.STORAGE_POWER_ACTOR_ADDR,
        owner_key,
        value=pledge,
        method=PowerMethod.CreateMiner,
        params=params,
    )
    try:
        signed = await node.run_sync(node.pusher.push_message, msg, None)
    except Exception as exc:  # the pool's and the gas estimator's refusals carry the reason
        raise MinerCreateError(f"CreateMiner was refused: {type(exc).__name__}: {exc}") from None
    cid = signed.cid()
    log.info("CreateMiner pushed", message=str(cid), owner=owner_key.to_string(network), pledge=pledge)
    lookup = await node.wait_msg(cid, confidence)
    receipt = lookup.receipt
    if receipt.exit_code != 0:
        raise MinerCreateError(f"CreateMiner {cid} failed on chain: exit code {int(receipt.exit_code)}")
    created = CreateMinerReturn.from_bytes(receipt.return_data)
    record = LocalMinerRecord(
        id_address=created.id_address,
        robust_address=created.robust_address,
        owner=owner_key,
        worker=worker_key,
        sector_size=sector_size,
        seal_proof=seal_proof,
        create_message=cid,
    )
    await node.run_sync(miners.add, record)
    log.info(
        "miner created",
        miner=created.id_address.to_string(network),
        robust=created.robust_address.to_string(network),
        sector_size=format_sector_size(sector_size),
        message=str(cid),
    )
    return MinerCreated(**record.identity(), pledge=pledge, message=cid, worker_init_message=worker_init)


async def _ensure_account(node: FullNode, owner: Address, worker: Address, confidence: int) -> CID | None:
    """Make the worker's account exist on chain (a zero send from the owner), as lotus-miner init does:
    the miner actor resolves its worker to an account. None when it exists already."""
    head = node.chain.head()
    exists: Any = await node.run_sync(node.state.actor_after, worker, head)
    if exists is not None:
        return None
    msg = Message(
        to=worker, from_=owner, nonce=0, value=0, gas_limit=0, gas_fee_cap=0, gas_premium=0, method=0
    )
    try:
        signed = await node.run_sync(node.pusher.push_message, msg, None)
    except Exception as exc:  # the pool's refusal, with its reason
        raise MinerCreateError(f"creating the worker's account was refused: {exc}") from None
    log.info("initializing worker account", worker=str(worker), message=str(signed.cid()))
    lookup = await node.wait_msg(signed.cid(), confidence)
    if lookup.receipt.exit_code != 0:
        raise MinerCreateError(
            f"creating the worker's account failed: exit code {int(lookup.receipt.exit_code)}"
        )
    return signed.cid()
