"""Well-known identities of the built-in actors: their code CIDs and singleton ID addresses.

Code CIDs are identity-multihash raw CIDs of "fil/1/<name>", the naming Lotus knows for the built-in
actors before actor bundles; filpy's actors are Python, so there is no bundle to hash.
"""

from typing import Final

from chain.encoding.cid import CID, RAW
from chain.encoding.multihash import IDENTITY, Multihash
from chain.types.address import Address


def _code(name: str) -> CID:
    return CID.v1(RAW, Multihash.digest_of(IDENTITY, f"fil/1/{name}".encode()))


SYSTEM_ACTOR_CODE: Final = _code("system")
INIT_ACTOR_CODE: Final = _code("init")
CRON_ACTOR_CODE: Final = _code("cron")
ACCOUNT_ACTOR_CODE: Final = _code("account")
POWER_ACTOR_CODE: Final = _code("storagepower")
MINER_ACTOR_CODE: Final = _code("storageminer")
MARKET_ACTOR_CODE: Final = _code("storagemarket")
PAYCH_ACTOR_CODE: Final = _code("paymentchannel")
MULTISIG_ACTOR_CODE: Final = _code("multisig")
REWARD_ACTOR_CODE: Final = _code("reward")

SYSTEM_ACTOR_ADDR: Final = Address.new_id(0)
INIT_ACTOR_ADDR: Final = Address.new_id(1)
REWARD_ACTOR_ADDR: Final = Address.new_id(2)
CRON_ACTOR_ADDR: Final = Address.new_id(3)
STORAGE_POWER_ACTOR_ADDR: Final = Address.new_id(4)
STORAGE_MARKET_ACTOR_ADDR: Final = Address.new_id(5)
VERIFIED_REGISTRY_ACTOR_ADDR: Final = Address.new_id(6)
DATACAP_ACTOR_ADDR: Final = Address.new_id(7)
EAM_ACTOR_ADDR: Final = Address.new_id(10)
BURNT_FUNDS_ACTOR_ADDR: Final = Address.new_id(99)
# Lotus's Filecoin reserve (builtin.ReserveAddress, f090): an account genesis funds with what it does
# not allocate; its balance is not circulating.
RESERVE_ACTOR_ADDR: Final = Address.new_id(90)

# The first ID the init actor assigns to a non-singleton actor (builtin-actors FIRST_NON_SINGLETON_ADDR).
FIRST_NON_SINGLETON_ID: Final = 100

# Callers allowed to send as "a signing account": account actors and multisigs, as builtin-actors'
# CALLER_TYPES_SIGNABLE.
CALLER_TYPES_SIGNABLE: Final = (ACCOUNT_ACTOR_CODE, MULTISIG_ACTOR_CODE)
