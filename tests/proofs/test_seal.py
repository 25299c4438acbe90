"""Stacked-DRG sealing: Filecoin's graph, labels and replica ID; seal/unseal; vanilla PoRep soundness."""

import hashlib
from dataclasses import replace
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import merkle
from proofs.drg import DEGREE, chacha8_lanes, stacked_graph
from proofs.labels import label_layers
from proofs.registered import RegisteredSealProof, make_prover_id, porep_id, seal_params
from proofs.seal import (
    SealedSector,
    SealError,
    SealProof,
    prove_commit,
    replica_id,
    restore_sealed,
    seal,
    seal_challenges,
    unseal,
    verify_seal,
)
from proofs.vanilla import FIELD_MODULUS, ProofDecodeError
from tests.proofs.tamper import assert_flip_refused, flipped

KIB2 = RegisteredSealProof.STACKED_DRG_2KIB_V1_1
PROVER = make_prover_id(1000)
TICKET = bytes(range(32))
SEED = hashlib.sha256(b"interactive seed").digest()


def fr32_sector(label: bytes, size: int = 2048) -> bytes:
    """Deterministic sector-shaped bytes whose 32-byte nodes all have their top two bits clear."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(label + counter.to_bytes(4, "big")).digest()
        counter += 1
    for last in range(31, size, 32):
        out[last] &= 0x3F
    return bytes(out[:size])


@cache
def sealed_sector() -> SealedSector:
    return seal(KIB2, fr32_sector(b"sector 7"), PROVER, 7, TICKET)


@cache
def honest_proof() -> bytes:
    return prove_commit(sealed_sector(), SEED).to_bytes()


def verify(proof_bytes: bytes, **changes: object) -> bool:
    sealed = sealed_sector()
    args: dict[str, object] = {
        "proof": KIB2,
        "prover_id": PROVER,
        "sector_number": 7,
        "ticket": TICKET,
        "seed": SEED,
        "comm_d": sealed.comm_d,
        "comm_r": sealed.comm_r,
        "proof_bytes": proof_bytes,
    }
    args.update(changes)
    return verify_seal(**args)  # type: ignore[arg-type]


# -- Filecoin compatibility of the graph, the labels and the replica ID --------------------------------


def test_parent_table_matches_filecoins_2kib_parent_cache() -> None:
    # rust-fil-proofs storage-proofs-porep/parent_cache.json: sha256 of the 2 KiB V1_1 parent cache
    # (14 u32-LE parents per node), which is what Filecoin checks its own cache files against.
    graph = stacked_graph(64, porep_id(KIB2))
    table = graph.parent_table()
    digest = hashlib.sha256(table.tobytes()).hexdigest()
    assert digest == "840057702eea7652cf97e04306c30fe57174714d90de156a25eddd6075c25b97"
    for node in range(64):
        assert list(table[node * DEGREE : (node + 1) * DEGREE]) == graph.parents(node)


@pytest.mark.slow
def test_parent_table_matches_filecoins_8mib_parent_cache() -> None:
    graph = stacked_graph(1 << 18, porep_id(RegisteredSealProof.STACKED_DRG_8MIB_V1_1))
    digest = hashlib.sha256(graph.parent_table().tobytes()).hexdigest()
    assert digest == "03cd13565ded97c240a5f52e54295ad127bd0461b57904cb3a4d79b097bbecab"
    for node in (2, 77_777, (1 << 18) - 1):
        assert list(graph.parent_table()[node * DEGREE : (node + 1) * DEGREE]) == graph.parents(node)


@pytest.mark.parametrize(
    ("nodes", "last_label"),
    [
        (64, (0xABB3F38BB70DEFCF, 0x777A2E4D7769119F, 0x3448959D495490BC, 0x06021188C7A71CB5)),
        (128, (0x22AB81CF68C4676D, 0x7A77A82FC7C9C189, 0xC6C03D32C1E42D23, 0x0F777C18CC2C55BD)),
    ],
)
def test_labels_match_rust_fil_proofs(nodes: int, last_label: tuple[int, ...]) -> None:
    # storage-proofs-porep tests/stacked_vanilla.rs test_stacked_porep_generate_labels (ApiVersion 1.1):
    # 11 layers, replica ID [9; 32], PoRep ID [123; 32]; the last label of the last layer, as Fr limbs.
    layers = label_layers(stacked_graph(nodes, bytes([123]) * 32), bytes([9]) * 32, 11)
    assert layers[-1][-32:] == b"".join(limb.to_bytes(8, "little") for limb in last_label)


def test_replica_id_matches_go_state_types() -> None:
    # go-state-types abi/sector_test.go TestReplicaID (extracted there from rust-fil-proofs PreCommit1).
    ticket = bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10] * 3 + [1, 2])
    comm_d = bytes.fromhex("fc7e928296e516faade986b28f92d44a4f24b935485223376a799027bc18f833")
    expected = bytes.fromhex("1e2e06391a0d1b99dc896aa6f7fa113ff8e993cbdcbfb503e99571603b61a016")
    assert (
        replica_id(RegisteredSealProof.STACKED_DRG_2KIB_V1, make_prover_id(123), 1, ticket, comm_d)
        == expected
    )


def test_chacha8_lanes_are_independent_streams() -> None:
    # A batch of lanes gives each node the stream it gets alone (no carry or rotation leaks between
    # lanes); the parent-cache digests above pin the cipher itself to Filecoin's ChaCha8.
    key = tuple(range(100, 107))
    lanes = chacha8_lanes(key, 1000, 5, 1)
    for i in range(5):
        assert [word[i] for word in lanes] == [word[0] for word in chacha8_lanes(key, 1000 + i, 1, 1)]
    saturated = chacha8_lanes((0xFFFFFFFF,) * 7, 0xFFFFFFFF - 3, 4, 0)
    for i in range(4):
        assert [word[i] for word in saturated] == [
            word[0] for word in chacha8_lanes((0xFFFFFFFF,) * 7, 0xFFFFFFFF - 3 + i, 1, 0)
        ]


def test_graph_shape() -> None:
    graph = stacked_graph(64, porep_id(KIB2))
    assert graph.parents(0) == [0] * 6 + graph.expander_parents(0)
    assert graph.base_parents(1) == [0] * 6
    for node in range(2, 64):
        base = graph.base_parents(node)
        assert base[0] == node - 1
        assert all(0 <= p < node for p in base)
        assert all(0 <= p < 64 for p in graph.expander_parents(node))
    with pytest.raises(ValueError):
        graph.parents(64)


# -- sealing and unsealing -----------------------------------------------------------------------------


def test_seal_commitments() -> None:
    sealed = sealed_sector()
    assert sealed.comm_d == merkle.root_of(fr32_sector(b"sector 7"))
    assert sealed.comm_r == merkle.hash_node(sealed.comm_c, sealed.comm_r_last)
    assert sealed.comm_r_last == merkle.root_of(sealed.replica)
    assert len(sealed.labels) == 2
    # replica = data + key (the last layer) in the scalar field
    data, key = fr32_sector(b"sector 7"), sealed.labels[-1]
    for node in (0, 31, 63):
        o = node * 32
        value = (int.from_bytes(data[o : o + 32], "little") + int.from_bytes(key[o : o + 32], "little")) % (
            FIELD_MODULUS
        )
        assert sealed.replica[o : o + 32] == value.to_bytes(32, "little")


@settings(max_examples=10, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, (1 << 63) - 1))
def test_seal_unseal_round_trip(label: bytes, number: int) -> None:
    data = fr32_sector(label)
    sealed = seal(KIB2, data, PROVER, number, TICKET)
    assert unseal(KIB2, sealed.replica, PROVER, number, TICKET, sealed.comm_d) == data
    assert sealed.replica != data


def test_unseal_accepts_data_with_every_node_just_below_the_modulus() -> None:
    top = (FIELD_MODULUS - 1).to_bytes(32, "little")
    sealed = seal(KIB2, top * 64, PROVER, 1, TICKET)
    assert unseal(KIB2, sealed.replica, PROVER, 1, TICKET, sealed.comm_d) == top * 64


def test_restore_sealed_rebuilds_what_seal_made() -> None:
    sealed = sealed_sector()
    assert restore_sealed(KIB2, sealed.replica, PROVER, 7, TICKET, sealed.comm_d) == sealed


def test_sealing_depends_on_every_input() -> None:
    base = sealed_sector()
    data = fr32_sector(b"sector 7")
    others = [
        seal(KIB2, data, PROVER, 8, TICKET),
        seal(KIB2, data, make_prover_id(1001), 7, TICKET),
        seal(KIB2, data, PROVER, 7, bytes(32)),
        seal(KIB2, fr32_sector(b"other"), PROVER, 7, TICKET),
    ]
    assert len({base.comm_r, *(o.comm_r for o in others)}) == 5
    assert len({base.replica, *(o.replica for o in others)}) == 5


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2047), st.integers(1, 255))
def test_a_flipped_replica_byte_is_caught(position: int, flip: int) -> None:
    sealed = sealed_sector()
    tampered = flipped(sealed.replica, position, flip)
    with pytest.raises(SealError):
        unseal(KIB2, tampered, PROVER, 7, TICKET, sealed.comm_d)
    with pytest.raises(SealError):
        restore_sealed(KIB2, tampered, PROVER, 7, TICKET, sealed.comm_d)
    with pytest.raises(SealError):
        prove_commit(replace(sealed, replica=tampered), SEED)


def test_seal_rejects_bad_input() -> None:
    data = fr32_sector(b"x")
    with pytest.raises(SealError, match="2048 bytes"):
        seal(KIB2, data[:-32], PROVER, 1, TICKET)
    not_a_scalar = data[:64] + FIELD_MODULUS.to_bytes(32, "little") + data[96:]
    with pytest.raises(SealError, match="node 2"):
        seal(KIB2, not_a_scalar, PROVER, 1, TICKET)
    with pytest.raises(ValueError, match="ticket"):
        seal(KIB2, data, PROVER, 1, TICKET[:31])
    with pytest.raises(ValueError, match="prover ID"):
        seal(KIB2, data, b"\x01", 1, TICKET)
    for number in (-1, 1 << 63, True):
        with pytest.raises(ValueError, match="sector number"):
            seal(KIB2, data, PROVER, number, TICKET)
    with pytest.raises(ValueError, match="not supported"):
        seal(RegisteredSealProof.STACKED_DRG_2KIB_V1, data, PROVER, 1, TICKET)


# -- the vanilla PoRep ---------------------------------------------------------------------------------


def test_challenges_are_in_range_and_skip_node_zero() -> None:
    params = seal_params(KIB2)
    for seed_byte in range(20):
        nodes = seal_challenges(params, sealed_sector().replica_id, bytes([seed_byte]) * 32)
        assert len(nodes) == params.challenges
        assert all(1 <= node < params.nodes for node in nodes)


def test_honest_proof_verifies_and_round_trips() -> None:
    proof_bytes = honest_proof()
    assert len(proof_bytes) == SealProof.encoded_size(seal_params(KIB2))
    assert SealProof.from_bytes(proof_bytes).to_bytes() == proof_bytes
    assert verify(proof_bytes)


def test_restored_sector_proves_the_same() -> None:
    sealed = sealed_sector()
    restored = restore_sealed(KIB2, sealed.replica, PROVER, 7, TICKET, sealed.comm_d)
    assert prove_commit(restored, SEED).to_bytes() == honest_proof()


@pytest.mark.parametrize(
    "changes",
    [
        {"sector_number": 8},
        {"ticket": bytes(32)},
        {"seed": bytes(32)},
        {"prover_id": make_prover_id(1001)},
        {"comm_d": merkle.root_of(fr32_sector(b"other"))},
        {"comm_r": bytes(32)},
    ],
    ids=["sector", "ticket", "seed", "prover", "comm_d", "comm_r"],
)
def test_proof_is_bound_to_its_sector_and_seed(changes: dict[str, object]) -> None:
    assert not verify(honest_proof(), **changes)


def test_proof_of_another_sector_does_not_verify() -> None:
    other = seal(KIB2, fr32_sector(b"sector 7"), PROVER, 9, TICKET)
    other_proof = prove_commit(other, SEED).to_bytes()
    assert verify(other_proof, sector_number=9, comm_r=other.comm_r)
    assert not verify(other_proof)
    assert not verify(other_proof, sector_number=9)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_flipped_proof_byte_fails(data: st.DataObject) -> None:
    # only the header can make the bytes unreadable
    assert_flip_refused(data, honest_proof(), verify, unreadable_below=2)


def test_a_forged_replica_opening_fails() -> None:
    # The prover claims a different replica node (and rebuilds its path so tree R still matches a root):
    # the encoding check (replica = data + key) or the CommR binding must catch it.
    proof = SealProof.from_bytes(honest_proof())
    first = proof.challenges[0]
    forged_leaf = (int.from_bytes(first.replica.leaf, "little") + 1) % FIELD_MODULUS
    forged = replace(first, replica=replace(first.replica, leaf=forged_leaf.to_bytes(32, "little")))
    tampered = replace(proof, challenges=(forged, *proof.challenges[1:]))
    assert not verify(tampered.to_bytes())


def test_proof_bytes_decode_errors() -> None:
    proof_bytes = honest_proof()
    for bad, reason in [
        (b"", "ends at byte 0"),
        (b"\x02" + proof_bytes[1:], "format version 2"),
        (b"\x01\x00" + proof_bytes[2:], "not supported"),
        (b"\x01\x06" + proof_bytes[2:], "must be"),
        (proof_bytes[:-1], "must be"),
        (proof_bytes + b"\x00", "must be"),
    ]:
        with pytest.raises(ProofDecodeError, match=reason):
            SealProof.from_bytes(bad)
    with pytest.raises(ProofDecodeError, match="bytes"):
        SealProof.from_bytes("not bytes")  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_decodes_to_anything_but_an_error(garbage: bytes) -> None:
    for candidate in (garbage, b"\x01\x05" + garbage):
        with pytest.raises(ProofDecodeError):
            SealProof.from_bytes(candidate)


def test_verify_rejects_malformed_public_inputs() -> None:
    with pytest.raises(ValueError, match="seed"):
        verify(honest_proof(), seed=b"short")
    with pytest.raises(ValueError, match="CommR"):
        verify(honest_proof(), comm_r=b"")
    with pytest.raises(ValueError, match="not supported"):
        verify(honest_proof(), proof=99)


def test_prove_commit_rejects_a_sector_without_its_labels() -> None:
    with pytest.raises(SealError, match="label layers"):
        prove_commit(replace(sealed_sector(), labels=()), SEED)
