"""Pre-sealed sectors of genesis miners: sealing them for real, and the sectors directory a node proves from.

A genesis miner's sectors are committed-capacity sectors (all-zero data, so CommD is the zero CommD the
miner actor computes for a sector without deals), sealed with proofs.seal for the miner's prover ID and a
seal ticket drawn as the chain would draw it, and proven with the interactive seed (node/genesis.py
draws both from the genesis block's ticket and beacon entry).

The sectors directory (`filpy genesis new --sectors DIR`), after Lotus's pre-seal layout:

    pre-seal-<miner>.json          manifest: miner, owner, worker, seal proof, and per sector its number,
                                   CommD/CommR (CIDs), CommC/CommRLast, ticket and seed (hex)
    pre-seal-<miner>-owner.key     the owner's key, hex of Lotus KeyInfo JSON (`lotus wallet import`)
    pre-seal-<miner>-worker.key    the worker's key, same format
    sealed/s-<miner>-<number>      the replica
    cache/s-<miner>-<number>/p_aux CommC || CommRLast (what Window and Winning PoSt need besides the replica)
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chain.crypto.keys import PrivateKey
from chain.encoding.carry import carried
from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.types.address import Address, Protocol
from chain.vm.syscalls import sealed_cid, sealed_commitment
from node.atomic import write_atomic
from proofs import merkle, post, seal
from proofs.registered import make_prover_id, seal_params

COMMITMENT_SIZE: Final = 32
P_AUX_SIZE: Final = 2 * COMMITMENT_SIZE
MAX_MANIFEST_BYTES: Final = 1 << 20
KEY_FILE_MODE: Final = 0o600


class PresealError(ValueError):
    """A sectors directory that cannot be read back; the message names the file and the problem."""


class SectorCommitments:
    """The CIDs of a sector's CommR (sealed) and CommD (unsealed), for a type that holds the two."""

    __slots__ = ()
    comm_d: bytes
    comm_r: bytes

    @property
    def sealed_cid(self) -> CID:
        return sealed_cid(self.comm_r)

    @property
    def unsealed_cid(self) -> CID:
        return piece_cid_v1(self.comm_d)


@dataclass(frozen=True, slots=True)
class PresealedSector(SectorCommitments):
    """One sealed sector: its commitments, seal randomness, replica and (when just sealed) its proof."""

    number: int
    seal_proof: int
    ticket: bytes
    seed: bytes
    comm_d: bytes
    comm_r: bytes
    comm_c: bytes
    comm_r_last: bytes
    replica: bytes = field(repr=False)
    proof: bytes = field(default=b"", repr=False)  # the ProveCommitSector proof; not kept on disk

    def proving_sector(self) -> post.ProvingSector:
        return post.ProvingSector(self.number, self.comm_r, self.comm_c, self.comm_r_last, self.replica)


@dataclass(frozen=True, slots=True)
class PresealedMiner:
    """A genesis miner: its ID, keys and sealed sectors."""

    id_address: Address
    owner_key: PrivateKey
    worker_key: PrivateKey
    seal_proof: int
    seal_rand_epoch: int
    sectors: tuple[PresealedSector, ...]

    @property
    def owner(self) -> Address:
        return Address.of_key(self.owner_key)

    @property
    def worker(self) -> Address:
        return Address.of_key(self.worker_key)


def seal_cc_sector(
    seal_proof: int, miner_id: int, number: int, ticket: bytes, seed: bytes
) -> PresealedSector:
    """Seal an all-zero sector for miner_id and answer the seed's challenges (a real vanilla proof)."""
    size = seal_params(seal_proof).sector_size
    sealed = seal.seal(seal_proof, bytes(size), make_prover_id(miner_id), number, ticket)
    proof = seal.prove_commit(sealed, seed).to_bytes()
    # The commitments, ticket and replica are sealed's; its `proof` is the proof type, not this proof.
    return carried(PresealedSector, sealed, number=number, seal_proof=seal_proof, seed=seed, proof=proof)


# -- the sectors directory ------------------------------------------------------------------------------


def _sector_name(miner: str, number: int) -> str:
    return f"s-{miner}-{number}"


def manifest_path(directory: Path, miner: Address, network: str) -> Path:
    return Path(directory) / f"pre-seal-{miner.to_string(network)}.json"


def key_path(directory: Path, miner: Address, network: str, role: str) -> Path:
    return Path(directory) / f"pre-seal-{miner.to_string(network)}-{role}.key"


def write_presealed(directory: Path, miner: PresealedMiner, network: str) -> None:
    """Write a miner's replicas, PoSt commitments, keys and manifest under directory (atomically per file)."""
    root = Path(directory)
    name = miner.id_address.to_string(network)
    (root / "sealed").mkdir(parents=True, exist_ok=True)
    sectors = []
    for sector in miner.sectors:
        sector_name = _sector_name(name, sector.number)
        cache = root / "cache" / sector_name
        cache.mkdir(parents=True, exist_ok=True)
        write_atomic(root / "sealed" / sector_name, sector.replica)
        write_atomic(cache / "p_aux", sector.comm_c + sector.comm_r_last)
        sectors.append(
            {
                "SectorNumber": sector.number,
                "CommD": str(sector.unsealed_cid),
                "CommR": str(sector.sealed_cid),
                "Ticket": sector.ticket.hex(),
                "Seed": sector.seed.hex(),
            }
        )
    for role, key in (("owner", miner.owner_key), ("worker", miner.worker_key)):
        data = (key.to_lotus_export() + "\n").encode()
        write_atomic(key_path(root, miner.id_address, network, role), data, KEY_FILE_MODE)
    manifest = {
        "Miner": name,
        "Owner": miner.owner.to_string(network),
        "Worker": miner.worker.to_string(network),
        "SealProof": miner.seal_proof,
        "SealRandEpoch": miner.seal_rand_epoch,
        "Sectors": sectors,
    }
    write_atomic(
        manifest_path(root, miner.id_address, network), (json.dumps(manifest, indent=2) + "\n").encode()
    )


def _read_bytes(path: Path, what: str, max_size: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_size:
            raise PresealError(f"{path}: {what} is {size} bytes, more than {max_size}")
        return path.read_bytes()
    except OSError as exc:
        raise PresealError(f"{path}: cannot read {what}: {exc}") from None


def _hex32(raw: Any, what: str) -> bytes:
    try:
        data = bytes.fromhex(raw) if isinstance(raw, str) else b""
    except ValueError:
        data = b""
    if len(data) != COMMITMENT_SIZE:
        raise PresealError(f"{what}: expected {COMMITMENT_SIZE} bytes as hex")
    return data


def _field(raw: dict[str, Any], key: str, what: str) -> Any:
    if key not in raw:
        raise PresealError(f"{what}: {key} is missing")
    return raw[key]


def _read_key(path: Path) -> PrivateKey:
    try:
        return PrivateKey.from_lotus_export(_read_bytes(path, "key file", 4096).decode("ascii"))
    except (DecodeError, UnicodeDecodeError) as exc:
        raise PresealError(f"{path}: not a Lotus key file: {exc}") from None


def read_presealed(directory: Path, miner: Address, network: str) -> PresealedMiner:
    """Read back what write_presealed wrote for miner, checking the replicas against CommRLast."""
    if miner.protocol != Protocol.ID:
        raise PresealError(f"miner {miner} must be an ID address")
    root = Path(directory)
    path = manifest_path(root, miner, network)
    try:
        manifest = json.loads(_read_bytes(path, "manifest", MAX_MANIFEST_BYTES))
    except ValueError as exc:
        raise PresealError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("Sectors"), list):
        raise PresealError(f"{path}: expected an object with a Sectors list")
    name = miner.to_string(network)
    if manifest.get("Miner") != name:
        raise PresealError(f"{path}: manifest is for miner {manifest.get('Miner')!r}, not {name}")
    seal_proof = _field(manifest, "SealProof", str(path))
    rand_epoch = _field(manifest, "SealRandEpoch", str(path))
    if type(seal_proof) is not int or type(rand_epoch) is not int:
        raise PresealError(f"{path}: SealProof and SealRandEpoch must be integers")
    try:
        size = seal_params(seal_proof).sector_size
    except ValueError as exc:
        raise PresealError(f"{path}: SealProof: {exc}") from None
    owner_key = _read_key(key_path(root, miner, network, "owner"))
    worker_key = _read_key(key_path(root, miner, network, "worker"))
    for role, key in (("Owner", owner_key), ("Worker", worker_key)):
        if manifest.get(role) != Address.of_key(key).to_string(network):
            raise PresealError(f"{path}: {role} does not match the {role.lower()} key file")
    sectors = []
    for i, raw in enumerate(manifest["Sectors"]):
        what = f"{path}: Sectors[{i}]"
        if not isinstance(raw, dict):
            raise PresealError(f"{what}: expected an object")
        number = _field(raw, "SectorNumber", what)
        if type(number) is not int or number < 0:
            raise PresealError(f"{what}.SectorNumber: expected a non-negative integer")
        try:
            comm_d = commitment_of_v1(CID.parse(_field(raw, "CommD", what)))
            comm_r = sealed_commitment(CID.parse(_field(raw, "CommR", what)))
        except (DecodeError, ValueError, TypeError) as exc:
            raise PresealError(f"{what}: bad commitment CID: {exc}") from None
        sector_name = _sector_name(name, number)
        p_aux = _read_bytes(root / "cache" / sector_name / "p_aux", "p_aux", P_AUX_SIZE)
        if len(p_aux) != P_AUX_SIZE:
            raise PresealError(f"{root / 'cache' / sector_name / 'p_aux'}: expected {P_AUX_SIZE} bytes")
        replica = _read_bytes(root / "sealed" / sector_name, "replica", size)
        if len(replica) != size:
            raise PresealError(f"{root / 'sealed' / sector_name}: replica is not {size} bytes")
        if merkle.root_of(replica) != p_aux[COMMITMENT_SIZE:] or (
            seal.comm_r_of(p_aux[:COMMITMENT_SIZE], p_aux[COMMITMENT_SIZE:]) != comm_r
        ):
            raise PresealError(f"{root / 'sealed' / sector_name}: replica does not match its CommR: corrupt")
        sectors.append(
            PresealedSector(
                number=number,
                seal_proof=seal_proof,
                ticket=_hex32(_field(raw, "Ticket", what), f"{what}.Ticket"),
                seed=_hex32(_field(raw, "Seed", what), f"{what}.Seed"),
                comm_d=comm_d,
                comm_r=comm_r,
                comm_c=p_aux[:COMMITMENT_SIZE],
                comm_r_last=p_aux[COMMITMENT_SIZE:],
                replica=replica,
            )
        )
    return PresealedMiner(miner, owner_key, worker_key, seal_proof, rand_epoch, tuple(sectors))
