"""The gas price of a seal verification, re-derived on this machine (chain/vm/gas.py, docs/vm.md).

Lotus prices syscalls in gas proportional to their time on its calibration machine. filpy's miner
verifies vanilla seal proofs inline, which Lotus has no price for (it batches SNARKs in cron), so the
price is derived from a syscall both run with the same library: secp256k1 signature verification
(libsecp256k1 in Lotus and, through coincurve, here), which Lotus charges 1,637,292 gas. Its time
here gives the machine's gas-per-millisecond rate; a 2 KiB seal verification (the slowest supported
size, 14 challenges) at that rate is the price. The two are timed interleaved, round by round, and
the price is taken from the median of the per-round ratios, so a neighbour's load cancels out.
BLS verification, whose Lotus price assumes blst (much faster than blspy), is shown for comparison.
"""

import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Final

from bench.common import report, section
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import verify
from chain.types.address import Address
from chain.vm.gas import PRICES
from proofs import registered, seal

ROUNDS: Final = 11
SEAL_PROOF: Final = registered.RegisteredSealProof.STACKED_DRG_2KIB_V1_1


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def _seal_verification() -> Callable[[], bool]:
    params = registered.seal_params(SEAL_PROOF)
    data = bytearray(hashlib.sha256(b"bench-gas").digest() * (params.sector_size // 32))
    for last in range(31, len(data), 32):
        data[last] &= 0x3F  # fr32: every 32-byte node below the field modulus
    prover, ticket, seed = registered.make_prover_id(1000), bytes(32), bytes(range(32))
    sealed = seal.seal(SEAL_PROOF, bytes(data), prover, 1, ticket)
    proof = seal.prove_commit(sealed, seed).to_bytes()

    def run() -> bool:
        ok = seal.verify_seal(SEAL_PROOF, prover, 1, ticket, seed, sealed.comm_d, sealed.comm_r, proof)
        assert ok
        return ok

    return run


def _signature_verification(key_type: KeyType) -> Callable[[], None]:
    key = PrivateKey.derive(key_type, b"bench-gas")
    address, message = Address.of_key(key), hashlib.sha256(b"message").digest()
    signature = key.sign(message)
    return lambda: verify(signature, address, message)


def run() -> None:
    seal_verify = _seal_verification()
    secp = _signature_verification(KeyType.SECP256K1)
    bls = _signature_verification(KeyType.BLS)
    times: dict[str, list[float]] = {"secp": [], "seal": [], "bls": []}
    for _ in range(ROUNDS):
        times["secp"].append(_per_call(secp, 400))
        times["seal"].append(_per_call(seal_verify, 20))
        times["bls"].append(_per_call(bls, 10))
    median = {name: statistics.median(values) for name, values in times.items()}
    seal_per_secp = statistics.median(s / q for s, q in zip(times["seal"], times["secp"], strict=True))
    seal_per_bls = statistics.median(s / b for s, b in zip(times["seal"], times["bls"], strict=True))
    secp_gas, bls_gas = PRICES.on_verify_signature(1), PRICES.on_verify_signature(2)

    section(f"Seal verification priced from signature verification (interleaved, median of {ROUNDS})")
    report("secp256k1 signature verification", median["secp"] * 1e3, "ms", f"Lotus: {secp_gas:,} gas")
    report("  so gas per ms on this machine", secp_gas / median["secp"] / 1e3 / 1e6, "M gas/ms")
    report("seal verification, 2 KiB sector", median["seal"] * 1e3, "ms", f"{seal_per_secp:.1f}x secp256k1")
    implied = seal_per_secp * secp_gas
    configured = PRICES.on_verify_seal()
    report(
        "  price at that rate",
        implied / 1e6,
        "M gas",
        f"pricelist {configured / 1e6:,.0f} M ({configured / implied:.2f}x)",
    )
    report(
        "BLS signature verification (for comparison)", median["bls"] * 1e3, "ms", f"Lotus: {bls_gas:,} gas"
    )
    report("  seal price at BLS's rate (blspy is slower than blst)", seal_per_bls * bls_gas / 1e6, "M gas")
