"""Which sectors a deadline's PoSt proves, how partitions are packed into messages, and the proofs."""

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pytest

from actors.dispatch import encode_params
from actors.miner.deadlines import Partition
from actors.miner.state import SectorOnChainInfo
from actors.miner.types import MinerMethod, PowerPair
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding.cid import CID
from chain.params import DEVNET
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.message import Message, sign_message
from chain.vm.syscalls import sealed_cid
from node.mining import wdpost_proofs
from node.preseal import write_presealed
from node.sealing.sectors import SectorStore
from proofs import post, seal
from proofs.registered import make_prover_id
from tests.mining.vm_node import devnet_genesis

POST_PROOF: Final = 10
RANDOMNESS: Final = bytes(range(32))
MINER: Final = Address.new_id(1000)
NOWHERE: Final = CID.hash_of(b"\xa0")


def partition(
    sectors: list[int],
    faults: tuple[int, ...] | list[int] = (),
    recoveries: tuple[int, ...] | list[int] = (),
    terminated: tuple[int, ...] | list[int] = (),
) -> Partition:
    bf = BitField.from_bits
    return Partition(
        bf(sectors),
        bf(faults),
        bf(recoveries),
        bf(terminated),
        NOWHERE,
        PowerPair(),
        PowerPair(),
        PowerPair(),
    )


def test_what_a_partition_must_prove() -> None:
    partitions = [
        partition([0, 1, 2, 3], faults=[1, 2], recoveries=[2], terminated=[3]),  # 0 live, 2 recovering
        partition([4, 5], faults=[4, 5]),  # all faulty, none recovering: nothing to prove
        partition([6, 7]),  # proven already
        partition([8, 9], terminated=[8, 9]),  # all terminated
        partition([10]),
    ]
    tasks = wdpost_proofs.partitions_to_prove(partitions, posted=BitField.from_bits([2]))
    assert tasks == (
        wdpost_proofs.PartitionTask(0, BitField.from_bits([0, 2])),
        wdpost_proofs.PartitionTask(4, BitField.from_bits([10])),
    )


def test_the_actors_partition_limit() -> None:
    assert wdpost_proofs.max_partitions_per_message(DEVNET, 2) == min(25_000 // 2, 3000)
    assert wdpost_proofs.max_partitions_per_message(DEVNET, 2349) == 10


def test_the_entropy_is_the_miners_id_address_as_cbor() -> None:
    assert wdpost_proofs.post_entropy(MINER) == b"\x43\x00\xe8\x07"


@pytest.fixture
def store(tmp_path: Path) -> SectorStore:
    genesis = devnet_genesis(4)
    write_presealed(tmp_path, genesis.miners[0], "t")
    sectors = SectorStore.open(tmp_path)
    sectors.import_presealed(tmp_path, MINER, "t")
    return sectors


def chain_infos(store: SectorStore) -> dict[int, SectorOnChainInfo]:
    return {
        s.number: SectorOnChainInfo(
            sector_number=s.number,
            seal_proof=s.seal_proof,
            sealed_cid=sealed_cid(s.comm_r),
            deal_ids=(),
            activation=0,
            expiration=1000,
            deal_weight=0,
            verified_deal_weight=0,
            initial_pledge=0,
            expected_day_reward=0,
            expected_storage_pledge=0,
            replaced_sector_age=0,
            replaced_day_reward=0,
            sector_key_cid=None,
            simple_qa_power=True,
            unsealed_cid=s.unsealed_cid,
        )
        for s in store.sectors(MINER)
    }


TASKS: Final = (
    wdpost_proofs.PartitionTask(0, BitField.from_bits([0, 1])),
    wdpost_proofs.PartitionTask(3, BitField.from_bits([2, 3])),
)


def check(store: SectorStore, prepared: wdpost_proofs.PreparedPoSt, sectors: tuple[int, ...]) -> None:
    public = [post.PublicSector(n, store.get(MINER, n).comm_r) for n in sectors]
    assert post.verify_window_post(POST_PROOF, RANDOMNESS, public, prepared.proof.proof_bytes)


def prove(
    store: SectorStore,
    *,
    tasks: Sequence[wdpost_proofs.PartitionTask] = TASKS,
    deadline: int = 5,
    infos: dict[int, SectorOnChainInfo] | None = None,
    per_message: int = 10,
    max_message_size: int = 65536,
) -> wdpost_proofs.DeadlineProofs:
    """prove_deadline for MINER's sectors in store (their chain infos unless infos is given)."""
    return wdpost_proofs.prove_deadline(
        store,
        MINER,
        deadline,
        POST_PROOF,
        RANDOMNESS,
        tasks,
        chain_infos(store) if infos is None else infos,
        per_message=per_message,
        max_message_size=max_message_size,
    )


def test_one_message_when_it_fits(store: SectorStore) -> None:
    proofs = prove(store)
    (only,) = proofs.posts
    assert only.indices == (0, 3) and only.proven == (0, 1, 2, 3)
    assert len(only.proof.proof_bytes) == wdpost_proofs.window_post_size(POST_PROOF, 4)
    check(store, only, only.proven)
    # Made one proof partition at a time, it is the proof of all four sectors at once.
    whole = post.generate_window_post(
        POST_PROOF, RANDOMNESS, [store.proving_sector(MINER, n) for n in range(4)]
    )
    assert only.proof.proof_bytes == whole.to_bytes()
    assert proofs.covers(TASKS) and not proofs.skipped


def test_partitions_are_split_by_message_size_and_by_count(store: SectorStore) -> None:
    one_partition = len(encode_params(prove(store, tasks=TASKS[:1]).posts[0].params(56, bytes(32))))
    by_size = prove(store, max_message_size=one_partition + wdpost_proofs.MESSAGE_OVERHEAD + 100)
    by_count = prove(store, per_message=1)
    for proofs in (by_size, by_count):
        assert [p.indices for p in proofs.posts] == [(0,), (3,)]
        for prepared in proofs.posts:
            check(store, prepared, prepared.proven)
            assert len(encode_params(prepared.params(56, bytes(32)))) <= one_partition


def test_faulty_sectors_are_skipped_with_their_reason(store: SectorStore) -> None:
    store.sealed_path(MINER, 1).unlink()
    damaged = bytearray(store.sealed_path(MINER, 2).read_bytes())
    damaged[0] ^= 1
    store.sealed_path(MINER, 2).write_bytes(bytes(damaged))
    infos = chain_infos(store)
    infos[3] = infos[0]  # the chain says sector 3 has sector 0's CommR
    proofs = prove(store, infos=infos)
    (only,) = proofs.posts
    assert only.proven == (0,)
    assert only.indices == (0,)  # partition 3 has nothing left to prove
    assert list(only.partitions[0].skipped) == [1]
    assert sorted(proofs.skipped) == [1, 2, 3]
    assert "missing" in proofs.skipped[1]
    assert "found while proving" in proofs.skipped[2]
    assert "differs from the one on chain" in proofs.skipped[3]
    check(store, only, (0,))


def test_nothing_to_prove_when_every_sector_is_faulty(store: SectorStore) -> None:
    for n in range(4):
        store.sealed_path(MINER, n).unlink()
    proofs = prove(store)
    assert proofs.posts == () and sorted(proofs.skipped) == [0, 1, 2, 3]


@pytest.mark.parametrize(("limit", "batches"), [(64 << 10, [14, 1]), (DEVNET.max_message_size, [15])])
def test_a_full_message_stays_under_the_message_size_limit(
    tmp_path: Path, limit: int, batches: list[int]
) -> None:
    # 15 partitions of two 2 KiB sectors: under Lotus's 64 KiB limit 14 fit in one message and the last
    # goes in a second one; the devnet pool's limit (1 MiB less 4 KiB) takes them all.
    store = SectorStore.open(tmp_path)
    for number in range(30):
        sealed = seal.seal(5, bytes(2048), make_prover_id(1000), number, bytes(32))
        store.add_sealed(sealed, MINER)
    tasks = [wdpost_proofs.PartitionTask(i, BitField.from_bits([2 * i, 2 * i + 1])) for i in range(15)]
    proofs = prove(store, tasks=tasks, deadline=0, per_message=3000, max_message_size=limit)
    assert [len(p.partitions) for p in proofs.posts] == batches
    worker = PrivateKey.derive(KeyType.BLS, b"worker")
    for prepared in proofs.posts:
        check(store, prepared, prepared.proven)
        message = Message(
            to=MINER,
            from_=Address.of_key(worker),
            nonce=(1 << 63) - 1,
            value=0,
            gas_limit=(1 << 63) - 1,
            gas_fee_cap=10**30,
            gas_premium=10**30,
            method=MinerMethod.SubmitWindowedPoSt,
            params=encode_params(prepared.params((1 << 62), bytes(32))),
        )
        size = len(sign_message(message, worker).to_bytes())
        assert size <= limit
        if len(proofs.posts) > 1 and prepared is proofs.posts[0]:
            assert size > limit - 5000  # as full as the limit allows: one more partition would not fit
