"""Gas: the price list, the per-message gas tracker, how a message's gas is paid out, and the base fee.

Prices are those of Lotus's last legacy-VM price list (lotus chain/vm/gas.go, the entry starting at
UpgradeCalicoHeight, with the per-operation rules of gas_v0.go): a charge has a compute part and a
storage part, storage bytes cost `storage_gas_multi` gas each. See docs/vm.md for the table.

Gas outputs follow lotus chain/vm/burn.go (ComputeGasOutputs): the base fee is burnt on the gas used,
the miner earns the premium on the whole gas limit, over-estimated gas is partly burnt, the rest is
refunded; when the fee cap is below the base fee the miner pays the difference as a penalty.
The next base fee follows lotus chain/store/basefee.go (ComputeNextBaseFee, after the Smoke upgrade).
"""

from dataclasses import dataclass
from typing import Final

from actors.dispatch import METHOD_SEND
from chain.crypto.signature import SigType
from chain.params import Policy
from chain.vm.exitcode import ActorError, ExitCode

# Lotus burn.go: gas above 110% of the gas used is "over-estimated".
GAS_OVERUSE_NUM: Final = 11
GAS_OVERUSE_DENOM: Final = 10

# Seal verification has no Lotus price to copy (below): it is priced from its time on this machine as a
# multiple of a secp256k1 signature verification (libsecp256k1 in Lotus and here), at Lotus's price for
# that. Measured with 66 seal challenges (proofs/registered.py): 35-39 ms per 2 KiB seal proof (the
# slowest supported size) against 0.08-0.095 ms per signature on the shared dev box, a ratio of 452-482
# over three interleaved runs; bench/bench_gas.py re-derives it (docs/vm.md).
SECP256K1_VERIFY_GAS: Final = 1_637_292
SEAL_VERIFY_IN_SECP256K1_VERIFICATIONS: Final = 470


@dataclass(frozen=True, slots=True)
class PriceList:
    """Gas prices per operation (lotus pricelistV0 fields; values of the Calico price list)."""

    storage_gas_multi: int = 1300

    on_chain_message_compute_base: int = 38863
    on_chain_message_storage_base: int = 36
    on_chain_message_storage_per_byte: int = 1
    on_chain_return_value_per_byte: int = 1

    send_base: int = 29233
    send_transfer_funds: int = 27500
    send_transfer_only_premium: int = 159672
    send_invoke_method: int = -5377

    ipld_get_base: int = 114617
    ipld_put_base: int = 353640
    ipld_put_per_byte: int = 1

    create_actor_compute: int = 1108454
    create_actor_storage: int = 36 + 40
    delete_actor: int = -(36 + 40)

    verify_signature_secp256k1: int = SECP256K1_VERIFY_GAS
    verify_signature_bls: int = 16598605

    hashing_base: int = 31355
    compute_unsealed_sector_cid_base: int = 98647
    # Lotus charges 2000 because it batch-verifies seal SNARKs in cron and pays for them there; filpy's
    # miner verifies each vanilla proof inline, priced from its measured time (above): 770 M gas.
    verify_seal_base: int = round(SEAL_VERIFY_IN_SECP256K1_VERIFICATIONS * SECP256K1_VERIFY_GAS / 1e6) * 10**6
    # Window PoSt: flat + scale per challenged sector (the same for every sector size in Calico).
    verify_post_flat: int = 117680921
    verify_post_scale: int = 43780
    verify_consensus_fault: int = 495422
    # filpy's own syscall (Lotus has none): priced like ComputeUnsealedSectorCid, a walk up a CommD tree.
    verify_piece_inclusion: int = 98647

    def on_chain_message(self, size: int) -> int:
        """Storing (and validating) a message of `size` bytes on chain; charged before execution."""
        storage = self.on_chain_message_storage_base + self.on_chain_message_storage_per_byte * size
        return self.on_chain_message_compute_base + storage * self.storage_gas_multi

    def on_chain_return_value(self, size: int) -> int:
        return size * self.on_chain_return_value_per_byte * self.storage_gas_multi

    def on_method_invocation(self, value: int, method: int) -> int:
        gas = self.send_base
        if value != 0:
            gas += self.send_transfer_funds
            if method == METHOD_SEND:
                gas += self.send_transfer_only_premium
        if method != METHOD_SEND:
            gas += self.send_invoke_method
        return gas

    def on_ipld_get(self) -> int:
        return self.ipld_get_base

    def on_ipld_put(self, size: int) -> int:
        return self.ipld_put_base + size * self.ipld_put_per_byte * self.storage_gas_multi

    def on_create_actor(self) -> int:
        return self.create_actor_compute + self.create_actor_storage * self.storage_gas_multi

    def on_delete_actor(self) -> int:
        return self.delete_actor * self.storage_gas_multi

    def on_verify_signature(self, sig_type: int) -> int:
        if sig_type == SigType.BLS:
            return self.verify_signature_bls
        # Delegated (f410) signatures are secp256k1 over keccak, priced as secp256k1 by Lotus.
        return self.verify_signature_secp256k1

    def on_hashing(self) -> int:
        return self.hashing_base

    def on_compute_unsealed_sector_cid(self) -> int:
        return self.compute_unsealed_sector_cid_base

    def on_verify_seal(self) -> int:
        return self.verify_seal_base

    def on_verify_post(self, challenged_sectors: int) -> int:
        return self.verify_post_flat + challenged_sectors * self.verify_post_scale

    def on_verify_consensus_fault(self) -> int:
        return self.verify_consensus_fault

    def on_verify_piece_inclusion(self) -> int:
        return self.verify_piece_inclusion


PRICES: Final = PriceList()


class GasTracker:
    """Gas used by one top-level message, shared by every call frame it makes.

    Charges may be negative (deleting an actor refunds storage). Going over the limit sets the gas
    used to the limit and raises ActorError(SysErrOutOfGas); once exhausted, the tracker stays so and
    every later positive charge fails too, as Lotus's runtime does.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int, used: int = 0) -> None:
        self.limit = limit
        self.used = used

    def charge(self, amount: int, name: str = "gas") -> None:
        used = self.used + amount
        if used > self.limit:
            self.used = self.limit
            raise ActorError(
                ExitCode.SysErrOutOfGas,
                f"not enough gas for {name}: used {used - amount}, limit {self.limit}, charge {amount}",
            )
        self.used = used

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    @property
    def available(self) -> int:
        return self.limit - self.used


@dataclass(frozen=True, slots=True)
class GasOutputs:
    """Where a message's gas money goes (all in attoFIL, except the two gas amounts).

    base_fee_burn + over_estimation_burn go to the burnt-funds actor, miner_tip to the block's miner
    (through the reward actor), refund back to the sender; together they are GasLimit * GasFeeCap,
    what the sender paid up front. miner_penalty is charged to the miner separately.
    """

    base_fee_burn: int = 0
    over_estimation_burn: int = 0
    miner_penalty: int = 0
    miner_tip: int = 0
    refund: int = 0
    gas_refund: int = 0
    gas_burned: int = 0


def compute_gas_overestimation_burn(gas_used: int, gas_limit: int) -> tuple[int, int]:
    """(gas refunded, gas burned) for a message that used gas_used of gas_limit."""
    if gas_used == 0:
        return 0, gas_limit
    over = gas_limit - (GAS_OVERUSE_NUM * gas_used) // GAS_OVERUSE_DENOM
    if over < 0:
        return gas_limit - gas_used, 0
    over = min(over, gas_used)
    gas_to_burn = (gas_limit - gas_used) * over // gas_used
    return gas_limit - gas_used - gas_to_burn, gas_to_burn


def compute_gas_outputs(
    gas_used: int,
    gas_limit: int,
    base_fee: int,
    fee_cap: int,
    gas_premium: int,
    charge_network_fee: bool = True,
) -> GasOutputs:
    base_fee_to_pay = base_fee
    miner_penalty = 0
    if base_fee > fee_cap:
        base_fee_to_pay = fee_cap
        miner_penalty = (base_fee - fee_cap) * gas_used
    base_fee_burn = base_fee_to_pay * gas_used if charge_network_fee else 0
    tip_rate = gas_premium
    if base_fee_to_pay + tip_rate > fee_cap:
        tip_rate = fee_cap - base_fee_to_pay
    miner_tip = tip_rate * gas_limit
    gas_refund, gas_burned = compute_gas_overestimation_burn(gas_used, gas_limit)
    over_estimation_burn = 0
    if gas_burned != 0:
        over_estimation_burn = base_fee_to_pay * gas_burned
        miner_penalty += (base_fee - base_fee_to_pay) * gas_burned
    refund = gas_limit * fee_cap - base_fee_burn - miner_tip - over_estimation_burn
    return GasOutputs(
        base_fee_burn=base_fee_burn,
        over_estimation_burn=over_estimation_burn,
        miner_penalty=miner_penalty,
        miner_tip=miner_tip,
        refund=refund,
        gas_refund=gas_refund,
        gas_burned=gas_burned,
    )


def compute_next_base_fee(base_fee: int, gas_limit_used: int, blocks: int, policy: Policy) -> int:
    """The base fee of the next tipset, given the sum of the gas limits of the unique messages of a
    tipset of `blocks` blocks: at most 1/denominator up or down, towards the per-block gas target."""
    if blocks <= 0:
        raise ValueError(f"a tipset has at least one block, got {blocks}")
    target = policy.block_gas_target
    delta = gas_limit_used // blocks - target
    delta = max(-target, min(target, delta))
    change = base_fee * delta // target // policy.base_fee_max_change_denom
    return max(base_fee + change, policy.minimum_base_fee)
