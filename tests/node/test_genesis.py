"""`filpy genesis`: template errors, determinism, the state built on the VM, the CAR round trip (memory
and LevelDB stores), the sectors directory and the CLI."""

import copy
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors import builtin
from actors.account.types import AccountState
from actors.miner.state import MinerState, Sectors
from actors.multisig.types import MultisigState
from actors.power.state import ClaimsTable, PowerState
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.randomness import DomainSeparationTag, draw_randomness_from_digest
from chain.encoding import dagcbor
from chain.state.init_state import InitState
from chain.state.tree import StateTree
from chain.store.blockstore import Blockstore, LevelDBBlockstore, MemoryBlockstore, get_cbor
from chain.store.car import read_car, write_car
from chain.types.address import Address
from chain.types.message import TOTAL_FILECOIN
from cli import main as cli
from node.genesis import (
    FILECOIN_GENESIS_CID,
    RESERVE_ACTOR_ADDR,
    Genesis,
    GenesisError,
    GenesisRandomness,
    build_genesis,
    genesis_car_bytes,
    load_genesis_car,
    load_genesis_file,
)
from node.genesis_template import (
    FIL,
    REWARD_ACTOR_BALANCE,
    GenesisTemplate,
    TemplateError,
    example_template_json,
    parse_template,
)
from tests.node.genesis_example import build_example, example
from tests.paths import ROOT
from tests.processes import run_python

DOCS = ROOT / "docs"
ALICE = PrivateKey.derive(KeyType.SECP256K1, b"example-alice")
BOB = PrivateKey.derive(KeyType.BLS, b"example-bob")


@pytest.fixture(scope="module")
def built() -> Genesis:
    return build_example()


def test_checked_in_example_is_the_example() -> None:
    assert json.loads((DOCS / "genesis.example.json").read_text()) == example()


# -- template errors -------------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting the value at a dotted path (list indexes as numbers); _DROP deletes it."""

    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        key: Any = int(last) if last.isdigit() else last
        if value is _DROP:
            del node[key]
        else:
            node[key] = value

    return mutate


_DROP = object()
MAINNET_ALICE = Address.of_key(ALICE).to_string("f")
ALICE_T = Address.of_key(ALICE).to_string("t")

BAD_TEMPLATES = [
    ("NetworkName", _DROP, "NetworkName: required key is missing"),
    ("NetworkName", "", "NetworkName: expected a non-empty string"),
    ("NetworkName", 7, "NetworkName: expected a non-empty string"),
    ("Timestamp", -1, "Timestamp: -1 is outside"),
    ("Timestamp", "now", "Timestamp: expected an integer"),
    ("Timestamp", 1.5, "Timestamp: expected an integer"),
    ("Profile", "moonnet", "Profile: expected one of devnet, mainnet"),
    ("Shiny", True, "unknown key 'Shiny'"),
    ("Accounts", {}, "Accounts: expected a list"),
    ("Accounts.0", "alice", "Accounts[0]: expected a JSON object"),
    ("Accounts.0.Type", "robot", 'Accounts[0].Type: expected "account" or "multisig"'),
    ("Accounts.0.Balance", "-5", "Accounts[0].Balance: '-5' is not a decimal amount"),
    ("Accounts.0.Balance", "1e21", "Accounts[0].Balance: '1e21' is not a decimal amount"),
    ("Accounts.0.Balance", 1.5, "Accounts[0].Balance: expected attoFIL"),
    (
        "Accounts.0.Balance",
        str(TOTAL_FILECOIN + 1),
        "Accounts[0].Balance: 2000000000000000000000000001 attoFIL",
    ),
    ("Accounts.0.Meta", _DROP, "Accounts[0].Meta: required key is missing"),
    ("Accounts.0.Meta.Owner", MAINNET_ALICE, "Accounts[0].Meta.Owner: address"),
    ("Accounts.0.Meta.Owner", "t01234", "Accounts[0].Meta.Owner: t01234 is not a secp256k1"),
    ("Accounts.0.Meta.Owner", "t1nonsense", "Accounts[0].Meta.Owner:"),
    ("Accounts.0.Meta.Signers", [ALICE_T], "Accounts[0].Meta: unknown key 'Signers'"),
    ("Accounts.1.Meta.Owner", ALICE_T, "Accounts[1].Meta.Owner: t1"),
    ("Accounts.2.Meta.Signers", [], "Accounts[2].Meta.Signers: expected a non-empty list"),
    ("Accounts.2.Meta.Signers", [ALICE_T, ALICE_T], "Accounts[2].Meta.Signers: a signer is listed twice"),
    ("Accounts.2.Meta.Signers.1", "t099", "Accounts[2].Meta.Signers[1]: t099 is not"),
    ("Accounts.2.Meta.Threshold", 3, "Accounts[2].Meta.Threshold: 3 is outside 1..2"),
    ("Accounts.2.Meta.Threshold", 0, "Accounts[2].Meta.Threshold: 0 is outside 1..2"),
    ("Accounts.2.Meta.VestingDuration", -1, "Accounts[2].Meta.VestingDuration: -1 is outside"),
    ("Accounts.2.Meta.VestingStart", "0", "Accounts[2].Meta.VestingStart: expected an integer"),
    ("Miners", "t01000", "Miners: expected a list"),
    ("Miners.0.ID", "t01001", "Miners[0].ID: t01001 is not the ID this miner gets"),
    ("Miners.0.ID", "t1nonsense", "Miners[0].ID:"),
    ("Miners.0.KeySeed", _DROP, "Miners[0].KeySeed: required key is missing"),
    ("Miners.0.KeySeed", "", "Miners[0].KeySeed: expected a non-empty string"),
    ("Miners.0.PowerBalance", _DROP, "Miners[0].PowerBalance: required key is missing"),
    ("Miners.0.PowerBalance", str(10**6 * FIL), "Miners[0].PowerBalance: 1000000000000000000000000 exceeds"),
    ("Miners.0.OwnerBalance", "lots", "Miners[0].OwnerBalance: 'lots' is not a decimal amount"),
    (
        "Miners.0.WorkerBalance",
        None,
        "Miners[0].WorkerBalance: expected attoFIL as a decimal string, got null",
    ),
    ("Miners.0.PeerId", "0OIl", "Miners[0].PeerId: '0OIl' is not base58"),
    ("Miners.0.PeerId", 12, "Miners[0].PeerId: expected a base58 peer ID string"),
    ("Miners.0.SectorSize", 4096, "Miners[0].SectorSize: sector size 4096 cannot be sealed"),
    ("Miners.0.SectorSize", 0, "Miners[0].SectorSize: 0 is outside"),
    ("Miners.0.Sectors", 0, "Miners[0].Sectors: 0 is outside 1..64"),
    ("Miners.0.Sectors", 65, "Miners[0].Sectors: 65 is outside 1..64"),
    ("Miners.0.Color", "red", "Miners[0]: unknown key 'Color'"),
    ("Accounts.0.Balance", str(TOTAL_FILECOIN), "Accounts: balances total"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), BAD_TEMPLATES, ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD_TEMPLATES]
)
def test_each_bad_field_is_named(path: str, value: Any, message: str) -> None:
    raw = example()
    _set(path, value)(raw)
    with pytest.raises(TemplateError) as info:
        parse_template(raw)
    assert message in str(info.value)


def test_template_level_errors() -> None:
    with pytest.raises(TemplateError, match="not valid JSON"):
        GenesisTemplate.from_json("{not json")
    with pytest.raises(TemplateError, match="expected a JSON object, got list"):
        GenesisTemplate.from_json("[]")
    raw = example()
    raw["Miners"].append(dict(raw["Miners"][0], ID="t01001"))
    with pytest.raises(TemplateError, match=r"Miners\[1\].KeySeed: 'example-miner-0' is also Miners\[0\]'s"):
        parse_template(raw)
    raw = example()
    raw["Accounts"][0]["Meta"]["Owner"] = Address.of_key(raw_miner_owner()).to_string("t")
    with pytest.raises(
        TemplateError, match=r"Miners\[0\].KeySeed: the derived owner address .* is also Accounts\[0\]"
    ):
        parse_template(raw)
    raw = {"NetworkName": "main", "Profile": "mainnet", "Timestamp": 0, "Miners": [example()["Miners"][0]]}
    raw["Miners"][0]["ID"] = "f01000"
    with pytest.raises(
        TemplateError, match=r"Miners\[0\].SectorSize: 2048-byte sectors .* not allowed on the mainnet"
    ):
        parse_template(raw)
    raw = example()
    raw["Accounts"] = [
        {
            "Type": "account",
            "Balance": "1",
            "Meta": {
                "Owner": Address.of_key(PrivateKey.derive(KeyType.SECP256K1, bytes([i, j]))).to_string("t")
            },
        }
        for i in range(4)
        for j in range(250)
    ]
    with pytest.raises(TemplateError, match=r"Accounts: 1002 actors .* do not fit in IDs 100..999"):
        parse_template(raw)


def raw_miner_owner() -> PrivateKey:
    return PrivateKey.derive(KeyType.SECP256K1, b"example-miner-0/owner")


def test_a_miner_without_the_funds_for_its_pledge_is_a_genesis_error() -> None:
    raw = example()
    raw["Miners"][0]["PowerBalance"] = "1"
    expected = r"Miners\[0\]: PreCommitSector 0: failed with exit code 19 ErrInsufficientFunds"
    with pytest.raises(GenesisError, match=expected):
        build_genesis(parse_template(raw))


# -- the state -----------------------------------------------------------------------------------------


def _state(store: Blockstore, tree: StateTree, address: Address, state_type: Any) -> Any:
    actor = tree.get_actor(address)
    assert actor is not None, f"no actor at {address}"
    return state_type.from_cbor(get_cbor(store, actor.head))


def check_example_state(store: Blockstore, state_root: Any) -> None:
    """The example template's actors, balances, multisig, miner and power, as built on the VM."""
    tree = StateTree.load(store, state_root)
    template = parse_template(example())
    balances = {address: actor.balance for address, actor in tree.actors()}
    assert sum(balances.values()) == TOTAL_FILECOIN
    alice, bob = Address.of_key(ALICE), Address.of_key(BOB)
    assert tree.lookup_id(alice) == Address.new_id(100) and tree.lookup_id(bob) == Address.new_id(101)
    assert balances[Address.new_id(100)] == balances[Address.new_id(101)] == 1_000_000 * FIL
    assert _state(store, tree, Address.new_id(100), AccountState).address == alice
    wallet = _state(store, tree, Address.new_id(102), MultisigState)
    assert wallet.signers == (Address.new_id(100), Address.new_id(101))
    assert (wallet.num_approvals_threshold, wallet.unlock_duration, wallet.initial_balance) == (
        2,
        2880,
        500_000 * FIL,
    )
    assert balances[Address.new_id(102)] == 500_000 * FIL
    assert balances[builtin.REWARD_ACTOR_ADDR] == REWARD_ACTOR_BALANCE
    assert balances[RESERVE_ACTOR_ADDR] == TOTAL_FILECOIN - REWARD_ACTOR_BALANCE - template.allocated()
    assert balances[builtin.BURNT_FUNDS_ACTOR_ADDR] == 0
    assert balances[builtin.SYSTEM_ACTOR_ADDR] == 0
    init = _state(store, tree, builtin.INIT_ACTOR_ADDR, InitState)
    assert (init.network_name, init.next_id) == ("devnet", 1001)

    miner_entry = template.miners[0]
    owner, worker = Address.of_key(miner_entry.owner_key()), Address.of_key(miner_entry.worker_key())
    assert balances[tree.lookup_id(owner)] == 99_000 * FIL  # type: ignore[index]
    assert balances[tree.lookup_id(worker)] == 10_000 * FIL  # type: ignore[index]
    miner = Address.new_id(1000)
    assert balances[miner] == 1_000 * FIL
    miner_state = _state(store, tree, miner, MinerState)
    info = miner_state.get_info(store)
    assert (info.owner, info.worker) == (tree.lookup_id(owner), tree.lookup_id(worker))
    sectors = Sectors.load(store, miner_state.sectors)
    for number in (0, 1):
        sector = sectors.get(number)
        assert sector is not None and sector.activation == 0 and sector.deal_ids == ()
    assert sectors.get(2) is None
    assert miner_state.initial_pledge > 0 and miner_state.pre_commit_deposits == 0

    power = _state(store, tree, builtin.STORAGE_POWER_ACTOR_ADDR, PowerState)
    claim = ClaimsTable.load(store, power.claims).get(miner)
    assert claim is not None and (claim.raw_byte_power, claim.quality_adj_power) == (4096, 4096)
    assert power.total_raw_byte_power == power.total_bytes_committed == 4096
    assert power.this_epoch_raw_byte_power == power.this_epoch_quality_adj_power == 4096
    assert power.total_pledge_collateral == miner_state.initial_pledge
    assert power.miner_count == power.miner_above_min_power_count == 1
    # Above the devnet consensus minimum: this miner may win blocks.
    assert power.miner_meets_consensus_minimum(store, template.policy, miner)


def test_the_example_state(built: Genesis) -> None:
    check_example_state(built.store, built.header.parent_state_root)


def test_genesis_block_shape(built: Genesis) -> None:
    header = built.header
    assert header.height == 0 and header.parent_weight == 0 and str(header.miner) == "t00"
    assert header.parents == (FILECOIN_GENESIS_CID,)
    assert str(FILECOIN_GENESIS_CID) == "bafyreiaqpwbbyjo4a42saasj36kkrpv4tsherf2e7bvezkert2a7dhonoi"
    assert header.timestamp == 1_700_000_000
    assert header.parent_base_fee == 100_000_000
    assert header.block_sig is None and header.bls_aggregate is None
    assert [(e.round, e.data) for e in header.beacon_entries] == [(0, bytes(32))]
    assert header.ticket is not None and len(header.ticket.vrf_proof) == 32


def test_sealed_sectors_use_the_randomness_the_chain_gives_before_genesis(built: Genesis) -> None:
    """The seal ticket and seed are what a chain draws for epoch -1 from this genesis block."""
    source = GenesisRandomness.of(built.header)
    (miner,) = built.miners
    entropy = dagcbor.encode(miner.id_address.to_cbor())
    ticket = draw_randomness_from_digest(
        source.chain_digest(-1), DomainSeparationTag.SealRandomness, -1, entropy
    )
    seed = draw_randomness_from_digest(
        source.beacon_digest(-1), DomainSeparationTag.InteractiveSealChallengeSeed, -1, entropy
    )
    assert all(s.ticket == ticket and s.seed == seed for s in miner.sectors)
    with pytest.raises(ValueError, match="after the genesis"):
        source.chain_digest(1)


# -- determinism ---------------------------------------------------------------------------------------


def test_same_template_same_cid(built: Genesis) -> None:
    again = build_genesis(parse_template(example()))
    assert again.cid == built.cid
    assert genesis_car_bytes(again) == genesis_car_bytes(built)


def test_same_cid_in_another_process(built: Genesis, tmp_path: Path) -> None:
    """A fresh interpreter (another hash seed) builds the same genesis."""
    template = tmp_path / "t.json"
    template.write_text(example_template_json())
    env = dict(os.environ, PYTHONHASHSEED="12345")
    done = run_python("-m", "cli", "genesis", "new", str(template), str(tmp_path / "g.car"), env=env)
    assert done.returncode == 0, done.stderr
    assert f"genesis CID:  {built.cid}" in done.stdout


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("Timestamp", 1_700_000_001),
        ("NetworkName", "devnet-2"),
        ("Accounts.0.Balance", str(999_999 * FIL)),
        ("Accounts.2.Meta.Threshold", 1),
        ("Miners.0.Sectors", 1),
        ("Miners.0.KeySeed", "another-miner"),
        ("Miners.0.PowerBalance", str(1_001 * FIL)),
    ],
)
def test_a_changed_field_changes_the_cid(built: Genesis, path: str, value: Any) -> None:
    raw = example()
    _set(path, value)(raw)
    assert build_genesis(parse_template(raw)).cid != built.cid


# -- CAR round trip ------------------------------------------------------------------------------------


def test_car_holds_exactly_the_genesis(built: Genesis) -> None:
    roots, sections = read_car(io.BytesIO(genesis_car_bytes(built)))
    assert roots == (built.cid,)
    assert sections[0] == (built.cid, built.header.to_bytes())
    cids = [cid for cid, _ in sections]
    assert len(cids) == len(set(cids))
    assert FILECOIN_GENESIS_CID in cids and built.header.messages in cids


@pytest.mark.parametrize("kind", ["memory", "leveldb"])
def test_car_round_trip(built: Genesis, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "genesis.car"
    path.write_bytes(genesis_car_bytes(built))
    if kind == "memory":
        store: Any = MemoryBlockstore()
        header = load_genesis_file(store, path)
    else:
        store = LevelDBBlockstore(tmp_path / "db")
        header = load_genesis_file(store, path)
        store.close()
        store = LevelDBBlockstore(tmp_path / "db", create=False)
    try:
        assert header == built.header and header.cid() == built.cid
        check_example_state(store, header.parent_state_root)
    finally:
        if kind == "leveldb":
            store.close()


def test_loading_refuses_what_is_not_a_complete_genesis(built: Genesis) -> None:
    data = genesis_car_bytes(built)
    with pytest.raises(GenesisError, match="not a genesis CAR"):
        load_genesis_car(MemoryBlockstore(), io.BytesIO(data[: len(data) // 2]))
    _, sections = read_car(io.BytesIO(data))

    def car(roots: list[Any], blocks: list[tuple[Any, bytes]]) -> io.BytesIO:
        out = io.BytesIO()
        write_car(out, roots, blocks)
        out.seek(0)
        return out

    state_root = built.header.parent_state_root
    missing = [(cid, block) for cid, block in sections if cid != state_root]
    with pytest.raises(GenesisError, match="incomplete"):
        load_genesis_car(MemoryBlockstore(), car([built.cid], missing))
    with pytest.raises(GenesisError, match="one root"):
        load_genesis_car(MemoryBlockstore(), car([built.cid, built.cid], sections))
    with pytest.raises(GenesisError, match="not a genesis CAR"):
        load_genesis_car(MemoryBlockstore(), car([FILECOIN_GENESIS_CID], sections))


# -- writing the CAR (the CLI's own tests are in tests/cli/test_genesis.py) ------------------------


def test_rewriting_a_genesis_replaces_the_file(built: Genesis, tmp_path: Path) -> None:
    template = tmp_path / "template.json"
    template.write_text(example_template_json())
    out = tmp_path / "genesis.car"
    out.write_bytes(b"old")
    assert cli.main(["genesis", "new", str(template), str(out)]) == 0
    assert out.read_bytes() == genesis_car_bytes(built)


def test_a_genesis_without_miners() -> None:
    raw = copy.deepcopy(example())
    del raw["Miners"]
    genesis = build_genesis(parse_template(raw))
    assert genesis.miners == ()
    store = MemoryBlockstore()
    header = load_genesis_car(store, io.BytesIO(genesis_car_bytes(genesis)))
    tree = StateTree.load(store, header.parent_state_root)
    power = _state(store, tree, builtin.STORAGE_POWER_ACTOR_ADDR, PowerState)
    assert power.miner_count == 0 and power.total_bytes_committed == 0
