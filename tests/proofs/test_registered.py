"""The registered proof table: Filecoin's numbers, our parameters, and clear refusals."""

import pytest

from chain import params as params_module
from proofs.registered import (
    SEAL_PARAMS,
    PoStKind,
    RegisteredPoStProof,
    RegisteredSealProof,
    UnsupportedProof,
    make_prover_id,
    porep_id,
    post_params,
    seal_params,
)
from proofs.seal import SealProof


def test_numbers_are_filecoins() -> None:
    # go-state-types abi/sector.go
    assert RegisteredSealProof.STACKED_DRG_2KIB_V1 == 0
    assert RegisteredSealProof.STACKED_DRG_2KIB_V1_1 == 5
    assert RegisteredSealProof.STACKED_DRG_8MIB_V1_1 == 6
    assert RegisteredSealProof.STACKED_DRG_512MIB_V1_1 == 7
    assert RegisteredSealProof.STACKED_DRG_64GIB_V1_1 == 9
    assert RegisteredSealProof.STACKED_DRG_2KIB_V1_1_FEAT_SYNTHETIC_POREP == 10
    assert RegisteredSealProof.STACKED_DRG_64GIB_V1_2_FEAT_NI_POREP == 19
    assert RegisteredPoStProof.STACKED_DRG_WINNING_2KIB_V1 == 0
    assert RegisteredPoStProof.STACKED_DRG_WINDOW_2KIB_V1 == 5
    assert RegisteredPoStProof.STACKED_DRG_WINDOW_2KIB_V1_1 == 10
    assert RegisteredPoStProof.STACKED_DRG_WINDOW_64GIB_V1_1 == 14


@pytest.mark.parametrize(
    ("proof", "size", "winning", "window"),
    [(5, 2048, 0, 10), (6, 8 << 20, 1, 11), (7, 512 << 20, 2, 12)],
)
def test_supported_sizes(proof: int, size: int, winning: int, window: int) -> None:
    params = seal_params(proof)
    assert params.sector_size == size
    assert params.nodes == size // 32
    assert 1 << params.tree_depth == params.nodes
    assert params.layers == 2
    assert params.challenges >= 2
    assert params.winning_post == winning
    assert params.window_post == window
    assert params.porep_id == porep_id(proof)

    win = post_params(winning)
    assert (win.kind, win.sector_size, win.challenges, win.sectors) == (PoStKind.WINNING, size, 66, 1)
    wdp = post_params(window)
    assert (wdp.kind, wdp.sector_size, wdp.challenges, wdp.sectors) == (PoStKind.WINDOW, size, 10, 2)


def test_every_seal_proof_fits_the_message_pool_limit() -> None:
    # 66 challenges (docs/proofs.md "Soundness") make proofs far larger than Lotus's 64 KiB messages;
    # each still fits a ProveCommitSector within filpy's pool limit (tests/chain/test_message_limits.py
    # builds the messages).
    sizes = {p: SealProof.encoded_size(params) for p, params in SEAL_PARAMS.items()}
    assert sizes == {5: 283_074, 6: 713_922, 7: 929_346}
    assert max(sizes.values()) < params_module.POOL_MAX_MESSAGE_SIZE - 1024


@pytest.mark.parametrize("proof", [0, 1, 4, 8, 9, 10, 15, 19, 20, -1, 1 << 70])
def test_unsupported_seal_proofs(proof: int) -> None:
    with pytest.raises(UnsupportedProof, match=str(proof)):
        seal_params(proof)


@pytest.mark.parametrize("proof", ["5", 5.0, True, None])
def test_seal_proof_must_be_an_integer(proof: object) -> None:
    with pytest.raises(UnsupportedProof):
        seal_params(proof)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedProof):
        post_params(proof)  # type: ignore[arg-type]


@pytest.mark.parametrize("proof", [3, 5, 7, 13, 15, -1])
def test_unsupported_post_proofs(proof: int) -> None:
    # Window V1 (5-7) predates the V1_1 challenge rule; 32/64 GiB are not sealed here.
    with pytest.raises(UnsupportedProof):
        post_params(proof)


def test_unsupported_names_the_proof() -> None:
    with pytest.raises(UnsupportedProof, match="STACKED_DRG_32GIB_V1_1"):
        seal_params(8)


def test_porep_id() -> None:
    assert porep_id(5) == b"\x05" + bytes(31)
    assert porep_id(0) == bytes(32)
    assert porep_id(14) == b"\x0e" + bytes(31)
    for bad in (15, 20, -1):
        with pytest.raises(UnsupportedProof):
            porep_id(bad)


def test_prover_id_is_the_id_address_payload() -> None:
    assert make_prover_id(0) == bytes(32)
    assert make_prover_id(123) == b"\x7b" + bytes(31)
    assert make_prover_id(1000) == b"\xe8\x07" + bytes(30)
    assert make_prover_id((1 << 63) - 1) == b"\xff" * 8 + b"\x7f" + bytes(23)
    for bad in (-1, 1 << 63, True, "1"):
        with pytest.raises(ValueError):
            make_prover_id(bad)  # type: ignore[arg-type]
