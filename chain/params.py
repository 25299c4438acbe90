"""Every network parameter in one place, as two profiles: mainnet and devnet.

Nothing reads a global: the profile is chosen when a node (or a test) starts and is passed down; actors
get theirs from `rt.policy`. Each area keeps its fields together in the Policy below; a field's comment
says where the mainnet value comes from.

A profile may only allow the seal proofs proofs/ can seal and verify (proofs/registered.py): a miner
would otherwise pre-commit a sector nobody can prove, pay the deposit and lose it. Building a Policy
that allows another checks this and fails.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from proofs.registered import SEAL_PARAMS
from proofs.seal import SealProof

EPOCHS_IN_HOUR = 120  # mainnet: 30-second epochs
EPOCHS_IN_DAY = 24 * EPOCHS_IN_HOUR

# -- message sizes (docs/vm.md, "Message size") ------------------------------------------------------
# Lotus's pool takes messages up to 64 KiB, but one vanilla seal proof is 283 KB to 929 KB
# (docs/proofs.md), so a ProveCommitSector would not fit. The pool's limit is instead what one gossipsub
# RPC carries: 1 MiB (go-libp2p-pubsub's and py-libp2p's DefaultMaxMessageSize) less room for the pubsub
# envelope around the message (peer ID, sequence number, topic, signature and key). The consensus limit
# (chain.types.message.MAX_MESSAGE_SIZE, what the VM and block validation enforce) is the whole RPC.
GOSSIP_RPC_MAX_SIZE = 1 << 20
GOSSIP_ENVELOPE_ROOM = 4 << 10
POOL_MAX_MESSAGE_SIZE = GOSSIP_RPC_MAX_SIZE - GOSSIP_ENVELOPE_ROOM
# Each vanilla seal proof's exact size follows from proofs/registered.py's challenge counts (66 for
# every size: 283,074 B at 2 KiB, 713,922 B at 8 MiB, 929,346 B at 512 MiB); all fit a pool-sized
# ProveCommitSector.
SEAL_PROOF_SIZES = {proof: SealProof.encoded_size(p) for proof, p in SEAL_PARAMS.items()}
SEAL_PROOF_MAX_SIZE = max(SEAL_PROOF_SIZES.values())
# A ProveCommitAggregate message is its proofs plus, at most, this much: the signed message's fields
# and signature, the params' array, the sector-number bitfield and the CBOR headers of AggregateProof.
AGGREGATE_MESSAGE_OVERHEAD = 4 << 10
# So AggregateProof (the CBOR array of the proofs, each a byte string with a 5-byte header at these
# sizes) may take what is left of a pool-sized message.
MAX_AGGREGATED_PROOF_SIZE = POOL_MAX_MESSAGE_SIZE - AGGREGATE_MESSAGE_OVERHEAD
AGGREGATED_PROOF_HEADER = 5


def aggregate_capacity(seal_proofs: Iterable[int]) -> int:
    """How many proofs of the smallest of these seal proof types one AggregateProof holds (3 of 2 KiB
    sectors; 1 of 8 MiB or 512 MiB sectors, which therefore cannot be aggregated)."""
    smallest = min(SEAL_PROOF_SIZES[p] for p in seal_proofs)
    return MAX_AGGREGATED_PROOF_SIZE // (smallest + AGGREGATED_PROOF_HEADER)


MAX_AGGREGATED_SECTORS = aggregate_capacity(SEAL_PARAMS)


@dataclass(frozen=True, slots=True)
class Policy:
    network_name: str
    address_network: str  # "f" (mainnet) or "t" (test networks)
    block_delay_secs: int
    # allowed seal proof types (registered proof numbers, see proofs/registered.py)
    allowed_seal_proofs: tuple[int, ...] = field(default=())

    # -- chain and consensus ------------------------------------------------------------------------
    blocks_per_epoch: int = 5  # expected leaders per epoch (lotus build.BlocksPerEpoch)
    chain_finality: int = 900  # lotus build.Finality
    # minimum power (bytes, quality-adjusted) a miner needs to be eligible to win blocks
    consensus_miner_min_power: int = 10 << 40
    # the EIP-155 chain ID Ethereum tools know the network by (lotus buildconstants.Eip155ChainId)
    eip155_chain_id: int = 314

    # -- VM and gas (chain/vm) -------------------------------------------------------------------------
    # lotus build/buildconstants: BlockGasLimit, BlockGasTarget, BaseFeeMaxChangeDenom, MinimumBaseFee,
    # InitialBaseFee (the same on every network).
    block_gas_limit: int = 10_000_000_000
    block_gas_target: int = 5_000_000_000
    base_fee_max_change_denom: int = 8
    minimum_base_fee: int = 100
    initial_base_fee: int = 100_000_000
    # Deepest nesting of actor-to-actor sends below a top-level message (ref-fvm max_call_depth).
    max_call_depth: int = 1024
    # Largest signed message the message pool accepts and gossips, in bytes (lotus MaxMessageSize is
    # 64 KiB; filpy's is set by the proofs and gossip, above). At most chain.types.message.MAX_MESSAGE_SIZE.
    max_message_size: int = POOL_MAX_MESSAGE_SIZE

    # -- storage market, payment channels, multisig (builtin-actors v9 market/paych/multisig) ----------
    # inclusive bounds on a deal's duration, EndEpoch - StartEpoch (market policy deal_duration_bounds)
    market_deal_min_duration: int = 180 * EPOCHS_IN_DAY
    market_deal_max_duration: int = 540 * EPOCHS_IN_DAY
    # epochs between two cron payouts of an active deal (runtime policy DEAL_UPDATES_INTERVAL)
    market_deal_updates_interval: int = EPOCHS_IN_DAY
    # minimum provider collateral: this fraction of the circulating supply, scaled by the deal's share
    # of max(network raw power, baseline power) (PROV_COLLATERAL_PERCENT_SUPPLY_NUM / _DENOM)
    market_prov_collateral_percent_supply_num: int = 1
    market_prov_collateral_percent_supply_denom: int = 100
    # longest deal label, in bytes (market policy DEAL_MAX_LABEL_SIZE)
    market_deal_max_label_size: int = 256
    # epochs from Settle until a payment channel can be collected (paych SETTLE_DELAY, 12 hours)
    paych_settle_delay: int = 12 * EPOCHS_IN_HOUR
    # most signers a multisig may have (multisig SIGNERS_MAX)
    multisig_signers_max: int = 256

    # -- storage power, miner and reward actors (builtin-actors v9 runtime Policy and miner policy) ----
    # miners needed above the minimum power before the minimum is enforced (power CONSENSUS_MINER_MIN_MINERS)
    consensus_miner_min_miners: int = 4
    # Window PoSt: a proving period of wpost_period_deadlines deadlines, each a challenge window long
    wpost_proving_period: int = EPOCHS_IN_DAY  # WPOST_PROVING_PERIOD
    wpost_challenge_window: int = 60  # WPOST_CHALLENGE_WINDOW (half an hour)
    wpost_period_deadlines: int = 48  # WPOST_PERIOD_DEADLINES
    # the PoSt challenge is drawn this many epochs before its deadline opens (WPOST_CHALLENGE_LOOKBACK)
    wpost_challenge_lookback: int = 20
    # faults and recoveries for a deadline must be declared this long before it opens
    # (FAULT_DECLARATION_CUTOFF)
    fault_declaration_cutoff: int = 70
    # a sector faulty this long is terminated (FAULT_MAX_AGE, 42 proving periods)
    fault_max_age: int = 42 * EPOCHS_IN_DAY
    # sectors per Window PoSt partition and per deadline-level limits (MAX_PARTITIONS_PER_DEADLINE,
    # ADDRESSED_PARTITIONS_MAX, ADDRESSED_SECTORS_MAX, DECLARATIONS_MAX)
    max_partitions_per_deadline: int = 3000
    addressed_partitions_max: int = 3000
    addressed_sectors_max: int = 25_000
    declarations_max: int = 3000
    # miner info limits (MAX_CONTROL_ADDRESSES, MAX_PEER_ID_LENGTH, MAX_MULTIADDR_DATA)
    max_control_addresses: int = 10
    max_peer_id_length: int = 128
    max_multiaddr_data: int = 1024
    # sealing: the interactive seed is drawn this long after the pre-commit (PRE_COMMIT_CHALLENGE_DELAY)
    pre_commit_challenge_delay: int = 150
    # oldest seal ticket a pre-commit may use (MAX_PRE_COMMIT_RANDOMNESS_LOOKBACK, a day plus finality)
    max_pre_commit_randomness_lookback: int = EPOCHS_IN_DAY + 900
    # a pre-commit must be proven within this (max_prove_commit_duration for V1_1 proofs: 30 days + delay)
    max_prove_commit_duration: int = 30 * EPOCHS_IN_DAY + 150
    # an expired pre-commit's deposit is burnt this long after its proving deadline
    # (EXPIRED_PRE_COMMIT_CLEAN_UP_DELAY)
    expired_pre_commit_clean_up_delay: int = 8 * EPOCHS_IN_HOUR
    pre_commit_sector_batch_max_size: int = 256  # PRE_COMMIT_SECTOR_BATCH_MAX_SIZE
    # ProveCommitAggregate: how many sectors one aggregate proves (MIN_AGGREGATED_SECTORS) and its
    # largest AggregateProof. v9's 819 sectors and 81,960 B bound a SnarkPack; filpy's aggregate is the
    # CBOR array of the sectors' vanilla seal proofs (docs/proofs.md), so both follow from the message
    # size (above): as many of the profile's smallest proofs as a pool-sized message leaves room for
    # (aggregate_capacity). Where that is below min_aggregated_sectors the profile cannot aggregate
    # (mainnet's, with 512 MiB sectors only); the byte limit refuses larger proofs' aggregates. A profile
    # that changes max_message_size changes these with it (tests/chain/test_message_limits.py).
    min_aggregated_sectors: int = 4
    max_aggregated_sectors: int = MAX_AGGREGATED_SECTORS
    max_aggregated_proof_size: int = MAX_AGGREGATED_PROOF_SIZE
    # sector lifetime bounds (MIN_SECTOR_EXPIRATION, MAX_SECTOR_EXPIRATION_EXTENSION, and the 5-year
    # seal_proof_sector_maximum_lifetime of V1_1 proofs)
    min_sector_expiration: int = 180 * EPOCHS_IN_DAY
    max_sector_expiration_extension: int = 540 * EPOCHS_IN_DAY
    sector_max_lifetime: int = 5 * 365 * EPOCHS_IN_DAY
    # a new worker key takes effect this long after it is requested (WORKER_KEY_CHANGE_DELAY = finality)
    worker_key_change_delay: int = 900
    # a miner found at fault is barred from winning blocks this long (CONSENSUS_FAULT_INELIGIBILITY_DURATION)
    consensus_fault_ineligibility_duration: int = 900
    # pledge and penalties: how many epochs of expected reward each one projects (miner monies.rs).
    # These are amounts of epochs, not of time, so devnet keeps the mainnet values.
    epochs_in_day: int = EPOCHS_IN_DAY  # the "day" of expected_day_reward and of termination fees
    pre_commit_deposit_projection: int = 20 * EPOCHS_IN_DAY  # PRE_COMMIT_DEPOSIT_PROJECTION_PERIOD
    initial_pledge_projection: int = 20 * EPOCHS_IN_DAY  # INITIAL_PLEDGE_PROJECTION_PERIOD
    continued_fault_projection: int = EPOCHS_IN_DAY * 351 // 100  # CONTINUED_FAULT_PROJECTION_PERIOD
    termination_penalty_lower_bound_projection: int = EPOCHS_IN_DAY * 35 // 10
    termination_lifetime_cap: int = 140 * EPOCHS_IN_DAY  # TERMINATION_LIFETIME_CAP days, in epochs
    # locked block rewards vest linearly (REWARD_VESTING_SPEC: 180 days in daily steps, 12-hour quanta)
    reward_vesting_period: int = 180 * EPOCHS_IN_DAY
    reward_vesting_step: int = EPOCHS_IN_DAY
    reward_vesting_quantization: int = 12 * EPOCHS_IN_HOUR

    def __post_init__(self) -> None:
        unsupported = [p for p in self.allowed_seal_proofs if p not in SEAL_PARAMS]
        if unsupported:
            raise ValueError(
                f"profile {self.network_name!r} allows seal proofs {unsupported} that proofs/ cannot seal "
                f"or verify (it implements {sorted(int(p) for p in SEAL_PARAMS)})"
            )


MAINNET = Policy(
    network_name="mainnet",
    address_network="f",
    block_delay_secs=30,
    # Filecoin's mainnet takes 32 GiB and 64 GiB sectors (seal proofs 8 and 9), which proofs/ cannot
    # seal or verify (docs/proofs.md). The profile keeps mainnet's clock and economics with the
    # largest sector proofs/ seals: StackedDRG 512 MiB V1_1.
    allowed_seal_proofs=(7,),
    # one 929 KB proof per message: no ProveCommitAggregate on this profile (min 4 > 1)
    max_aggregated_sectors=aggregate_capacity((7,)),
)

DEVNET = Policy(
    network_name="devnet",
    address_network="t",
    block_delay_secs=4,
    allowed_seal_proofs=(5, 6, 7),  # StackedDRG 2 KiB, 8 MiB and 512 MiB V1_1: the sizes proofs/ seals
    chain_finality=20,
    consensus_miner_min_power=2048,
    eip155_chain_id=31415926,  # Lotus's 2k devnet
    # deals of a few minutes that pay out every 4 epochs, channels that settle in 40 seconds
    market_deal_min_duration=20,
    market_deal_updates_interval=4,
    paych_settle_delay=10,
    # 2 KiB sectors proven in 12 deadlines of 10 epochs: a 120-epoch proving period (8 minutes at 4 s,
    # 2 minutes at 1 s); sectors faulty for 3 proving periods are terminated; sectors live at least
    # 2 proving periods; worker changes and consensus-fault bans last one (devnet) finality
    wpost_proving_period=120,
    wpost_challenge_window=10,
    wpost_period_deadlines=12,
    wpost_challenge_lookback=2,
    fault_declaration_cutoff=5,
    fault_max_age=360,
    pre_commit_challenge_delay=5,
    max_pre_commit_randomness_lookback=600,
    max_prove_commit_duration=605,
    min_aggregated_sectors=2,  # so that a devnet miner can aggregate its first pair of sectors
    max_aggregated_sectors=aggregate_capacity((5, 6, 7)),  # three 2 KiB sectors
    expired_pre_commit_clean_up_delay=60,
    min_sector_expiration=240,
    max_sector_expiration_extension=100_000,
    sector_max_lifetime=1_000_000,
    worker_key_change_delay=20,
    consensus_fault_ineligibility_duration=20,
    # rewards vest over 20 proving periods in 120-epoch steps, so a devnet miner sees them unlock
    reward_vesting_period=2400,
    reward_vesting_step=120,
    reward_vesting_quantization=60,
)

PROFILES = {"mainnet": MAINNET, "devnet": DEVNET}
