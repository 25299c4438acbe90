"""The storage deal settings of the client and the provider, in epochs where Lotus and Boost use time,
so that a devnet's short epochs scale them.

`ClientConfig.for_policy` / `ProviderConfig.for_policy` give Lotus's and Boost's defaults on mainnet and
shorter waits on test networks. The node's config (config.toml) maps onto these with `with_overrides`.
"""

from dataclasses import dataclass, field, replace
from typing import Final

from chain.params import EPOCHS_IN_DAY, Policy
from node.markets.deal_checks import ProviderTerms
from node.markets.deal_publisher import DEFAULT_MAX_DEALS
from node.markets.deal_transfer import DownloadOptions

# Lotus's client: deals start 8 days out unless told (dealStartBufferHours, 192 hours).
MAINNET_START_BUFFER: Final = 8 * EPOCHS_IN_DAY
# Boost's StartEpochSealingBuffer: a deal must start at least 480 epochs out.
MAINNET_SEALING_LEAD: Final = 480
# A test network's deals start at least 100 epochs and 10 minutes out: a sector that waits a minute for
# more deals (node/sealing/config.py) and then seals 8 MiB on a loaded machine must be proven before
# its deals start, whatever the block delay (at 1 s, 100 epochs were too few for an 8 MiB sector).
TESTNET_START_EPOCHS: Final = 100
TESTNET_START_SECONDS: Final = 600


@dataclass(frozen=True, slots=True)
class ClientConfig:
    # epochs from now to a deal's start when ClientStartDeal's DealStartEpoch is not given
    start_buffer: int = MAINNET_START_BUFFER
    # seconds between two status requests while a deal is in flight
    poll_interval: float = 30.0
    # tipsets on top of an AddBalance before the escrow counts it (Lotus MessageConfidence)
    message_confidence: int = 5
    # status requests in a row that may go unanswered before the deal says so in its message (it keeps
    # asking: the provider may be restarting)
    status_failures_noted: int = 3
    # the base URL providers fetch deal data from: this node's API as they reach it
    transfer_url: str = "http://127.0.0.1:1234"

    @classmethod
    def for_policy(cls, policy: Policy) -> "ClientConfig":
        if policy.network_name == "mainnet":
            return cls()
        epochs = max(TESTNET_START_EPOCHS, TESTNET_START_SECONDS // max(policy.block_delay_secs, 1))
        return cls(start_buffer=epochs, poll_interval=1.0, message_confidence=1)

    def with_overrides(self, **changes: object) -> "ClientConfig":
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    terms: ProviderTerms = field(default_factory=lambda: ProviderTerms(sealing_lead=MAINNET_SEALING_LEAD))
    # seconds a ready deal waits for others to share its publish message (Lotus PublishMsgPeriod is an
    # hour; a devnet publishes within a block or two)
    publish_period: float = 3600.0
    max_deals_per_publish: int = DEFAULT_MAX_DEALS
    # tipsets on top of a message before it counts as landed
    message_confidence: int = 5
    download: DownloadOptions = field(default_factory=DownloadOptions)

    @classmethod
    def for_policy(cls, policy: Policy) -> "ProviderConfig":
        if policy.network_name == "mainnet":
            return cls()
        # the sealing pipeline starts a devnet sector 4 x PreCommitChallengeDelay + 20 epochs before its
        # first deal starts (node/sealing/config.py); leave it that and as long again to seal
        lead = 2 * (4 * policy.pre_commit_challenge_delay + 20)
        return cls(terms=ProviderTerms(sealing_lead=lead), publish_period=1.0, message_confidence=1)

    def with_overrides(self, **changes: object) -> "ProviderConfig":
        return replace(self, **changes)  # type: ignore[arg-type]
