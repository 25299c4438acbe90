"""`filpy auth create-token|api-info` and `filpy sync status` against a real node: tokens that the node
verifies with the permissions asked for (and the weaker ones), a FULLNODE_API_INFO that reaches the
node, and the sync workers as SyncState reports them."""

import base64
from pathlib import Path

import pytest

from tests.cli.client_kit import Filpy, error_line, home
from tests.cli.conftest import Node


async def test_create_token_with_each_permission(served: Node, filpy: Filpy) -> None:
    expected = {
        "read": ["read"],
        "write": ["read", "write"],
        "sign": ["read", "write", "sign"],
        "admin": ["read", "write", "sign", "admin"],
    }
    async with served.api() as api:
        for perm, granted in expected.items():
            token = (await filpy("auth", "create-token", "--perm", perm)).out.strip()
            assert await api.call("AuthVerify", token) == granted
    raw = (await filpy("auth", "create-token", "--perm", "read", "--json")).json()
    async with served.api() as api:
        assert await api.call("AuthVerify", base64.b64decode(raw).decode()) == ["read"]
    missing = await filpy("auth", "create-token")
    assert missing.code == 2  # --perm is required: a usage error, as Lotus's "--perm flag not set"


async def test_api_info_reaches_the_node(
    served: Node, filpy: Filpy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = (await filpy("auth", "api-info", "--perm", "write")).out.strip()
    name, _, value = line.partition("=")
    assert name == "FULLNODE_API_INFO" and value.endswith(f":{served.bound.multiaddr()}")
    with home(monkeypatch, tmp_path / "home"):
        monkeypatch.setenv("FULLNODE_API_INFO", value)
        filpy.repo = None
        assert (await filpy("wallet", "new")).code == 0  # write
        said = error_line(
            await filpy("wallet", "export", (await filpy("wallet", "default")).out.strip()), "wallet export"
        )
        assert said == "missing permission to invoke 'WalletExport' (need 'admin')"


async def test_sync_status(served: Node, filpy: Filpy) -> None:
    head = served.node.chain.head()
    ran = await filpy("sync", "status")
    assert ran.lines[:2] == ["sync status:", "worker 1:"]
    fields = ran.fields()
    cids = " ".join(str(c) for c in head.cids)
    assert fields["Base"] == f"[{cids}]"
    assert fields["Target"] == f"[{cids}] ({head.height})"
    assert (fields["Height diff"], fields["Stage"], fields["Height"]) == ("0", "complete", str(head.height))
    async with served.api() as api:
        assert (await filpy("sync", "status", "--json")).json() == await api.call("SyncState")
