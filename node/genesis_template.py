"""The genesis template: what `filpy genesis new` builds a genesis from, read from JSON.

Keys follow Lotus's genesis template (lotus genesis/types.go) where they mean the same thing; docs/genesis.md
describes every key. Reading is strict: an unknown key, a missing required key or a bad value raises
TemplateError naming the field (e.g. `Miners[0].SectorSize`), so a typo never silently becomes a default.

Balances are attoFIL, written as a decimal string (as Lotus writes big integers in JSON) or a JSON integer.
Addresses are strings with the profile's network prefix ('t' for devnet, 'f' for mainnet).
"""

import json
from dataclasses import dataclass
from typing import Any, Final

import base58

from actors.miner.policy import SEAL_PROOFS
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding.errors import DecodeError
from chain.params import PROFILES, Policy
from chain.types.address import Address, Protocol
from chain.types.message import TOTAL_FILECOIN

# As Lotus's genesis: accounts and multisigs get IDs from 100, miners from 1000 (lotus MinerStart).
ACCOUNT_START_ID: Final = 100
MINER_START_ID: Final = 1000
MAX_TEMPLATE_BYTES: Final = 16 << 20
MAX_NETWORK_NAME_BYTES: Final = 256  # what the init actor accepts
MAX_MINERS: Final = 64
MAX_SECTORS_PER_MINER: Final = 64
MAX_KEY_SEED_BYTES: Final = 256
UINT64_MAX: Final = (1 << 64) - 1
INT64_MAX: Final = (1 << 63) - 1
# The reward actor's genesis balance: what block rewards are minted from (lotus FilAllocStorageMining).
REWARD_ACTOR_BALANCE: Final = 1_100_000_000 * 10**18
FIL: Final = 10**18


class TemplateError(ValueError):
    """A genesis template that cannot be used; the message names the field and what is wrong."""


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """An account actor for a key address (secp256k1 or BLS), with its genesis balance."""

    owner: Address
    balance: int


@dataclass(frozen=True, slots=True)
class MultisigEntry:
    """A multisig wallet, made by init.Exec at genesis with its balance (vesting if duration > 0)."""

    signers: tuple[Address, ...]
    threshold: int
    vesting_duration: int
    vesting_start: int
    balance: int


@dataclass(frozen=True, slots=True)
class MinerEntry:
    """A storage miner with pre-sealed committed-capacity sectors.

    Its owner (secp256k1) and worker (BLS) keys are derived from key_seed, so the template alone
    determines them; `filpy genesis new --sectors DIR` writes them as Lotus key files.
    """

    id: Address | None
    key_seed: str
    owner_balance: int
    worker_balance: int
    power_balance: int
    peer_id: bytes
    sector_size: int
    sectors: int

    def owner_key(self) -> PrivateKey:
        return PrivateKey.derive(KeyType.SECP256K1, f"{self.key_seed}/owner".encode())

    def worker_key(self) -> PrivateKey:
        return PrivateKey.derive(KeyType.BLS, f"{self.key_seed}/worker".encode())

    @property
    def seal_proof(self) -> int:
        return seal_proof_for_size(self.sector_size)


@dataclass(frozen=True, slots=True)
class GenesisTemplate:
    network_name: str
    profile: str  # a chain.params profile: "devnet" or "mainnet"
    timestamp: int
    accounts: tuple[AccountEntry | MultisigEntry, ...] = ()
    miners: tuple[MinerEntry, ...] = ()

    @property
    def policy(self) -> Policy:
        return PROFILES[self.profile]

    def allocated(self) -> int:
        """Every attoFIL the template hands out (accounts, multisigs, miners' owners and workers)."""
        return sum(a.balance for a in self.accounts) + sum(
            m.owner_balance + m.worker_balance for m in self.miners
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> "GenesisTemplate":
        if len(text) > MAX_TEMPLATE_BYTES:
            raise TemplateError(f"template is {len(text)} bytes, more than the {MAX_TEMPLATE_BYTES} allowed")
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TemplateError(f"template is not valid JSON: {exc}") from None
        return parse_template(raw)


def seal_proof_for_size(sector_size: int) -> int:
    """The V1_1 seal proof of a sector size filpy can seal (proofs/registered.py)."""
    for number, info in SEAL_PROOFS.items():
        if info.sector_size == sector_size:
            return number
    sizes = ", ".join(str(info.sector_size) for info in SEAL_PROOFS.values())
    raise TemplateError(f"sector size {sector_size} cannot be sealed (supported: {sizes})")


# -- reading ------------------------------------------------------------------------------------------


def _keys(raw: Any, what: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TemplateError(f"{what}: expected a JSON object, got {_kind(raw)}")
    unknown = sorted(set(raw) - required - optional)
    if unknown:
        known = ", ".join(sorted(required | optional))
        raise TemplateError(f"{what}: unknown key {unknown[0]!r} (known keys: {known})")
    missing = sorted(required - set(raw))
    if missing:
        raise TemplateError(f"{_join(what, missing[0])}: required key is missing")
    return raw


def _join(what: str, key: str) -> str:
    return key if not what else f"{what}.{key}"


def _kind(raw: Any) -> str:
    return "null" if raw is None else type(raw).__name__


def _int(raw: Any, what: str, low: int, high: int) -> int:
    if type(raw) is not int:
        raise TemplateError(f"{what}: expected an integer, got {_kind(raw)}")
    if not low <= raw <= high:
        raise TemplateError(f"{what}: {raw} is outside {low}..{high}")
    return raw


def _balance(raw: Any, what: str) -> int:
    """attoFIL: a JSON integer or a decimal string (Lotus's JSON for big integers)."""
    if type(raw) is int:
        value = raw
    elif isinstance(raw, str):
        if not raw.isascii() or not raw.isdigit() or len(raw) > 40:
            raise TemplateError(f"{what}: {raw!r} is not a decimal amount of attoFIL")
        value = int(raw)
    else:
        raise TemplateError(f"{what}: expected attoFIL as a decimal string, got {_kind(raw)}")
    if not 0 <= value <= TOTAL_FILECOIN:
        raise TemplateError(f"{what}: {value} attoFIL is outside 0..{TOTAL_FILECOIN} (the total supply)")
    return value


def _address(raw: Any, what: str, network: str) -> Address:
    if not isinstance(raw, str):
        raise TemplateError(f"{what}: expected an address string, got {_kind(raw)}")
    try:
        return Address.parse(raw, network)
    except DecodeError as exc:
        raise TemplateError(f"{what}: {exc}") from None


def _key_address(raw: Any, what: str, network: str) -> Address:
    address = _address(raw, what, network)
    if address.protocol not in (Protocol.SECP256K1, Protocol.BLS):
        raise TemplateError(f"{what}: {raw} is not a secp256k1 (t1/f1) or BLS (t3/f3) key address")
    return address


def _account(raw: Any, what: str, network: str) -> AccountEntry | MultisigEntry:
    entry = _keys(raw, what, {"Type", "Balance", "Meta"}, set())
    balance = _balance(entry["Balance"], f"{what}.Balance")
    kind = entry["Type"]
    meta_what = f"{what}.Meta"
    if kind == "account":
        meta = _keys(entry["Meta"], meta_what, {"Owner"}, set())
        return AccountEntry(_key_address(meta["Owner"], f"{meta_what}.Owner", network), balance)
    if kind == "multisig":
        meta = _keys(entry["Meta"], meta_what, {"Signers", "Threshold"}, {"VestingDuration", "VestingStart"})
        signers_raw = meta["Signers"]
        if not isinstance(signers_raw, list) or not signers_raw:
            raise TemplateError(f"{meta_what}.Signers: expected a non-empty list of addresses")
        signers = tuple(
            _key_address(s, f"{meta_what}.Signers[{i}]", network) for i, s in enumerate(signers_raw)
        )
        if len(set(signers)) != len(signers):
            raise TemplateError(f"{meta_what}.Signers: a signer is listed twice")
        threshold = _int(meta["Threshold"], f"{meta_what}.Threshold", 1, len(signers))
        duration = _int(meta.get("VestingDuration", 0), f"{meta_what}.VestingDuration", 0, INT64_MAX)
        start = _int(meta.get("VestingStart", 0), f"{meta_what}.VestingStart", 0, INT64_MAX)
        return MultisigEntry(signers, threshold, duration, start, balance)
    raise TemplateError(f'{what}.Type: expected "account" or "multisig", got {kind!r}')


def _peer_id(raw: Any, what: str, policy: Policy) -> bytes:
    if not isinstance(raw, str):
        raise TemplateError(f"{what}: expected a base58 peer ID string, got {_kind(raw)}")
    if not raw:
        return b""
    try:
        data: bytes = base58.b58decode(raw)
    except ValueError as exc:
        raise TemplateError(f"{what}: {raw!r} is not base58: {exc}") from None
    if len(data) > policy.max_peer_id_length:
        raise TemplateError(f"{what}: {len(data)} bytes, more than {policy.max_peer_id_length}")
    return data


def _miner(raw: Any, what: str, index: int, policy: Policy) -> MinerEntry:
    entry = _keys(
        raw,
        what,
        {"KeySeed", "PowerBalance"},
        {"ID", "OwnerBalance", "WorkerBalance", "PeerId", "SectorSize", "Sectors"},
    )
    network = policy.address_network
    expected_id = Address.new_id(MINER_START_ID + index)
    miner_id = None
    if "ID" in entry:
        miner_id = _address(entry["ID"], f"{what}.ID", network)
        if miner_id != expected_id:
            raise TemplateError(
                f"{what}.ID: {entry['ID']} is not the ID this miner gets; miners are numbered from "
                f"{MINER_START_ID} in template order, so this one is {expected_id.to_string(network)}"
            )
    seed = entry["KeySeed"]
    if not isinstance(seed, str) or not seed or len(seed.encode()) > MAX_KEY_SEED_BYTES:
        raise TemplateError(
            f"{what}.KeySeed: expected a non-empty string of at most {MAX_KEY_SEED_BYTES} bytes"
        )
    sector_size = _int(entry.get("SectorSize", 2048), f"{what}.SectorSize", 1, UINT64_MAX)
    try:
        proof = seal_proof_for_size(sector_size)
    except TemplateError as exc:
        raise TemplateError(f"{what}.SectorSize: {exc}") from None
    if proof not in policy.allowed_seal_proofs:
        raise TemplateError(
            f"{what}.SectorSize: {sector_size}-byte sectors (seal proof {proof}) are not allowed on the "
            f"{policy.network_name} profile"
        )
    miner = MinerEntry(
        id=miner_id,
        key_seed=seed,
        owner_balance=_balance(entry.get("OwnerBalance", 0), f"{what}.OwnerBalance"),
        worker_balance=_balance(entry.get("WorkerBalance", 0), f"{what}.WorkerBalance"),
        power_balance=_balance(entry["PowerBalance"], f"{what}.PowerBalance"),
        peer_id=_peer_id(entry.get("PeerId", ""), f"{what}.PeerId", policy),
        sector_size=sector_size,
        sectors=_int(entry.get("Sectors", 2), f"{what}.Sectors", 1, MAX_SECTORS_PER_MINER),
    )
    if miner.power_balance > miner.owner_balance:
        raise TemplateError(
            f"{what}.PowerBalance: {miner.power_balance} exceeds OwnerBalance {miner.owner_balance} "
            "(the owner pays it to the miner actor)"
        )
    return miner


def parse_template(raw: Any) -> GenesisTemplate:
    """A GenesisTemplate from decoded JSON; TemplateError naming the first bad field."""
    top = _keys(raw, "", {"NetworkName", "Timestamp"}, {"Profile", "Accounts", "Miners"})
    name = top["NetworkName"]
    if not isinstance(name, str) or not name or len(name.encode()) > MAX_NETWORK_NAME_BYTES:
        raise TemplateError(
            f"NetworkName: expected a non-empty string of at most {MAX_NETWORK_NAME_BYTES} bytes"
        )
    profile = top.get("Profile", "devnet")
    if profile not in PROFILES:
        raise TemplateError(f"Profile: expected one of {', '.join(sorted(PROFILES))}, got {profile!r}")
    policy = PROFILES[profile]
    timestamp = _int(top["Timestamp"], "Timestamp", 0, UINT64_MAX)
    accounts_raw = top.get("Accounts", [])
    if not isinstance(accounts_raw, list):
        raise TemplateError(f"Accounts: expected a list, got {_kind(accounts_raw)}")
    accounts = tuple(
        _account(a, f"Accounts[{i}]", policy.address_network) for i, a in enumerate(accounts_raw)
    )
    miners_raw = top.get("Miners", [])
    if not isinstance(miners_raw, list):
        raise TemplateError(f"Miners: expected a list, got {_kind(miners_raw)}")
    if len(miners_raw) > MAX_MINERS:
        raise TemplateError(f"Miners: {len(miners_raw)} miners, at most {MAX_MINERS} are allowed")
    miners = tuple(_miner(m, f"Miners[{i}]", i, policy) for i, m in enumerate(miners_raw))
    template = GenesisTemplate(name, profile, timestamp, accounts, miners)
    _check_whole(template)
    return template


def _check_whole(template: GenesisTemplate) -> None:
    """Rules across entries: distinct addresses and seeds, IDs below the miners', supply not exceeded."""
    owners: dict[Address, str] = {}
    for i, account in enumerate(template.accounts):
        if isinstance(account, AccountEntry):
            where = f"Accounts[{i}].Meta.Owner"
            if account.owner in owners:
                raise TemplateError(
                    f"{where}: {account.owner} is already the owner of {owners[account.owner]}"
                )
            owners[account.owner] = f"Accounts[{i}]"
    seeds: dict[str, int] = {}
    for i, miner in enumerate(template.miners):
        if miner.key_seed in seeds:
            raise TemplateError(
                f"Miners[{i}].KeySeed: {miner.key_seed!r} is also Miners[{seeds[miner.key_seed]}]'s"
            )
        seeds[miner.key_seed] = i
        for role, key in (("owner", miner.owner_key()), ("worker", miner.worker_key())):
            address = Address.of_key(key)
            if address in owners:
                raise TemplateError(
                    f"Miners[{i}].KeySeed: the derived {role} address {address} is also {owners[address]}"
                )
    # Every account, multisig, miner owner and worker and multisig signer needs an ID below the miners'.
    ids = len(template.accounts) + 2 * len(template.miners)
    signers = {s for a in template.accounts if isinstance(a, MultisigEntry) for s in a.signers}
    ids += len(signers - set(owners))
    if ACCOUNT_START_ID + ids > MINER_START_ID:
        raise TemplateError(
            f"Accounts: {ids} actors (accounts, multisigs, their signers, miner owners and workers) do "
            f"not fit in IDs {ACCOUNT_START_ID}..{MINER_START_ID - 1}"
        )
    available = TOTAL_FILECOIN - REWARD_ACTOR_BALANCE
    if template.allocated() > available:
        raise TemplateError(
            f"Accounts: balances total {template.allocated()} attoFIL, more than the {available} left "
            "once the reward actor holds its 1.1 billion FIL"
        )


def _example() -> dict[str, Any]:
    """The example template (docs/genesis.example.json holds the same): two funded accounts whose keys
    are derived from "example-alice" (secp256k1) and "example-bob" (BLS), a 2-of-2 vesting multisig of
    theirs, and one miner with two pre-sealed 2 KiB sectors."""
    alice = Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"example-alice")).to_string("t")
    bob = Address.of_key(PrivateKey.derive(KeyType.BLS, b"example-bob")).to_string("t")
    return {
        "NetworkName": "devnet",
        "Profile": "devnet",
        "Timestamp": 1_700_000_000,
        "Accounts": [
            {"Type": "account", "Balance": str(1_000_000 * FIL), "Meta": {"Owner": alice}},
            {"Type": "account", "Balance": str(1_000_000 * FIL), "Meta": {"Owner": bob}},
            {
                "Type": "multisig",
                "Balance": str(500_000 * FIL),
                "Meta": {"Signers": [alice, bob], "Threshold": 2, "VestingDuration": 2880, "VestingStart": 0},
            },
        ],
        "Miners": [
            {
                "ID": "t01000",
                "KeySeed": "example-miner-0",
                "OwnerBalance": str(100_000 * FIL),
                "WorkerBalance": str(10_000 * FIL),
                "PowerBalance": str(1_000 * FIL),
                "PeerId": "",
                "SectorSize": 2048,
                "Sectors": 2,
            }
        ],
    }


def example_template_json() -> str:
    return json.dumps(_example(), indent=2) + "\n"
