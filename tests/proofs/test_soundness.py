"""Soundness as a number (proofs/soundness.py): the figures, the challenge count they choose, and the
model checked against the real verifier: a prover whose replica is wrong at some nodes, committed
before the seed is known, passes verify_seal exactly when no challenge lands on one of them."""

import hashlib
import re

import pytest

from proofs import merkle, registered, seal, soundness
from proofs.seal import ChallengeProof, ColumnOpening, SealedSector, SealProof, comm_r_of
from proofs.vanilla import FIELD_MODULUS, NodeOpening
from tests.paths import ROOT

DOCS = ROOT / "docs" / "proofs.md"
PROOF = registered.RegisteredSealProof.STACKED_DRG_2KIB_V1_1
PROVER = registered.make_prover_id(1000)
TICKET = bytes(range(32))


def test_the_figures() -> None:
    assert soundness.pass_probability(0.1, 66) == pytest.approx(9.55e-4, rel=1e-3)
    assert soundness.pass_probability(0.01, 10) == pytest.approx(0.904, abs=1e-3)
    assert soundness.pass_probability(0.5, 10) == pytest.approx(2**-10)
    assert soundness.pass_probability(0.0, 66) == 1.0 and soundness.pass_probability(1.0, 1) == 0.0
    assert soundness.challenges_needed(0.1, 1e-3) == 66
    assert soundness.challenges_needed(0.5, 0.25) == 3  # exactly 0.25 at 2 is not below it
    assert soundness.exact_seal_pass_probability(64, 1, 66) == pytest.approx((62 / 63) ** 66)
    for bad in ((1.5, 3), (0.1, -1)):
        with pytest.raises(ValueError):
            soundness.pass_probability(*bad)
    with pytest.raises(ValueError):
        soundness.challenges_needed(0.0, 1e-3)
    with pytest.raises(ValueError):
        soundness.exact_seal_pass_probability(64, 64, 1)


def test_every_seal_type_meets_the_target_and_the_count_is_the_fewest_that_does() -> None:
    assert (
        soundness.challenges_needed(registered.SEAL_TARGET_MISSING, registered.SEAL_TARGET_PASS)
        == registered.SEAL_CHALLENGES
    )
    for params in registered.SEAL_PARAMS.values():
        at_target = soundness.pass_probability(registered.SEAL_TARGET_MISSING, params.challenges)
        one_fewer = soundness.pass_probability(registered.SEAL_TARGET_MISSING, params.challenges - 1)
        assert at_target < registered.SEAL_TARGET_PASS <= one_fewer


def test_docs_print_the_table_this_module_computes() -> None:
    table = soundness.soundness_table()
    assert table in DOCS.read_text()
    rows = soundness.soundness_rows()
    assert len(rows) == 3 * len(registered.SEAL_PARAMS)
    assert re.search(r"\| seal 5 .* \| 2 KiB \| 66 \| 0\.515 \| 9\.6e-04 \| 1\.4e-20 \|", table)


# -- the model against verify_seal ----------------------------------------------------------------------


def cheating_proof(sealed: SealedSector, data: bytes, replica: bytes, seed: bytes) -> SealProof:
    """What a prover holding `replica` (wrong at some nodes, committed as such) answers: every opening
    consistent with its commitments, the labels honest."""
    params = registered.seal_params(sealed.proof)
    graph = seal._graph(params)
    tree_d, tree_r = merkle.tree_levels(data), merkle.tree_levels(replica)
    tree_c = merkle.tree_levels(seal._column_leaves(sealed.labels, params.nodes))

    def column(node: int) -> ColumnOpening:
        labels = tuple(layer[node * 32 : node * 32 + 32] for layer in sealed.labels)
        return ColumnOpening(labels, tuple(merkle.opening(tree_c, node)))

    challenges = tuple(
        ChallengeProof(
            NodeOpening.of(tree_d, node),
            NodeOpening.of(tree_r, node),
            column(node),
            tuple(column(parent) for parent in graph.parents(node)),
        )
        for node in seal.seal_challenges(params, sealed.replica_id, seed)
    )
    return SealProof(sealed.proof, tree_c[-1], tree_r[-1], challenges)


def corrupted(replica: bytes, nodes: set[int]) -> bytes:
    out = bytearray(replica)
    for node in nodes:
        value = (int.from_bytes(replica[node * 32 : node * 32 + 32], "little") + 1) % FIELD_MODULUS
        out[node * 32 : node * 32 + 32] = value.to_bytes(32, "little")
    return bytes(out)


def test_a_replica_wrong_at_some_nodes_passes_exactly_when_no_challenge_hits_them() -> None:
    params = registered.seal_params(PROOF)
    data = bytes(params.sector_size)
    sealed = seal.seal(PROOF, data, PROVER, 7, TICKET)
    wrong = {37}
    replica = corrupted(sealed.replica, wrong)
    # the prover commits (pre-commits) to the wrong replica: its CommR is what the chain holds
    comm_r = comm_r_of(sealed.comm_c, merkle.root_of(replica))
    passed = 0
    seeds = 120
    for k in range(seeds):
        seed = hashlib.sha256(b"seed %d" % k).digest()
        proof = cheating_proof(sealed, data, replica, seed).to_bytes()
        verified = seal.verify_seal(PROOF, PROVER, 7, TICKET, seed, sealed.comm_d, comm_r, proof)
        hit = bool(set(seal.seal_challenges(params, sealed.replica_id, seed)) & wrong)
        assert verified == (not hit), k
        passed += verified
    # (1 - 1/63)^66 = 0.349 of the seeds; 120 draws put 4 standard deviations at about 0.17
    expected = soundness.exact_seal_pass_probability(params.nodes, len(wrong), params.challenges)
    assert abs(passed / seeds - expected) < 0.17
    # the same prover, honest everywhere, passes every seed
    honest = cheating_proof(sealed, data, sealed.replica, hashlib.sha256(b"seed 0").digest()).to_bytes()
    seed0 = hashlib.sha256(b"seed 0").digest()
    assert seal.verify_seal(PROOF, PROVER, 7, TICKET, seed0, sealed.comm_d, sealed.comm_r, honest)
