"""The devnet before its chain runs: the same accounts everywhere, a genesis built into the repo (or
reused), keys in the wallet, --accounts and --reset, and a timestamp that changes nothing but the
block header."""

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from actors import builtin
from actors.power.state import ClaimsTable, PowerState
from chain.crypto.keys import KeyType, PrivateKey
from chain.state.tree import StateTree
from chain.store.blockstore import MemoryBlockstore, get_cbor
from chain.types.address import Address
from node.devnet import (
    ACCOUNT_BALANCE,
    DEFAULT_ACCOUNTS,
    MAX_ACCOUNTS,
    DevnetError,
    RichSealProgress,
    account_key,
    devnet_accounts,
    devnet_template,
    prepare_devnet,
)
from node.genesis import build_genesis, load_genesis_file, write_genesis_car
from node.genesis_template import FIL
from node.repo import Repo
from node.sealing.sectors import SectorStore
from node.wallet import Wallet, parse_key_text

NOW = 1_800_000_000.0


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    with Repo.open(tmp_path / "devnet", network="devnet") as opened:
        yield opened


def clock(value: float = NOW) -> Callable[[], float]:
    return lambda: value


def test_accounts_are_the_same_on_every_devnet() -> None:
    accounts = devnet_accounts(3)
    for account in accounts:
        label = f"filpy-devnet-account-{account.index}".encode()
        assert account.key == PrivateKey(KeyType.SECP256K1, hashlib.sha256(label).digest())
        assert account.key == account_key(account.index)
        # what `lotus wallet export` prints, and what `lotus wallet import` reads back
        assert parse_key_text(account.lotus_export) == account.key
        assert account.address == Address.of_key(account.key)
    assert len({a.address for a in devnet_accounts(DEFAULT_ACCOUNTS)}) == DEFAULT_ACCOUNTS
    assert devnet_accounts(0) == ()
    for bad in (-1, MAX_ACCOUNTS + 1):
        with pytest.raises(
            DevnetError, match=re.escape(f"--accounts: expected a number of accounts in 0..{MAX_ACCOUNTS}")
        ):
            devnet_accounts(bad)


def test_timestamp_changes_only_the_block_header() -> None:
    early = build_genesis(devnet_template(2, 1_700_000_000))
    late = build_genesis(devnet_template(2, 1_800_000_000))
    assert early.header.parent_state_root == late.header.parent_state_root
    assert early.header.ticket == late.header.ticket
    assert [s.comm_r for s in early.miners[0].sectors] == [s.comm_r for s in late.miners[0].sectors]
    assert (early.header.timestamp, late.header.timestamp) == (1_700_000_000, 1_800_000_000)
    assert early.cid != late.cid


def test_a_new_devnet(repo: Repo) -> None:
    seen: list[tuple[int, int]] = []
    devnet = prepare_devnet(
        repo, accounts=3, progress=lambda done, total: seen.append((done, total)), clock=clock()
    )
    assert devnet.created and seen == [(1, 2), (2, 2)]
    assert devnet.genesis_timestamp == int(NOW) and devnet.miner_address == Address.new_id(1000)
    assert [a.index for a in devnet.accounts] == [0, 1, 2]

    # the files, and devnet.json written last as the record
    store = MemoryBlockstore()
    header = load_genesis_file(store, repo.genesis_path)
    assert header.cid() == devnet.genesis_cid
    record = json.loads(repo.devnet_path.read_text())
    assert record == {
        "Version": 1,
        "Genesis": str(devnet.genesis_cid),
        "Accounts": 3,
        "Timestamp": int(NOW),
        "Miner": "t01000",
        "BlockDelay": 4,  # the repo config's chain.block_delay
    }
    assert devnet.block_delay == 4
    assert (repo.sectors_path / "pre-seal-t01000.json").is_file()

    # the sectors, indexed in the sector store where the pre-seal wrote them, ready to prove
    sectors = SectorStore.open(repo.sectors_path)
    assert [(s.miner, s.number) for s in sectors.sectors()] == [(1000, 0), (1000, 1)]
    assert [s.comm_r for s in sectors.sectors()] == [s.comm_r for s in devnet.miner.sectors]
    assert sectors.check(devnet.miner_address, [0, 1]) == []

    # the state: each account holds 100,000 FIL; the miner has its two 2 KiB sectors' power
    tree = StateTree.load(store, header.parent_state_root)
    for account in devnet.accounts:
        actor = tree.get_actor(account.address)
        assert actor is not None and actor.balance == ACCOUNT_BALANCE == 100_000 * FIL
    power_actor = tree.get_actor(builtin.STORAGE_POWER_ACTOR_ADDR)
    assert power_actor is not None
    power = PowerState.from_cbor(get_cbor(store, power_actor.head))
    claim = ClaimsTable.load(store, power.claims).get(devnet.miner_address)
    assert claim is not None and claim.raw_byte_power == 2 * 2048
    assert [s.number for s in devnet.miner.sectors] == [0, 1]

    # the keys: accounts, owner and worker in the wallet; account 0 the default
    wallet = Wallet(repo.keystore, "t")
    expected = {a.address for a in devnet.accounts} | {devnet.miner.owner, devnet.miner.worker}
    assert set(wallet.list()) == expected
    assert wallet.default() == devnet.accounts[0].address
    assert wallet.load_all() == []


def test_a_second_start_reuses_the_genesis(repo: Repo) -> None:
    first = prepare_devnet(repo, clock=clock())
    later = prepare_devnet(repo, clock=clock(NOW + 3600))
    assert not later.created
    assert later.genesis_cid == first.genesis_cid and later.genesis_timestamp == int(NOW)
    assert len(later.accounts) == DEFAULT_ACCOUNTS
    assert [s.comm_r for s in later.miner.sectors] == [s.comm_r for s in first.miner.sectors]
    index = repo.sectors_path / "index.json"
    indexed = index.stat().st_mtime_ns
    prepare_devnet(repo)
    assert index.stat().st_mtime_ns == indexed  # indexed once, not again on every start
    # a user's own choice of default survives restarts
    wallet = Wallet(repo.keystore, "t")
    wallet.set_default(first.accounts[4].address)
    prepare_devnet(repo)
    assert wallet.default() == first.accounts[4].address


def test_accounts_must_match_the_devnet_in_the_repo(repo: Repo) -> None:
    prepare_devnet(repo, accounts=4, clock=clock())
    assert len(prepare_devnet(repo).accounts) == 4  # no --accounts: whatever the devnet has
    with pytest.raises(DevnetError) as refused:
        prepare_devnet(repo, accounts=5)
    assert str(refused.value) == (
        f"the devnet in {repo.path} has 4 accounts, not 5: run without --accounts to resume it, "
        "or with --reset to start a new devnet"
    )


def test_the_block_delay_is_the_devnets(repo: Repo) -> None:
    made = prepare_devnet(repo, block_delay=1, clock=clock())
    assert made.block_delay == 1 and json.loads(repo.devnet_path.read_text())["BlockDelay"] == 1
    assert prepare_devnet(repo).block_delay == 1  # no --block-delay: the devnet's, not the config's 4
    assert prepare_devnet(repo, block_delay=1).block_delay == 1
    with pytest.raises(DevnetError) as refused:
        prepare_devnet(repo, block_delay=0)
    assert str(refused.value) == (
        f"the devnet in {repo.path} was made with --block-delay 1, not 0 (its blocks' timestamps follow "
        "its delay): run without --block-delay to resume it, or with --reset to start a new devnet"
    )
    assert prepare_devnet(repo, block_delay=0, reset=True).block_delay == 0
    for bad in (-1, 31):
        with pytest.raises(DevnetError, match=r"--block-delay: expected seconds in 1\.\.30, or 0"):
            prepare_devnet(repo, block_delay=bad)


def test_reset_starts_a_new_devnet(repo: Repo) -> None:
    first = prepare_devnet(repo, accounts=2, clock=clock())
    (repo.datastore_path / "CURRENT").write_text("MANIFEST-000001\n")  # a chain was run
    Wallet(repo.keystore, "t").new(KeyType.BLS)  # the user's own key
    second = prepare_devnet(repo, accounts=5, reset=True, clock=clock(NOW + 60))
    assert second.created and second.genesis_cid != first.genesis_cid
    assert second.genesis_timestamp == int(NOW + 60) and len(second.accounts) == 5
    assert list(repo.datastore_path.iterdir()) == []
    assert len(Wallet(repo.keystore, "t").list()) == 5 + 2 + 1  # the user's key is kept


def test_a_chain_without_a_complete_genesis_is_refused(repo: Repo) -> None:
    (repo.datastore_path / "CURRENT").write_text("MANIFEST-000001\n")
    with pytest.raises(DevnetError, match="holds a chain but the repo has no complete devnet genesis"):
        prepare_devnet(repo)
    assert not repo.genesis_path.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: r.genesis_path.write_bytes(b"not a car"), "is damaged \\(.*not a genesis CAR"),
        (lambda r: r.genesis_path.unlink(), "is damaged \\(.*genesis.car: .*No such file"),
        (
            lambda r: (r.sectors_path / "pre-seal-t01000.json").unlink(),
            "is damaged \\(.*cannot read manifest",
        ),
        (lambda r: r.devnet_path.write_text("{"), "devnet.json is damaged"),
        (
            lambda r: (r.sectors_path / "index.json").write_text("{"),
            "sector store in .* is damaged \\(.*index.json: not valid JSON",
        ),
        (lambda r: r.devnet_path.write_text('{"Version": 1}'), "devnet.json is damaged \\('Accounts'\\)"),
    ],
)
def test_a_damaged_devnet_says_to_reset(repo: Repo, damage: Callable[[Repo], object], message: str) -> None:
    prepare_devnet(repo, accounts=1, clock=clock())
    damage(repo)
    with pytest.raises(DevnetError, match=message + ".*run with --reset to start over"):
        prepare_devnet(repo)
    assert prepare_devnet(repo, reset=True).created


def test_another_genesis_in_place_of_the_recorded_one(repo: Repo) -> None:
    prepare_devnet(repo, accounts=1, clock=clock())
    other = build_genesis(devnet_template(1, 1))
    write_genesis_car(other, repo.genesis_path)
    with pytest.raises(DevnetError, match=f"genesis.car is genesis {other.cid}, but .*devnet.json records"):
        prepare_devnet(repo)


def test_a_mainnet_repo_is_not_a_devnet(tmp_path: Path) -> None:
    with (
        Repo.open(tmp_path / "main", network="mainnet") as repo,
        pytest.raises(DevnetError, match="is a mainnet repo; a devnet needs a devnet repo"),
    ):
        prepare_devnet(repo)


def test_progress_bar_shows_the_sealing(repo: Repo) -> None:
    out = io.StringIO()
    with RichSealProgress(Console(file=out, force_terminal=False, width=100)) as progress:
        prepare_devnet(repo, accounts=1, progress=progress, clock=clock())
    assert "sealing genesis sectors" in out.getvalue() and "2/2" in out.getvalue()
    quiet = io.StringIO()
    with RichSealProgress(Console(file=quiet, width=100)) as progress:
        prepare_devnet(repo, progress=progress)  # reused: nothing sealed, no bar
    assert quiet.getvalue() == ""
