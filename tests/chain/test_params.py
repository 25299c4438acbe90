"""Network parameter profiles: a profile allows only the seal proofs proofs/ can seal and verify."""

from dataclasses import replace

import pytest

from chain.params import DEVNET, MAINNET, PROFILES, Policy
from proofs.registered import SEAL_PARAMS, RegisteredSealProof


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_allow_only_implemented_seal_proofs(name: str) -> None:
    allowed = PROFILES[name].allowed_seal_proofs
    assert allowed
    assert set(allowed) <= set(SEAL_PARAMS)


def test_mainnet_takes_the_largest_sector_proofs_can_seal() -> None:
    largest = max(SEAL_PARAMS.values(), key=lambda p: p.sector_size)
    assert MAINNET.allowed_seal_proofs == (largest.proof,)
    assert MAINNET.block_delay_secs == 30 and MAINNET.address_network == "f"


@pytest.mark.parametrize(
    "proof", [RegisteredSealProof.STACKED_DRG_32GIB_V1_1, RegisteredSealProof.STACKED_DRG_64GIB_V1_1, 0, 99]
)
def test_a_profile_allowing_an_unimplemented_proof_is_refused(proof: int) -> None:
    with pytest.raises(ValueError, match=rf"seal proofs \[{int(proof)}\] that proofs/ cannot seal"):
        replace(DEVNET, allowed_seal_proofs=(5, int(proof)))
    with pytest.raises(ValueError, match="cannot seal or verify"):
        Policy(network_name="x", address_network="t", block_delay_secs=1, allowed_seal_proofs=(int(proof),))
