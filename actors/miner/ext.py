"""What the miner calls on other actors: method numbers (builtin-actors v9 miner `ext.rs`).

Params and returns come from the callee's own types modules (actors.market.types, actors.power,
actors.reward); the market's method numbers are repeated here so the miner does not import the
market actor's implementation.
"""

from typing import Final

ACCOUNT_PUBKEY_ADDRESS: Final = 2
MARKET_VERIFY_DEALS_FOR_ACTIVATION: Final = 5
MARKET_ACTIVATE_DEALS: Final = 6
MARKET_ON_MINER_SECTORS_TERMINATE: Final = 7
# Deal IDs per OnMinerSectorsTerminate call (builtin-actors request_terminate_deals chunking).
MARKET_TERMINATE_CHUNK: Final = 8192
