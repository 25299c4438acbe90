"""Winning and Window PoSt: honest proofs verify, tampered ones fail, lost sectors are named."""

import hashlib
from dataclasses import replace
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.post import (
    FaultySectors,
    ProvingSector,
    PublicSector,
    WindowPoStProof,
    WinningPoStProof,
    generate_window_post,
    generate_winning_post,
    leaf_challenges,
    partition_count,
    verify_window_post,
    verify_winning_post,
    winning_post_sector_challenge,
)
from proofs.registered import RegisteredPoStProof, UnsupportedProof, make_prover_id, post_params
from proofs.seal import seal
from proofs.vanilla import ProofDecodeError
from tests.proofs.sectors import fr32_sector
from tests.proofs.tamper import assert_flip_refused

SEAL_2KIB = 5
WINNING = RegisteredPoStProof.STACKED_DRG_WINNING_2KIB_V1
WINDOW = RegisteredPoStProof.STACKED_DRG_WINDOW_2KIB_V1_1
PROVER = make_prover_id(1000)
RANDOMNESS = hashlib.sha256(b"post randomness").digest()
NUMBERS = (3, 5, 8, 13, 21)


@cache
def proving() -> tuple[ProvingSector, ...]:
    out = []
    for number in NUMBERS:
        sealed = seal(SEAL_2KIB, fr32_sector(bytes([number])), PROVER, number, bytes([number]) * 32)
        out.append(sealed.proving_sector())
    return tuple(out)


def public(sectors: tuple[ProvingSector, ...] | list[ProvingSector]) -> list[PublicSector]:
    return [PublicSector(s.sector_number, s.comm_r) for s in sectors]


@cache
def window_proof() -> bytes:
    return generate_window_post(WINDOW, RANDOMNESS, proving()).to_bytes()


def winning_sector() -> ProvingSector:
    (index,) = winning_post_sector_challenge(WINNING, RANDOMNESS, PROVER, len(NUMBERS))
    return proving()[index]


@cache
def winning_proof() -> bytes:
    return generate_winning_post(WINNING, RANDOMNESS, [winning_sector()]).to_bytes()


# -- challenges ----------------------------------------------------------------------------------------


def test_winning_sector_challenge() -> None:
    picks = {winning_post_sector_challenge(WINNING, bytes([i]) * 32, PROVER, 5)[0] for i in range(40)}
    assert picks <= set(range(5))
    assert len(picks) > 1  # the randomness moves the pick
    by_prover = {
        winning_post_sector_challenge(WINNING, RANDOMNESS, make_prover_id(i), 1000)[0] for i in range(10)
    }
    assert len(by_prover) > 1  # and so does the prover
    assert winning_post_sector_challenge(WINNING, RANDOMNESS, PROVER, 1) == [0]
    with pytest.raises(ValueError):
        winning_post_sector_challenge(WINNING, RANDOMNESS, PROVER, 0)


def test_leaf_challenges() -> None:
    params = post_params(WINDOW)
    leaves = leaf_challenges(params, RANDOMNESS, 3)
    assert len(leaves) == 10
    assert all(0 <= leaf < 64 for leaf in leaves)
    assert leaves != leaf_challenges(params, RANDOMNESS, 5)
    # the two top bits of the randomness do not enter (Lotus clears them)
    flipped = RANDOMNESS[:31] + bytes((RANDOMNESS[31] ^ 0xC0,))
    assert leaves == leaf_challenges(params, flipped, 3)
    assert len(leaf_challenges(post_params(WINNING), RANDOMNESS, 3)) == 66


# -- Winning PoSt --------------------------------------------------------------------------------------


def test_winning_post_verifies() -> None:
    proof_bytes = winning_proof()
    assert WinningPoStProof.from_bytes(proof_bytes).to_bytes() == proof_bytes
    assert verify_winning_post(WINNING, RANDOMNESS, public([winning_sector()]), proof_bytes)


def test_winning_post_is_bound_to_randomness_and_sector() -> None:
    proof_bytes = winning_proof()
    sector = winning_sector()
    other = next(s for s in proving() if s is not sector)
    assert not verify_winning_post(WINNING, bytes(32), public([sector]), proof_bytes)
    assert not verify_winning_post(WINNING, RANDOMNESS, public([other]), proof_bytes)
    assert not verify_winning_post(
        WINNING, RANDOMNESS, [PublicSector(other.sector_number, sector.comm_r)], proof_bytes
    )


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_flipped_winning_byte_fails(data: st.DataObject) -> None:
    sectors = public([winning_sector()])
    assert_flip_refused(
        data,
        winning_proof(),
        lambda tampered: verify_winning_post(WINNING, RANDOMNESS, sectors, tampered),
        unreadable_below=3,
    )


def test_a_leaf_challenged_twice_is_checked_in_each_of_its_openings() -> None:
    """Verification skips an opening equal to one of the same leaf checked before; a changed copy, first
    or later, is still refused."""
    sector = winning_sector()
    leaves = leaf_challenges(post_params(WINNING), RANDOMNESS, sector.sector_number)
    repeats = [j for j, leaf in enumerate(leaves) if leaf in leaves[:j]]
    assert len(repeats) > 5
    proof = WinningPoStProof.from_bytes(winning_proof())
    (sector_proof,) = proof.sectors
    for j in repeats[:6]:
        for which in (leaves.index(leaves[j]), j):
            opening = sector_proof.openings[which]
            for changed in (
                replace(opening, leaf=bytes([opening.leaf[0] ^ 1]) + opening.leaf[1:]),
                replace(opening, path=(bytes(32), *opening.path[1:])),
            ):
                openings = list(sector_proof.openings)
                openings[which] = changed
                tampered = replace(proof, sectors=(replace(sector_proof, openings=tuple(openings)),))
                assert not verify_winning_post(WINNING, RANDOMNESS, public([sector]), tampered.to_bytes())


def test_winning_post_reports_a_lost_sector() -> None:
    sector = winning_sector()
    with pytest.raises(FaultySectors) as missing:
        generate_winning_post(WINNING, RANDOMNESS, [replace(sector, replica=None)])
    assert missing.value.sector_numbers == (sector.sector_number,)
    assert str(sector.sector_number) in str(missing.value)


def test_winning_post_argument_errors() -> None:
    with pytest.raises(ValueError, match="covers 1 sectors"):
        generate_winning_post(WINNING, RANDOMNESS, list(proving()[:2]))
    with pytest.raises(UnsupportedProof, match="window"):
        generate_winning_post(WINDOW, RANDOMNESS, [winning_sector()])
    with pytest.raises(ValueError, match="randomness"):
        generate_winning_post(WINNING, b"short", [winning_sector()])
    with pytest.raises(ValueError, match="covers 1 sectors"):
        verify_winning_post(WINNING, RANDOMNESS, [], winning_proof())


# -- Window PoSt ---------------------------------------------------------------------------------------


def test_window_post_verifies_in_partitions() -> None:
    proof_bytes = window_proof()
    decoded = WindowPoStProof.from_bytes(proof_bytes)
    assert decoded.to_bytes() == proof_bytes
    assert [len(p) for p in decoded.partitions] == [2, 2, 1]
    assert partition_count(WINDOW, len(NUMBERS)) == 3
    assert verify_window_post(WINDOW, RANDOMNESS, public(proving()), proof_bytes)


def test_window_post_is_bound_to_its_sectors() -> None:
    proof_bytes = window_proof()
    sectors = public(proving())
    assert not verify_window_post(WINDOW, bytes(32), sectors, proof_bytes)
    assert not verify_window_post(WINDOW, RANDOMNESS, sectors[::-1], proof_bytes)
    assert not verify_window_post(WINDOW, RANDOMNESS, sectors[:-1], proof_bytes)
    assert not verify_window_post(WINDOW, RANDOMNESS, sectors[:4], proof_bytes)
    assert not verify_window_post(WINDOW, RANDOMNESS, [*sectors, sectors[0]], proof_bytes)
    swapped = [sectors[0], replace(sectors[1], comm_r=sectors[2].comm_r), *sectors[2:]]
    assert not verify_window_post(WINDOW, RANDOMNESS, swapped, proof_bytes)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_flipped_window_byte_fails(data: st.DataObject) -> None:
    proof_bytes = window_proof()
    sectors = public(proving())
    assert_flip_refused(
        data,
        proof_bytes,
        lambda tampered: verify_window_post(WINDOW, RANDOMNESS, sectors, tampered),
        unreadable_below=len(proof_bytes),  # a header, count or length anywhere the layout cannot read
    )


def test_window_post_names_every_faulty_sector_then_proves_the_rest() -> None:
    sectors = list(proving())
    corrupt = bytearray(sectors[3].replica or b"")
    corrupt[1000] ^= 0x01
    sectors[1] = replace(sectors[1], replica=None)
    sectors[3] = replace(sectors[3], replica=bytes(corrupt))
    sectors[4] = replace(sectors[4], comm_c=bytes(32))  # commitments that no longer give its CommR
    with pytest.raises(FaultySectors) as faults:
        generate_window_post(WINDOW, RANDOMNESS, sectors)
    assert faults.value.sector_numbers == (NUMBERS[1], NUMBERS[3], NUMBERS[4])

    healthy = [s for s in sectors if s.sector_number not in faults.value.sector_numbers]
    proof_bytes = generate_window_post(WINDOW, RANDOMNESS, healthy).to_bytes()
    assert verify_window_post(WINDOW, RANDOMNESS, public(healthy), proof_bytes)


def test_window_post_decode_errors() -> None:
    proof_bytes = window_proof()
    for bad, reason in [
        (b"", "ends at byte 0"),
        (b"\x01\x0a\x00\x00\x00\x00", "no partition"),
        (b"\x01\x00" + proof_bytes[2:], "winning"),
        (b"\x01\x05" + proof_bytes[2:], "not supported"),
        (proof_bytes[:6] + b"\x00" + proof_bytes[7:], "covers 0 sectors"),
        (proof_bytes[:6] + b"\x03" + proof_bytes[7:], "covers 3 sectors"),
        (proof_bytes[:2] + b"\xff\xff\xff\xff" + proof_bytes[6:], "ends at byte"),
        (proof_bytes[:-1], "ends at byte"),
        (proof_bytes + b"\x00", "trailing"),
    ]:
        with pytest.raises(ProofDecodeError, match=reason):
            WindowPoStProof.from_bytes(bad)
    with pytest.raises(ProofDecodeError, match="window"):
        WinningPoStProof.from_bytes(proof_bytes)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_decodes_to_anything_but_an_error(garbage: bytes) -> None:
    for candidate in (garbage, b"\x01\x0a" + garbage, b"\x01\x00" + garbage):
        with pytest.raises(ProofDecodeError):
            WindowPoStProof.from_bytes(candidate)
        with pytest.raises(ProofDecodeError):
            WinningPoStProof.from_bytes(candidate)


def test_window_post_argument_errors() -> None:
    with pytest.raises(ValueError, match="at least one sector"):
        generate_window_post(WINDOW, RANDOMNESS, [])
    with pytest.raises(ValueError, match="at least one sector"):
        verify_window_post(WINDOW, RANDOMNESS, [], window_proof())
    with pytest.raises(UnsupportedProof):
        generate_window_post(RegisteredPoStProof.STACKED_DRG_WINDOW_2KIB_V1, RANDOMNESS, list(proving()))
    with pytest.raises(ValueError, match="sector number"):
        generate_window_post(WINDOW, RANDOMNESS, [replace(proving()[0], sector_number=-1)])


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**63 - 1))
def test_leaf_challenges_follow_the_rule(randomness: bytes, sector: int) -> None:
    """sha256(randomness with its two top bits cleared || u64-LE sector || u64-LE n)[:8] as u64-LE, mod
    the leaf count, for n below the challenge count: the module doc's rule, written out plainly."""
    safe = randomness[:31] + bytes((randomness[31] & 0x3F,))
    for proof in (WINNING, WINDOW):
        params = post_params(proof)
        expected = []
        for n in range(params.challenges):
            digest = hashlib.sha256(safe + sector.to_bytes(8, "little") + n.to_bytes(8, "little")).digest()
            expected.append(int.from_bytes(digest[:8], "little") % params.nodes)
        assert leaf_challenges(params, randomness, sector) == expected
