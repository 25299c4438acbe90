"""node/testnet.py: what `filpy testnet up/init` makes in its directory, and how it is found again."""

import json
import tomllib
from pathlib import Path

import pytest

from chain.store.blockstore import MemoryBlockstore
from chain.types.address import Address
from node.beacon.setup import key_name, read_chain_info
from node.devnet import account_key
from node.genesis import load_genesis_file
from node.keystore import KeyNotFound, Keystore
from node.p2p.identity import KeystoreIdentity, load_or_create_identity, peer_id_of
from node.preseal import read_presealed
from node.testnet import (
    RECORD,
    TestnetError,
    TestnetSpec,
    miner_node,
    prepare_testnet,
    read_testnet,
    remove_testnet,
)
from node.wallet import Wallet

T = "t"


def test_miners_go_to_the_nodes_after_the_bootstrap_node() -> None:
    assert [miner_node(i, 3, 2) for i in range(2)] == [1, 2]
    assert [miner_node(i, 4, 2) for i in range(2)] == [1, 2]  # node3: a plain full node
    assert [miner_node(i, 2, 2) for i in range(2)] == [0, 1]  # as many miners as nodes: node0 mines too
    assert [miner_node(i, 2, 3) for i in range(3)] == [0, 1, 0]
    assert [miner_node(i, 1, 2) for i in range(2)] == [0, 0]


def _config(repo: Path) -> dict[str, dict[str, object]]:
    return tomllib.loads((repo / "config.toml").read_text())


def test_a_new_testnet(tmp_path: Path) -> None:
    directory = tmp_path / "tn"
    spec = TestnetSpec(nodes=3, miners=2, block_delay=2, api_port=21000, p2p_port=22000)
    testnet = prepare_testnet(directory, spec, clock=lambda: 1_800_000_000.5)
    assert testnet.created and testnet.beacon == "drand" and testnet.block_delay == 2
    nodes = testnet.nodes
    assert [n.repo for n in nodes] == [directory / f"node{i}" for i in range(3)]
    assert [n.miners for n in nodes] == [(), (Address.parse("t01000"),), (Address.parse("t01001"),)]
    assert [n.api for n in nodes] == ["127.0.0.1:21000", "127.0.0.1:21001", "127.0.0.1:21002"]
    assert [n.listen for n in nodes] == [f"/ip4/127.0.0.1/tcp/{22000 + i}" for i in range(3)]

    header = load_genesis_file(MemoryBlockstore(), directory / "genesis.car")
    assert header.cid() == testnet.genesis and header.timestamp == 1_800_000_000
    info = read_chain_info(directory / "drand.json")
    assert header.beacon_entries == (info.genesis_entry,) and info.period == 2
    for node in nodes:
        repo = node.repo
        assert (repo / "genesis.car").read_bytes() == (directory / "genesis.car").read_bytes()
        assert read_chain_info(repo / "drand.json") == info
        keystore = Keystore(repo / "keystore")
        assert peer_id_of(load_or_create_identity(KeystoreIdentity(keystore))).to_base58() == node.peer_id
        config = _config(repo)
        assert config["api"]["listen"] == node.api
        assert config["libp2p"]["listen"] == [node.listen]
        assert config["libp2p"]["bootstrap"] == [n.peer_address for n in nodes[: node.index]]
        assert config["mining"]["enabled"] is bool(node.miners)
        assert config["chain"]["block_delay"] == 2
        # every node's slasher is on, reporting from the node's own funded account
        assert config["slasher"] == {
            "enabled": True,
            "address": Address.of_key(account_key(node.index)).to_string(T),
        }
        wallet = Wallet(keystore, T)
        assert all(wallet.has(Address.of_key(account_key(i))) for i in range(10))
        assert wallet.default() == Address.of_key(account_key(node.index))
        # the drand key only where the rounds are produced
        if node.index == 0:
            assert keystore.get(key_name(info.hash)).type == "drand-bls12381"
        else:
            with pytest.raises(KeyNotFound):
                keystore.get(key_name(info.hash))
        for miner in node.miners:
            presealed = read_presealed(repo / "sectors", miner, T)
            assert len(presealed.sectors) == 2
        assert not list((repo / "sectors").glob("pre-seal-*.json")) or node.miners

    record = json.loads((directory / RECORD).read_text())
    assert record["Nodes"][1]["Miners"] == ["t01000"] and record["Beacon"] == "drand"
    again = read_testnet(directory)
    assert again is not None and not again.created
    assert again.nodes == testnet.nodes and again.genesis == testnet.genesis


def test_found_again_or_refused(tmp_path: Path) -> None:
    directory = tmp_path / "tn"
    spec = TestnetSpec(nodes=2, miners=1, beacon="mock")
    made = prepare_testnet(directory, spec)
    assert made.beacon == "mock" and not (directory / "drand.json").exists()
    ports = {n.api for n in made.nodes} | {n.listen for n in made.nodes}
    assert len(ports) == 4  # free ports, all distinct
    found = prepare_testnet(directory, spec)
    assert not found.created and found.genesis == made.genesis and found.nodes == made.nodes
    with pytest.raises(TestnetError, match="has 2 nodes and 1 miners, not 3 and 1"):
        prepare_testnet(directory, TestnetSpec(nodes=3, miners=1, beacon="mock"))
    remade = prepare_testnet(directory, spec, reset=True)
    assert remade.created and remade.nodes != made.nodes  # new identities (and a new genesis naming them)


def test_bad_specs_and_foreign_directories(tmp_path: Path) -> None:
    for spec, message in (
        (TestnetSpec(nodes=0), "--nodes"),
        (TestnetSpec(miners=0), "--miners"),
        (TestnetSpec(block_delay=0), "follows the clock"),
        (TestnetSpec(beacon="sun"), "--beacon"),
        (TestnetSpec(api_port=80), "--api-port"),
    ):
        with pytest.raises(TestnetError, match=message):
            prepare_testnet(tmp_path / "x", spec)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(TestnetError, match="not empty and holds no complete testnet"):
        prepare_testnet(busy, TestnetSpec(nodes=1, miners=1, beacon="mock"))
    with pytest.raises(TestnetError, match=r"holds more than a testnet \(notes.txt\)"):
        remove_testnet(busy)
    assert (busy / "notes.txt").exists()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / RECORD).write_text('{"Version": 1}')
    with pytest.raises(TestnetError, match="is damaged"):
        read_testnet(damaged)
