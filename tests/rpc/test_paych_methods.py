"""The Paych* methods over HTTP on 127.0.0.1: a client node and a provider on its chain, each served by
its own RPC server, with blocks mined as the calls need them. Lotus's JSON shapes, the v0 and v1 forms of
PaychGet, permissions, and refusals as errors that say why."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from actors.paych.types import PaychState, SignedVoucher
from chain.stmgr.actors import read_actor_state
from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.paych_types import decode_voucher, encode_voucher
from rpc.auth import create_token, perms_up_to
from rpc.client import HttpClient, RpcCallError
from rpc.errors import INVALID_PARAMS, METHOD_NOT_FOUND
from rpc.methods import full_node_registry
from rpc.server import BoundAddress, RpcServer
from tests.markets.devnode import (
    CLIENT,
    FIL,
    PROVIDER,
    PROVIDER_KEY,
    WORKER,
    WORKER_KEY,
    Miner,
    make_node,
    party,
)
from tests.rpc.test_lotus_names import LOTUS

SECRET: Final = b"p" * 32
CHANNEL_INFO: Final = {"Channel", "WaitSentinel"}
AVAILABLE_FUNDS: Final = {
    "Channel",
    "From",
    "To",
    "ConfirmedAmt",
    "PendingAmt",
    "NonReservedAmt",
    "PendingAvailableAmt",
    "PendingWaitSentinel",
    "QueuedAmt",
    "VoucherReedeemedAmt",
}
VOUCHER: Final = {
    "ChannelAddr",
    "TimeLockMin",
    "TimeLockMax",
    "SecretHash",
    "Extra",
    "Lane",
    "Nonce",
    "Amount",
    "MinSettleHeight",
    "Merges",
    "Signature",
}


def token(perm: str) -> str:
    return create_token(SECRET, perms_up_to(perm))


@dataclass
class Served:
    client: FullNode
    provider: FullNode
    miner: Miner
    client_url: str
    provider_url: str

    def api(self, who: str = "client", perm: str = "sign", path: str = "v1") -> HttpClient:
        url = self.client_url if who == "client" else self.provider_url
        return HttpClient(f"{url}/rpc/{path}", token=token(perm), timeout=60)


@pytest.fixture
async def served(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Served]:
    client = make_node(tmp_path)
    provider = party(client, tmp_path / "provider-keys", PROVIDER_KEY, WORKER_KEY)
    urls = []
    for node in (client, provider):
        await nursery.start(node.paych.run)
        server = RpcServer(full_node_registry(), node, secret=SECRET, host="127.0.0.1", port=0)
        bound: BoundAddress = await nursery.start(server.run)
        urls.append(bound.url("").rstrip("/"))
    yield Served(client, provider, Miner(client), urls[0], urls[1])


async def wait_ready(served: Served, api: HttpClient, sentinel: Any) -> str:
    result: str = await served.miner.run_until(lambda: api.call("PaychGetWaitReady", sentinel))
    return result


async def test_a_channel_and_its_vouchers_over_http(served: Served) -> None:
    async with served.api() as client, served.api("provider") as provider:
        got = await client.call("PaychGet", str(CLIENT), str(PROVIDER), str(10 * FIL), {"OffChain": False})
        assert set(got) == CHANNEL_INFO and got["Channel"] == "<empty>" and set(got["WaitSentinel"]) == {"/"}
        creating = await client.call("PaychAvailableFundsByFromTo", str(CLIENT), str(PROVIDER))
        assert set(creating) == AVAILABLE_FUNDS
        assert (creating["Channel"], creating["PendingAmt"], creating["PendingWaitSentinel"]) == (
            None,
            str(10 * FIL),
            got["WaitSentinel"],
        )
        channel = await wait_ready(served, client, got["WaitSentinel"])
        assert channel.startswith("t2")
        assert await client.call("PaychList") == [channel]
        assert await client.call("PaychStatus", channel) == {"ControlAddr": str(CLIENT), "Direction": 2}
        funds = await client.call("PaychAvailableFunds", channel)
        assert funds["Channel"] == channel and funds["ConfirmedAmt"] == str(10 * FIL)
        assert funds["PendingWaitSentinel"] is None and funds["VoucherReedeemedAmt"] == "0"
        assert await client.call("PaychAllocateLane", channel) == 0

        made = await client.call("PaychVoucherCreate", channel, str(3 * FIL), 0)
        assert set(made) == {"Voucher", "Shortfall"} and made["Shortfall"] == "0"
        voucher = made["Voucher"]
        assert set(voucher) == VOUCHER
        assert (voucher["ChannelAddr"], voucher["Lane"], voucher["Nonce"], voucher["Amount"]) == (
            channel,
            0,
            1,
            str(3 * FIL),
        )
        assert (voucher["SecretHash"], voucher["Extra"], voucher["Merges"]) == (None, None, None)
        assert voucher["Signature"]["Type"] == 1
        short = await client.call("PaychVoucherCreate", channel, str(11 * FIL), 1)
        assert short == {"Voucher": None, "Shortfall": str(4 * FIL)}
        assert await client.call("PaychVoucherList", channel) == [voucher]
        # The CLI's text form carries the same voucher.
        text = encode_voucher(SignedVoucher.from_json(voucher))
        assert decode_voucher(text).to_json("t") == voucher

        # The provider checks, stores and redeems it.
        assert await provider.call("PaychVoucherCheckValid", channel, voucher) is None
        assert await provider.call("PaychVoucherAdd", channel, voucher, None, str(FIL)) == str(3 * FIL)
        assert await provider.call("PaychStatus", channel) == {"ControlAddr": str(PROVIDER), "Direction": 1}
        assert await provider.call("PaychVoucherCheckSpendable", channel, voucher, None, None) is True
        submitted = await provider.call("PaychVoucherSubmit", channel, voucher, None, None)
        assert set(submitted) == {"/"}
        await served.miner.mine_until(lambda: to_send(served, channel) == 3 * FIL)
        assert await provider.call("PaychVoucherCheckSpendable", channel, voucher, None, None) is False
        funds = await client.call("PaychAvailableFunds", channel)
        assert funds["VoucherReedeemedAmt"] == str(3 * FIL)

        # More funds, a payment of two vouchers on a new lane, then settle and collect.
        fund = await client.call("PaychFund", str(CLIENT), str(PROVIDER), str(2 * FIL))
        assert fund["Channel"] == channel
        assert await wait_ready(served, client, fund["WaitSentinel"]) == channel
        payment = await client.call(
            "PaychNewPayment", str(CLIENT), str(PROVIDER), [{"Amount": str(FIL)}, {"Amount": str(2 * FIL)}]
        )
        assert set(payment) == {"Channel", "WaitSentinel", "Vouchers"} and payment["Channel"] == channel
        assert payment["WaitSentinel"] is None  # reserved from the funds PaychFund added
        assert [(v["Lane"], v["Nonce"], v["Amount"]) for v in payment["Vouchers"]] == [
            (1, 1, str(FIL)),
            (1, 2, str(2 * FIL)),
        ]
        settle = await client.call("PaychSettle", channel)
        assert set(settle) == {"/"}
        await served.miner.mine_until(lambda: settling_at(served, channel) != 0)
        settles = settling_at(served, channel)
        await served.miner.mine_until(lambda: served.client.chain.head().height >= settles)
        collect = await provider.call("PaychCollect", channel)
        assert set(collect) == {"/"}
        await served.miner.mine_until(lambda: paych_state(served, channel) is None)  # collected


def paych_state(served: Served, channel: str) -> PaychState | None:
    """The channel actor's state after the head (None once collected)."""
    head = served.client.chain.head()
    tree = served.client.state.tree(served.client.state.state_of(head).state_root)
    if tree.get_actor(Address.parse(channel)) is None:
        return None
    state: PaychState = read_actor_state(tree, Address.parse(channel), PaychState)
    return state


def to_send(served: Served, channel: str) -> int:
    state = paych_state(served, channel)
    assert state is not None
    return state.to_send


def settling_at(served: Served, channel: str) -> int:
    state = paych_state(served, channel)
    assert state is not None
    return state.settling_at


async def test_v0_and_v1_forms_permissions_and_refusals(served: Served) -> None:
    async with served.api(path="v0") as v0, served.api() as v1, served.api(perm="read") as reader:
        got = await v0.call("PaychGet", str(CLIENT), str(PROVIDER), str(FIL))
        assert set(got) == CHANNEL_INFO and got["Channel"] == "<empty>"
        with pytest.raises(RpcCallError) as e:
            await v0.call("PaychGet", str(CLIENT), str(PROVIDER), str(FIL), {"OffChain": True})
        assert (e.value.code, e.value.message) == (
            INVALID_PARAMS,
            "wrong param count (method 'Filecoin.PaychGet'): 4 != 3",
        )
        with pytest.raises(RpcCallError) as e:
            await v1.call("PaychGet", str(CLIENT), str(PROVIDER), str(FIL))
        assert e.value.message == "wrong param count (method 'Filecoin.PaychGet'): 3 != 4"
        with pytest.raises(RpcCallError) as e:
            await v0.call("PaychFund", str(CLIENT), str(PROVIDER), str(FIL))
        assert e.value.code == METHOD_NOT_FOUND

        # Lotus's permissions: PaychGet signs, PaychList reads, PaychVoucherList writes.
        with pytest.raises(RpcCallError, match=r"missing permission to invoke 'PaychGet' \(need 'sign'\)"):
            await reader.call("PaychGet", str(CLIENT), str(PROVIDER), str(FIL), {"OffChain": False})
        assert await reader.call("PaychList") == []
        with pytest.raises(
            RpcCallError, match=r"missing permission to invoke 'PaychVoucherList' \(need 'write'\)"
        ):
            await reader.call("PaychVoucherList", "t0999")

        # Refusals say why (code 1).
        with pytest.raises(RpcCallError) as e:
            await v1.call("PaychStatus", "t0999")
        assert (e.value.code, e.value.message) == (1, "channel not tracked: t0999")
        doesnt_exist = (
            f"payment channel doesn't exist, create with 'filpy paych add-funds {CLIENT} {WORKER} 1'"
        )
        with pytest.raises(RpcCallError, match=doesnt_exist):
            await v1.call("PaychGet", str(CLIENT), str(WORKER), str(FIL), {"OffChain": True})
        with pytest.raises(
            RpcCallError, match="cannot resolve t01234 to a key address: actor not found: t01234"
        ):
            await v1.call("PaychGet", str(CLIENT), "t01234", str(FIL), {"OffChain": True})
        with pytest.raises(RpcCallError, match="Could not find wait msg cid"):
            await v1.call(
                "PaychGetWaitReady", {"/": "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"}
            )
        with pytest.raises(RpcCallError) as e:
            await v1.call("PaychVoucherCheckValid", "t0999", {"ChannelAddr": "t0999"})
        assert e.value.code == INVALID_PARAMS
        assert e.value.message.startswith(
            "decoding param 2 of 'Filecoin.PaychVoucherCheckValid' (SignedVoucher): "
            "voucher: missing field 'TimeLockMin'"
        )


# Lotus master's Paych* methods: their rows of the one table of Lotus's counts and permissions.
LOTUS_PAYCH: Final = {name: row for name, row in LOTUS.items() if name.startswith("Paych")}


def test_paych_methods_are_named_counted_and_permissioned_as_lotus() -> None:
    registry = full_node_registry()
    ours: dict[str, dict[str, tuple[int, str]]] = {}
    for api in ("v0", "v1"):
        for m in registry.methods(api):
            if m.handler.__module__ == "rpc.methods.paych":
                ours.setdefault(m.name, {})[api] = (len(m.params), m.perm.value)
    expected = {
        name: {api: (count, perm) for api, count in (("v0", v0), ("v1", v1)) if count is not None}
        for name, (v0, v1, perm) in LOTUS_PAYCH.items()
    }
    assert ours == expected
