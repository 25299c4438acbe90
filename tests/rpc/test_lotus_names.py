"""Every method of the `Filecoin.` namespace is named, counted and permissioned as Lotus serves it, and
the channel methods are Lotus's (`Filpy.` is filpy's own namespace, rpc/methods/devnet.py).

The table is Lotus's (master, api/api_common.go, api/api_full.go and api/api_net.go for /rpc/v1 and
api/v0api/full.go for /rpc/v0, the counts also checked against build/openrpc/full.json where it lists
the method; `//perm:` tags for the permissions), written out by hand: a method declared here that is
missing from it, or that differs from it, fails the test. The Client* and Market*Ask rows are those
of tests/rpc/test_client_names.py (Lotus v1.26, where they last were), joined here, so that LOTUS is
the one table of Lotus's counts: tests/interop/test_lotus_client_schema.py checks the names against
`@filecoin-shipyard/lotus-client-schema` 4.2.0 (Lotus 1.15) and reuses it; that schema's
`subscription: true` methods are CHANNELS.
"""

from typing import Final

from rpc.registry import DEFAULT_NAMESPACE, Method
from tests.rpc.test_client_names import LOTUS as CLIENT
from tests.rpc.test_client_names import LotusTable, check_as_lotus, registry_methods

# name: (params on /rpc/v0, params on /rpc/v1, permission); None where the path lacks the method.
_NODE: Final[LotusTable] = {
    "Version": (0, 0, "read"),
    "ID": (0, 0, "read"),
    "Session": (0, 0, "read"),
    "StartTime": (0, 0, "read"),
    "Shutdown": (0, 0, "admin"),
    "AuthNew": (1, 1, "admin"),
    "AuthVerify": (1, 1, "read"),
    "Discover": (0, 0, "read"),
    "LogList": (0, 0, "write"),
    "LogSetLevel": (2, 2, "write"),
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
    "ChainHead": (0, 0, "read"),
    "ChainNotify": (0, 0, "read"),
    "ChainGetGenesis": (0, 0, "read"),
    "ChainGetBlock": (1, 1, "read"),
    "ChainGetTipSet": (1, 1, "read"),
    "ChainGetTipSetByHeight": (2, 2, "read"),
    "ChainGetTipSetAfterHeight": (None, 2, "read"),
    "ChainGetBlockMessages": (1, 1, "read"),
    "ChainGetMessage": (1, 1, "read"),
    "ChainGetMessagesInTipset": (1, 1, "read"),
    "ChainGetParentMessages": (1, 1, "read"),
    "ChainGetParentReceipts": (1, 1, "read"),
    "ChainGetPath": (2, 2, "read"),
    "ChainReadObj": (1, 1, "read"),
    "ChainHasObj": (1, 1, "read"),
    "ChainStatObj": (2, 2, "read"),
    "ChainTipSetWeight": (1, 1, "read"),
    "ChainExport": (3, 3, "read"),
    "ChainGetRandomnessFromTickets": (4, None, "read"),
    "ChainGetRandomnessFromBeacon": (4, None, "read"),
    "MpoolPush": (1, 1, "write"),
    "MpoolPushMessage": (2, 2, "sign"),
    "MpoolBatchPush": (1, 1, "write"),
    "MpoolPending": (1, 1, "read"),
    "MpoolSelect": (2, 2, "read"),
    "MpoolGetNonce": (1, 1, "read"),
    "MpoolSub": (0, 0, "read"),
    "MpoolClear": (1, 1, "write"),
    "MpoolCheckMessages": (None, 1, "read"),
    "MpoolCheckPendingMessages": (None, 1, "read"),
    "MpoolCheckReplaceMessages": (None, 1, "read"),
    "GasEstimateMessageGas": (3, 3, "read"),
    "GasEstimateFeeCap": (3, 3, "read"),
    "GasEstimateGasLimit": (2, 2, "read"),
    "GasEstimateGasPremium": (4, 4, "read"),
    "WalletNew": (1, 1, "write"),
    "WalletHas": (1, 1, "write"),
    "WalletList": (0, 0, "write"),
    "WalletBalance": (1, 1, "read"),
    "WalletSign": (2, 2, "sign"),
    "WalletSignMessage": (2, 2, "sign"),
    "WalletVerify": (3, 3, "read"),
    "WalletDefaultAddress": (0, 0, "write"),
    "WalletSetDefault": (1, 1, "write"),
    "WalletExport": (1, 1, "admin"),
    "WalletImport": (1, 1, "admin"),
    "WalletDelete": (1, 1, "admin"),
    "WalletValidateAddress": (1, 1, "read"),
    "StateGetBeaconEntry": (None, 1, "read"),
    "BeaconGetEntry": (1, None, "read"),
    "SyncState": (0, 0, "read"),
    "SyncCheckBad": (1, 1, "read"),
    "SyncMarkBad": (1, 1, "admin"),
    "SyncUnmarkBad": (1, 1, "admin"),
    "SyncUnmarkAllBad": (0, 0, "admin"),
    "NetPeers": (0, 0, "read"),
    "NetDisconnect": (1, 1, "write"),
    "NetAddrsListen": (0, 0, "read"),
    "NetConnect": (1, 1, "write"),
    "NetConnectedness": (1, 1, "read"),
    "NetAgentVersion": (1, 1, "read"),
    "PaychGet": (3, 4, "sign"),
    "PaychFund": (None, 3, "sign"),
    "PaychGetWaitReady": (1, 1, "sign"),
    "PaychAvailableFunds": (1, 1, "sign"),
    "PaychAvailableFundsByFromTo": (2, 2, "sign"),
    "PaychList": (0, 0, "read"),
    "PaychStatus": (1, 1, "read"),
    "PaychSettle": (1, 1, "sign"),
    "PaychCollect": (1, 1, "sign"),
    "PaychAllocateLane": (1, 1, "sign"),
    "PaychNewPayment": (3, 3, "sign"),
    "PaychVoucherCheckValid": (2, 2, "read"),
    "PaychVoucherCheckSpendable": (4, 4, "read"),
    "PaychVoucherCreate": (3, 3, "sign"),
    "PaychVoucherAdd": (4, 4, "write"),
    "PaychVoucherList": (1, 1, "write"),
    "PaychVoucherSubmit": (4, 4, "sign"),
}
LOTUS: Final = _NODE | CLIENT
# The channel methods among them (lotus-client-schema's `subscription: true`).
CHANNELS: Final = {"ChainNotify", "ChainExport", "MpoolSub"}


def _ours() -> dict[str, dict[str, Method]]:
    """The registry's methods of Lotus's namespace, by full name and path."""
    return registry_methods(lambda m: m.namespace == DEFAULT_NAMESPACE)


def test_every_method_is_named_and_counted_as_lotus() -> None:
    ours = _ours()
    assert sorted(ours) == sorted(f"Filecoin.{name}" for name in LOTUS)
    check_as_lotus(ours, LOTUS)


def test_channel_methods_are_lotus_s() -> None:
    channels = {m.name for paths in _ours().values() for m in paths.values() if m.channel}
    assert channels == CHANNELS
