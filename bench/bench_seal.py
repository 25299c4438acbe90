"""Sealing (SDR) and PoSt with vanilla proofs: times and proof sizes for 2 KiB and 8 MiB sectors."""

import hashlib
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from bench.common import report, seconds, section
from proofs.drg import stacked_graph
from proofs.post import (
    PublicSector,
    generate_window_post,
    generate_winning_post,
    verify_window_post,
    verify_winning_post,
)
from proofs.registered import RegisteredSealProof, make_prover_id, seal_params
from proofs.seal import SealedSector, prove_commit, seal, unseal, verify_seal

PROVER = make_prover_id(1000)
TICKET = hashlib.sha256(b"ticket").digest()
SEED = hashlib.sha256(b"seed").digest()
RANDOMNESS = hashlib.sha256(b"randomness").digest()
T = TypeVar("T")


def _sector_data(size: int, label: bytes) -> bytes:
    """fr32-shaped bytes: a sha256 stream with the top two bits of every 32-byte node cleared."""
    out = bytearray(size)
    block = hashlib.sha256(label).digest() * 1024
    for offset in range(0, size, len(block)):
        out[offset : offset + len(block)] = block[: size - offset]
    for last in range(31, size, 32):
        out[last] &= 0x3F
    return bytes(out)


def _once(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


class _Proof(Protocol):
    def to_bytes(self) -> bytes: ...


def _report_post(
    what: str, shape: str, generate: Callable[[], _Proof], verify: Callable[[bytes], bool]
) -> None:
    """A PoSt's generation time (once), verification time and proof size; the proof must verify."""
    took, proof = _once(generate)
    data = proof.to_bytes()
    assert verify(data)
    report(f"{what} generate ({shape})", took * 1000, "ms")
    report(f"{what} verify", seconds(lambda: verify(data), 3) * 1000, "ms")
    report(f"{what} proof size", len(data), "bytes")


def _bench_size(proof: RegisteredSealProof, repeat: int) -> None:
    params = seal_params(proof)
    label = (
        f"{params.sector_size // 1024} KiB"
        if params.sector_size < 1 << 20
        else f"{params.sector_size >> 20} MiB"
    )
    section(f"SDR sealing, {label} sector ({params.nodes:,} nodes, {params.layers} layers, vanilla proofs)")
    graph_time, _ = _once(lambda: stacked_graph(params.nodes, params.porep_id).parent_table())
    report("parent table (once per process and size)", graph_time, "s")
    data = _sector_data(params.sector_size, b"bench")
    numbers = iter(range(1, 1 << 20))
    sealed: list[SealedSector] = []

    def do_seal() -> None:
        sealed.append(seal(proof, data, PROVER, next(numbers), TICKET))

    report("seal (labels, encoding, trees C/R/D)", seconds(do_seal, repeat), "s")
    first = sealed[0]
    commit_time = seconds(lambda: prove_commit(first, SEED), repeat)
    proof_bytes = prove_commit(first, SEED).to_bytes()
    report("prove_commit", commit_time, "s", f"{params.challenges} challenges")
    verify_args = (proof, PROVER, first.sector_number, TICKET, SEED, first.comm_d, first.comm_r, proof_bytes)
    assert verify_seal(*verify_args)
    report("verify_seal", seconds(lambda: verify_seal(*verify_args), max(repeat, 3)) * 1000, "ms")
    report("seal proof size", len(proof_bytes), "bytes")
    unseal_time = seconds(
        lambda: unseal(proof, first.replica, PROVER, first.sector_number, TICKET, first.comm_d), repeat
    )
    report("unseal", unseal_time, "s")

    winning = params.winning_post
    public = [PublicSector(first.sector_number, first.comm_r)]
    _report_post(
        "Winning PoSt",
        "1 sector",
        lambda: generate_winning_post(winning, RANDOMNESS, [first.proving_sector()]),
        lambda data: verify_winning_post(winning, RANDOMNESS, public, data),
    )

    while len(sealed) < 2:
        do_seal()
    window = params.window_post
    proving = [s.proving_sector() for s in sealed[:2]]
    publics = [PublicSector(s.sector_number, s.comm_r) for s in sealed[:2]]
    _report_post(
        "Window PoSt",
        "1 partition, 2 sectors",
        lambda: generate_window_post(window, RANDOMNESS, proving),
        lambda data: verify_window_post(window, RANDOMNESS, publics, data),
    )


def run() -> None:
    _bench_size(RegisteredSealProof.STACKED_DRG_2KIB_V1_1, repeat=5)
    _bench_size(RegisteredSealProof.STACKED_DRG_8MIB_V1_1, repeat=1)
