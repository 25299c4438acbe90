"""The State*, Msig* and Market* methods are named, counted and permissioned as Lotus serves them.

The table is Lotus's (master, api/api_full.go for /rpc/v1 and api/v0api/full.go for /rpc/v0, the
counts also checked against build/openrpc/full.json; `//perm:` tags for the permissions), written out
by hand: a method declared here that is missing from it, or that differs from it, fails the test.
"""

from typing import Final

from rpc.methods import full_node_registry
from rpc.registry import APIS, Method

# name: (params on /rpc/v0, params on /rpc/v1, permission); None where the path lacks the method.
LOTUS: Final[dict[str, tuple[int | None, int | None, str]]] = {
    "StateAccountKey": (2, 2, "read"),
    "StateCall": (2, 2, "read"),
    "StateCirculatingSupply": (1, 1, "read"),
    "StateDecodeParams": (4, 4, "read"),
    "StateGetActor": (2, 2, "read"),
    "StateGetNetworkParams": (0, 0, "read"),
    "StateGetRandomnessFromBeacon": (4, 4, "read"),
    "StateGetRandomnessFromTickets": (4, 4, "read"),
    "StateGetReceipt": (2, None, "read"),
    "StateListActors": (1, 1, "read"),
    "StateListMiners": (1, 1, "read"),
    "StateLookupID": (2, 2, "read"),
    "StateLookupRobustAddress": (None, 2, "read"),
    "StateMarketBalance": (2, 2, "read"),
    "StateMarketDeals": (1, 1, "read"),
    "StateMarketStorageDeal": (2, 2, "read"),
    "StateMinerActiveSectors": (2, 2, "read"),
    "StateMinerAvailableBalance": (2, 2, "read"),
    "StateMinerDeadlines": (2, 2, "read"),
    "StateMinerFaults": (2, 2, "read"),
    "StateMinerInfo": (2, 2, "read"),
    "StateMinerPartitions": (3, 3, "read"),
    "StateMinerPower": (2, 2, "read"),
    "StateMinerProvingDeadline": (2, 2, "read"),
    "StateMinerRecoveries": (2, 2, "read"),
    "StateMinerSectors": (3, 3, "read"),
    "StateNetworkName": (0, 0, "read"),
    "StateNetworkVersion": (1, 1, "read"),
    "StateReadState": (2, 2, "read"),
    "StateReplay": (2, 2, "read"),
    "StateSearchMsg": (1, 4, "read"),
    "StateSearchMsgLimited": (2, None, "read"),
    "StateSectorGetInfo": (3, 3, "read"),
    "StateWaitMsg": (2, 4, "read"),
    "StateWaitMsgLimited": (3, None, "read"),
    "MsigApprove": (3, 3, "sign"),
    "MsigCreate": (6, 6, "sign"),
    "MsigGetAvailableBalance": (2, 2, "read"),
    "MsigGetPending": (2, 2, "read"),
    "MsigGetVested": (3, 3, "read"),
    "MsigPropose": (6, 6, "sign"),
    "MarketAddBalance": (3, 3, "sign"),
    "MarketGetReserved": (1, 1, "sign"),
    "MarketWithdraw": (3, 3, "sign"),
}
MODULES: Final = tuple(f"rpc.methods.{m}" for m in ("state", "state_miner", "state_market", "msig", "market"))


def _ours() -> dict[str, dict[str, Method]]:
    """The methods these modules declare, by name and path."""
    out: dict[str, dict[str, Method]] = {}
    registry = full_node_registry()
    for api in APIS:
        for m in registry.methods(api):
            if m.handler.__module__ in MODULES:
                out.setdefault(m.name, {})[api] = m
    return out


def test_every_method_is_named_and_counted_as_lotus() -> None:
    ours = _ours()
    assert sorted(ours) == sorted(LOTUS)
    for name, (v0, v1, perm) in LOTUS.items():
        for api, count in (("v0", v0), ("v1", v1)):
            m = ours[name].get(api)
            if count is None:
                assert m is None, f"{name} is not on /rpc/{api} in Lotus"
                continue
            assert m is not None, f"{name} is missing from /rpc/{api}"
            assert m.full_name == f"Filecoin.{name}"
            assert len(m.params) == count, f"{name} on /rpc/{api}: {len(m.params)} params, Lotus has {count}"
            assert m.perm.value == perm, f"{name}: permission {m.perm.value}, Lotus has {perm}"
            assert m.description, f"{name} has no description"
