"""Every method filpy serves in Lotus's `Filecoin.` namespace is named as `@filecoin-shipyard/lotus-client-
schema` 4.2.0 names it (the npm package JavaScript clients are generated from: Lotus 1.15's full-node
API, names and subscription flags only), or is newer than it or /rpc/v0-only and then listed below with
the Lotus Go file that declares it; the provider's storage and retrieval ask methods, which lotus-miner
serves and filpy's node serves as the provider, are named as the schema's storage-miner API names them.
Param counts are those of Lotus's Go files, from the one table of them (tests/rpc/test_lotus_names.py);
the schema's subscription methods are our channel methods.
"""

import json
import subprocess
from typing import Final

import pytest

from rpc.methods import full_node_registry
from rpc.registry import APIS, DEFAULT_NAMESPACE, Method
from tests.interop.js_env import JS_DIR, node_with_packages
from tests.rpc.test_lotus_names import LOTUS

# Methods the schema (Lotus 1.15's v1 API) does not list: where Lotus declares them.
NOT_IN_SCHEMA: Final = {
    "StartTime": "api/api_common.go",
    "PaychFund": "api/api_full.go",
    "StateGetBeaconEntry": "api/api_full.go",
    "StateGetNetworkParams": "api/api_full.go",
    "StateLookupRobustAddress": "api/api_full.go",
    "ChainGetRandomnessFromBeacon": "api/v0api/full.go",
    "ChainGetRandomnessFromTickets": "api/v0api/full.go",
    "StateGetReceipt": "api/v0api/full.go",
    "StateSearchMsgLimited": "api/v0api/full.go",
    "StateWaitMsgLimited": "api/v0api/full.go",
}
# lotus-miner's methods (api/api_storage.go) that filpy's full node serves, being the provider too.
FROM_STORAGE_MINER: Final = {"MarketSetAsk", "MarketGetAsk", "MarketSetRetrievalAsk", "MarketGetRetrievalAsk"}


@pytest.fixture(scope="module")
def schema() -> dict[str, bool]:
    """The schema's full-node methods and the storage-miner ones filpy serves: name -> subscription flag."""
    node = node_with_packages("the lotus-client-schema test")
    done = subprocess.run(
        [node, str(JS_DIR / "lotus_schema.mjs")], cwd=JS_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    apis: dict[str, dict[str, bool]] = json.loads(done.stdout)
    methods = apis["fullNode"]
    assert len(methods) == 211  # Lotus 1.15's full node, as the package says
    assert not FROM_STORAGE_MINER & set(methods)
    for name in FROM_STORAGE_MINER:
        methods[name] = apis["storageMiner"][name]
    return methods


def served() -> list[tuple[str, Method]]:
    registry = full_node_registry()
    return [(api, m) for api in APIS for m in registry.methods(api) if m.namespace == DEFAULT_NAMESPACE]


def test_every_method_is_named_as_the_schema_or_declared_newer(schema: dict[str, bool]) -> None:
    names = {m.name for _, m in served()}
    assert names - set(schema) == set(NOT_IN_SCHEMA), "a name missing from the schema must be listed here"
    assert not set(NOT_IN_SCHEMA) & set(schema)
    for name in names:
        assert name in LOTUS, f"{name}: no row in Lotus's table of counts"


def test_param_counts_are_lotus_s(schema: dict[str, bool]) -> None:
    for api, m in served():
        v0, v1, _ = LOTUS[m.name]
        expected = v0 if api == "v0" else v1
        assert len(m.params) == expected, f"{m.full_name} on /rpc/{api}: {len(m.params)} != {expected}"


def test_channel_methods_are_the_schema_s_subscriptions(schema: dict[str, bool]) -> None:
    for _, m in served():
        if m.name in schema:
            assert m.channel == schema[m.name], f"{m.full_name}: channel {m.channel}, schema {schema[m.name]}"
        else:
            assert not m.channel
