"""The Client* methods are named, counted and permissioned as Lotus v1.26 served them (api/api_full.go
for /rpc/v1, api/v0api/full.go for /rpc/v0, their `//perm:` tags), MarketSetAsk/MarketGetAsk and the
retrieval asks as lotus-miner's (api/api_storage.go), and the provider's deal methods sit in filpy's
namespace."""

from collections.abc import Callable
from typing import Final

from rpc.methods import full_node_registry
from rpc.registry import APIS, Method

# name: (params on /rpc/v0, params on /rpc/v1, permission); None where the path lacks the method.
LotusTable = dict[str, tuple[int | None, int | None, str]]
LOTUS: Final[LotusTable] = {
    "ClientImport": (1, 1, "admin"),
    "ClientRemoveImport": (1, 1, "admin"),
    "ClientListImports": (0, 0, "write"),
    "ClientHasLocal": (1, 1, "write"),
    "ClientDealPieceCID": (1, 1, "read"),
    "ClientDealSize": (1, 1, "read"),
    "ClientCalcCommP": (1, 1, "write"),
    "ClientStartDeal": (1, 1, "admin"),
    "ClientGetDealInfo": (1, 1, "read"),
    "ClientListDeals": (0, 0, "write"),
    "ClientGetDealStatus": (1, 1, "read"),
    "ClientQueryAsk": (2, 2, "read"),
    "ClientFindData": (2, 2, "read"),
    "ClientMinerQueryOffer": (3, 3, "read"),
    "ClientRetrieve": (2, 1, "admin"),
    "ClientRetrieveWait": (None, 1, "admin"),
    "ClientExport": (None, 2, "admin"),
    "MarketSetAsk": (5, 5, "admin"),
    "MarketGetAsk": (0, 0, "read"),
    "MarketSetRetrievalAsk": (1, 1, "admin"),
    "MarketGetRetrievalAsk": (0, 0, "read"),
}
FILPY: Final = {
    "ClientDealInclusionProof": (1, "read"),
    "StorageDealsList": (0, "read"),
    "StorageDeal": (1, "read"),
    "StorageDealImportData": (2, "admin"),
    "MarketGetAsks": (0, "read"),
}


def registry_methods(keep: Callable[[Method], bool]) -> dict[str, dict[str, Method]]:
    """The registry's methods that keep takes, by full name and path."""
    out: dict[str, dict[str, Method]] = {}
    registry = full_node_registry()
    for api in APIS:
        for m in registry.methods(api):
            if keep(m):
                out.setdefault(m.full_name, {})[api] = m
    return out


def check_as_lotus(ours: dict[str, dict[str, Method]], table: LotusTable) -> None:
    """Each method of the table is on the paths Lotus serves it on (ours: by full name and path), with
    Lotus's count of params and permission, and described."""
    for name, (v0, v1, perm) in table.items():
        for api, count in (("v0", v0), ("v1", v1)):
            m = ours[f"Filecoin.{name}"].get(api)
            if count is None:
                assert m is None, f"{name} is not on /rpc/{api} in Lotus"
                continue
            assert m is not None, f"{name} is missing from /rpc/{api}"
            assert m.full_name == f"Filecoin.{name}"
            assert len(m.params) == count, f"{name} on /rpc/{api}: {len(m.params)} params, Lotus has {count}"
            assert m.perm.value == perm, f"{name}: permission {m.perm.value}, Lotus has {perm}"
            assert m.description, f"{name} has no description"


def test_client_methods_are_lotus_s() -> None:
    ours = registry_methods(lambda m: m.handler.__module__ == "rpc.methods.client")
    expected = {f"Filecoin.{n}" for n in LOTUS} | {f"Filpy.{n}" for n in FILPY}
    assert sorted(ours) == sorted(expected)
    check_as_lotus(ours, LOTUS)
    for name, (count, perm) in FILPY.items():
        for m in ours[f"Filpy.{name}"].values():
            assert len(m.params) == count and m.perm.value == perm and m.description
