"""node/mining/create.py: power.CreateMiner through the node (a new BLS worker's account made first, as
lotus-miner init does), the new miner's addresses from the return, the miner recorded in the durable
list of local miners; refusals say why and send nothing."""

from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer import id as peer_ids
from multiaddr import Multiaddr

from chain.chainstore.store import ChainStore
from chain.params import DEVNET, MAINNET
from chain.stmgr import miners as miner_queries
from chain.types.address import Address, Protocol
from node.genesis_template import FIL
from node.mining.create import (
    LocalMinerRecord,
    LocalMiners,
    MinerCreateError,
    create_miner,
    format_sector_size,
    parse_sector_size,
    seal_proof_for,
)
from tests.consensus.devchain import CAROL
from tests.sealing.devnet import OWNER, Devnet


def test_sector_sizes() -> None:
    assert [parse_sector_size(t) for t in ("2KiB", "8MiB", "512MiB", "2048", "2kib", "8 MiB", "1GiB")] == [
        2048,
        8 << 20,
        512 << 20,
        2048,
        2048,
        8 << 20,
        1 << 30,
    ]
    with pytest.raises(MinerCreateError, match="not a sector size"):
        parse_sector_size("big")
    assert [seal_proof_for(DEVNET, s) for s in (2048, 8 << 20, 512 << 20)] == [5, 6, 7]
    with pytest.raises(
        MinerCreateError, match="the devnet network takes sectors of 2KiB, 8MiB, 512MiB, not 32GiB"
    ):
        seal_proof_for(DEVNET, 32 << 30)
    with pytest.raises(MinerCreateError, match="takes sectors of 512MiB, not 2KiB"):
        seal_proof_for(MAINNET, 2048)
    assert format_sector_size(8 << 20) == "8MiB"


async def test_create_a_miner_with_a_new_worker_key(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    worker = net.node.wallet.new("bls")
    peer = peer_ids.ID.from_pubkey(create_new_key_pair().public_key)
    async with net.running():
        created = await net.create_miner(
            sector_size=2048,
            pledge=7 * FIL,
            worker=worker,
            peer_id=peer.to_base58(),
            multiaddrs=["/ip4/127.0.0.1/tcp/4001"],
        )
    assert created.worker_init_message is not None  # the worker had no account yet
    # the worker's new account took ID 1001
    assert created.id_address.protocol == Protocol.ID and created.id_address.id == 1002
    assert created.robust_address.protocol == Protocol.ACTOR
    tree = net.node.state.tree(net.node.state.state_of(net.head).state_root)
    info = miner_queries.miner_info(tree, created.id_address)
    assert tree.lookup_id(OWNER) == info.owner and tree.lookup_id(worker) == info.worker
    assert info.sector_size == 2048 and info.window_post_proof_type == 10  # StackedDrgWindow2KiBV1_1
    assert info.peer_id == peer.to_bytes()
    assert info.multiaddrs == (Multiaddr("/ip4/127.0.0.1/tcp/4001").to_bytes(),)
    actor = tree.get_actor(created.id_address)
    assert actor is not None and actor.balance == 7 * FIL
    assert tree.lookup_id(created.robust_address) == created.id_address
    (record,) = net.miners.list()
    assert record == LocalMinerRecord(
        id_address=created.id_address,
        robust_address=created.robust_address,
        owner=OWNER,
        worker=worker,
        sector_size=2048,
        seal_proof=5,
        create_message=created.message,
    )
    lines = created.lines()
    assert lines[0].startswith(f"Initializing worker account {worker.to_string()}, message: ")
    assert lines[1] == f"Pushed CreateMiner message: {created.message}"
    assert lines[2] == f"New miners address is: t01002 ({created.robust_address.to_string()})"
    assert created.to_json()["IDAddress"] == "t01002"


async def test_refusals_say_why_and_send_nothing(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    node = net.node
    carol = Address.of_key(CAROL)  # funded on chain, but not in this wallet
    with pytest.raises(MinerCreateError, match="must be a BLS key"):
        await create_miner(node, net.miners, owner=OWNER, worker=OWNER, sector_size=2048)
    with pytest.raises(
        MinerCreateError, match=f"the owner key {carol.to_string()} is not in this node's wallet"
    ):
        await create_miner(node, net.miners, owner=carol, worker=node.wallet.new("bls"), sector_size=2048)
    with pytest.raises(MinerCreateError, match="not 4KiB"):
        await create_miner(node, net.miners, owner=OWNER, worker=OWNER, sector_size=4096)
    with pytest.raises(MinerCreateError, match="is not a libp2p peer ID"):
        await create_miner(
            node, net.miners, owner=OWNER, worker=node.wallet.new("bls"), sector_size=2048, peer_id="nope"
        )
    with pytest.raises(MinerCreateError, match="is not an account on chain"):
        await create_miner(node, net.miners, owner=Address.new_id(4242), worker=OWNER, sector_size=2048)
    pending, _ = node.mpool.pending()
    assert pending == [] and net.miners.list() == []


def test_the_local_miners_list_is_kept_with_the_chain(tmp_path: Path) -> None:
    record = LocalMinerRecord(
        id_address=Address.new_id(1001),
        robust_address=Address.new_id(1001),
        owner=Address.new_id(100),
        worker=Address.new_id(101),
        sector_size=8 << 20,
        seal_proof=6,
    )
    chain = ChainStore.open(tmp_path / "datastore")
    LocalMiners.for_chain(chain).add(record)
    chain.close()
    chain = ChainStore.open(tmp_path / "datastore")
    miners = LocalMiners.for_chain(chain)
    assert miners.list() == [record]
    assert miners.get(Address.new_id(1001)) == record
    assert miners.get(Address.new_id(1002)) is None
    chain.close()
