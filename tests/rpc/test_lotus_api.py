"""Every method declared in rpc/methods/{chain,mpool,gas,wallet,beacon,sync,net}.py has Lotus's name, param
count, paths, permission and channel flag.

The table is written from the reference, not from our declarations:
- names: `@filecoin-shipyard/lotus-client-schema` 4.2.0 (`mainnet` fullNode methods, Lotus 1.15), whose
  `subscription: true` marks the channel methods; the three names it lacks come from newer Lotus:
  StateGetBeaconEntry (build/openrpc/full.json) and the v0-only ChainGetRandomnessFrom* (api/v0api);
- param counts: Lotus master's build/openrpc/full.json (`params`), and for the methods it leaves out
  (channels, Net*, v0-only) the Go signatures in api/api_full.go, api/api_net.go, api/v0api/full.go;
- paths: a method missing from api/v0api/full.go is v1 only; v0-only methods are missing from
  api/api_full.go;
- permissions: the `//perm:` comments of those Go files.
"""

from typing import Final

from rpc.methods import full_node_registry
from rpc.registry import APIS

BOTH: Final = ("v0", "v1")
V1: Final = ("v1",)
V0: Final = ("v0",)

# name: (params, paths, permission, channel)
LOTUS: Final[dict[str, tuple[int, tuple[str, ...], str, bool]]] = {
    "ChainHead": (0, BOTH, "read", False),
    "ChainNotify": (0, BOTH, "read", True),
    "ChainGetGenesis": (0, BOTH, "read", False),
    "ChainGetBlock": (1, BOTH, "read", False),
    "ChainGetTipSet": (1, BOTH, "read", False),
    "ChainGetTipSetByHeight": (2, BOTH, "read", False),
    "ChainGetTipSetAfterHeight": (2, V1, "read", False),
    "ChainGetBlockMessages": (1, BOTH, "read", False),
    "ChainGetMessage": (1, BOTH, "read", False),
    "ChainGetMessagesInTipset": (1, BOTH, "read", False),
    "ChainGetParentMessages": (1, BOTH, "read", False),
    "ChainGetParentReceipts": (1, BOTH, "read", False),
    "ChainGetPath": (2, BOTH, "read", False),
    "ChainReadObj": (1, BOTH, "read", False),
    "ChainHasObj": (1, BOTH, "read", False),
    "ChainStatObj": (2, BOTH, "read", False),
    "ChainTipSetWeight": (1, BOTH, "read", False),
    "ChainExport": (3, BOTH, "read", True),
    "ChainGetRandomnessFromTickets": (4, V0, "read", False),
    "ChainGetRandomnessFromBeacon": (4, V0, "read", False),
    "MpoolPush": (1, BOTH, "write", False),
    "MpoolPushMessage": (2, BOTH, "sign", False),
    "MpoolBatchPush": (1, BOTH, "write", False),
    "MpoolPending": (1, BOTH, "read", False),
    "MpoolSelect": (2, BOTH, "read", False),
    "MpoolGetNonce": (1, BOTH, "read", False),
    "MpoolSub": (0, BOTH, "read", True),
    "MpoolClear": (1, BOTH, "write", False),
    "MpoolCheckMessages": (1, V1, "read", False),
    "MpoolCheckPendingMessages": (1, V1, "read", False),
    "MpoolCheckReplaceMessages": (1, V1, "read", False),
    "GasEstimateMessageGas": (3, BOTH, "read", False),
    "GasEstimateFeeCap": (3, BOTH, "read", False),
    "GasEstimateGasLimit": (2, BOTH, "read", False),
    "GasEstimateGasPremium": (4, BOTH, "read", False),
    "WalletNew": (1, BOTH, "write", False),
    "WalletHas": (1, BOTH, "write", False),
    "WalletList": (0, BOTH, "write", False),
    "WalletBalance": (1, BOTH, "read", False),
    "WalletSign": (2, BOTH, "sign", False),
    "WalletSignMessage": (2, BOTH, "sign", False),
    "WalletVerify": (3, BOTH, "read", False),
    "WalletDefaultAddress": (0, BOTH, "write", False),
    "WalletSetDefault": (1, BOTH, "write", False),
    "WalletExport": (1, BOTH, "admin", False),
    "WalletImport": (1, BOTH, "admin", False),
    "WalletDelete": (1, BOTH, "admin", False),
    "WalletValidateAddress": (1, BOTH, "read", False),
    "StateGetBeaconEntry": (1, V1, "read", False),
    "BeaconGetEntry": (1, V0, "read", False),
    "SyncState": (0, BOTH, "read", False),
    "NetPeers": (0, BOTH, "read", False),
    "NetAddrsListen": (0, BOTH, "read", False),
    "NetConnect": (1, BOTH, "write", False),
    "NetConnectedness": (1, BOTH, "read", False),
    "NetAgentVersion": (1, BOTH, "read", False),
}

MODULES: Final = {f"rpc.methods.{m}" for m in ("chain", "mpool", "gas", "wallet", "beacon", "sync", "net")}


def declared() -> dict[str, tuple[int, tuple[str, ...], str, bool]]:
    registry = full_node_registry()
    found: dict[str, tuple[int, list[str], str, bool]] = {}
    for api in APIS:
        for m in registry.methods(api):
            if m.handler.__module__ not in MODULES:
                continue
            assert m.namespace == "Filecoin"
            entry = found.setdefault(m.name, (len(m.params), [], m.perm.value, m.channel))
            assert entry[0] == len(m.params) and entry[2:] == (m.perm.value, m.channel), m.name
            entry[1].append(api)
    return {name: (n, tuple(paths), perm, channel) for name, (n, paths, perm, channel) in found.items()}


def test_every_declared_method_is_lotus_s() -> None:
    got = declared()
    assert set(got) == set(LOTUS), set(got) ^ set(LOTUS)
    for name, expected in LOTUS.items():
        assert got[name] == expected, name
