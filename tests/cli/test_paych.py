"""`filpy paych ...` against two real nodes on one chain (tests/markets/devnode.py): the payer's node
creates and funds a channel, signs vouchers; the payee's node checks, stores and redeems them; the payer
settles and collects. Each command is run against its party's own RPC server, as two users would."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from actors.paych.types import SignedVoucher
from node.fullnode import FullNode
from node.markets.paych_types import decode_voucher
from rpc.client import HttpClient
from rpc.methods import full_node_registry
from rpc.server import BoundAddress, RpcServer
from tests.cli.client_kit import Filpy, error_line, fake_repo
from tests.markets.devnode import CLIENT, FIL, PROVIDER, PROVIDER_KEY, WORKER_KEY, Miner, make_node, party
from tests.rpc.chain_node import ADMIN_TOKEN, SECRET

pytestmark = pytest.mark.slow  # a channel through its whole life: about 15 s


@dataclass
class Parties:
    payer: Path  # the payer's repo (its node's api and token)
    payee: Path
    payer_url: str
    payee_url: str
    miner: Miner
    payee_node: FullNode


@pytest.fixture
async def parties(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Parties]:
    payer = make_node(tmp_path)
    payee = party(payer, tmp_path / "payee-keys", PROVIDER_KEY, WORKER_KEY)
    repos, urls = [], []
    for name, node in (("payer", payer), ("payee", payee)):
        await nursery.start(node.paych.run)
        server = RpcServer(full_node_registry(), node, secret=SECRET, host="127.0.0.1", port=0)
        bound: BoundAddress = await nursery.start(server.run)
        repos.append(fake_repo(tmp_path / name, bound))
        urls.append(bound.url("/rpc/v1"))
    yield Parties(repos[0], repos[1], urls[0], urls[1], Miner(payer), payee)


async def test_a_channel_through_its_life(parties: Parties, capsys: pytest.CaptureFixture[str]) -> None:
    payer = Filpy(capsys, parties.payer)
    payee = Filpy(capsys, parties.payee)
    mine = parties.miner.mine

    funded = await payer.mining(mine, "paych", "add-funds", str(CLIENT), str(PROVIDER), "10")
    assert funded.code == 0, funded.err
    assert funded.lines[0] == "waiting for confirmation.."
    channel = funded.lines[1]
    assert channel.startswith("t2")
    assert (await payer("paych", "list")).lines == [channel]
    status = await payer("paych", "status", channel)
    assert status.lines[0] == "Channel exists"
    fields = status.fields()
    assert (fields["Channel"], fields["From"], fields["To"]) == (channel, str(CLIENT), str(PROVIDER))
    assert (fields["Confirmed Amt"], fields["Available Amt"], fields["Pending Amt"]) == (
        "10 FIL",
        "10 FIL",
        "0 FIL",
    )
    async with HttpClient(parties.payer_url, token=ADMIN_TOKEN) as api:
        by_pair = await api.call("PaychAvailableFundsByFromTo", str(CLIENT), str(PROVIDER))
    assert (await payer("paych", "status-by-from-to", str(CLIENT), str(PROVIDER), "--json")).json() == by_pair
    nothing = await payer("paych", "status-by-from-to", str(PROVIDER), str(CLIENT))
    assert nothing.lines[0] == "Channel does not exist"

    first = (await payer("paych", "voucher", "create", channel, "3")).out.strip()
    second = (await payer("paych", "voucher", "create", channel, "5.5")).out.strip()
    other_lane = (await payer("paych", "voucher", "create", channel, "1", "--lane", "1")).out.strip()
    vouchers = [decode_voucher(v) for v in (first, second, other_lane)]
    assert [(v.lane, v.nonce, v.amount) for v in vouchers] == [
        (0, 1, 3 * FIL),
        (0, 2, 11 * FIL // 2),
        (1, 1, FIL),
    ]
    short = await payer("paych", "voucher", "create", channel, "12")
    assert error_line(short, "paych voucher create") == (
        "could not create voucher: insufficient funds in channel, shortfall: 3 FIL"  # 12 + 1 of 10
    )

    assert (await payee("paych", "voucher", "check", channel, first)).out == "voucher is valid\n"
    added = await payee("paych", "voucher", "add", channel, first)
    assert added.out == "added voucher: lane 0, nonce 1: 3 FIL (adds 3 FIL)\n"
    added = await payee("paych", "voucher", "add", channel, second)
    assert added.out == "added voucher: lane 0, nonce 2: 5.5 FIL (adds 2.5 FIL)\n"
    assert (await payee("paych", "voucher", "add", channel, other_lane, "--json")).json() == str(FIL)
    listed = await payee("paych", "voucher", "list", channel)
    assert listed.lines == ["Lane 0, Nonce 1: 3 FIL", "Lane 0, Nonce 2: 5.5 FIL", "Lane 1, Nonce 1: 1 FIL"]
    exported = await payee("paych", "voucher", "list", channel, "--export")
    assert exported.lines[1] == f"Lane 0, Nonce 2: 5.5 FIL; {second}"
    best = await payee("paych", "voucher", "best-spendable", channel, "--export")
    assert best.lines == [f"Lane 0, Nonce 2: 5.5 FIL; {second}", f"Lane 1, Nonce 1: 1 FIL; {other_lane}"]
    as_json = (await payee("paych", "voucher", "best-spendable", channel, "--json")).json()
    assert [SignedVoucher.from_json(v) for v in as_json] == [vouchers[1], vouchers[2]]

    submitted = await payee.mining(mine, "paych", "voucher", "submit", channel, second, "--confidence", "1")
    assert submitted.out == "channel updated successfully\n", submitted.err
    best = await payee("paych", "voucher", "best-spendable", channel)
    assert best.lines == ["Lane 1, Nonce 1: 1 FIL"]  # the submitted one is no longer spendable

    settled = await payer.mining(mine, "paych", "settle", channel, "--confidence", "1")
    assert settled.out == f"Settled channel {channel}\n", settled.err
    # collect once the settle delay (10 epochs on the devnet) has passed
    for _ in range(12):
        await mine()
    collected = await payer.mining(mine, "paych", "collect", channel, "--confidence", "1")
    assert collected.out == f"Collected funds for channel {channel}\n", collected.err


async def test_refusals(parties: Parties, capsys: pytest.CaptureFixture[str]) -> None:
    payer = Filpy(capsys, parties.payer)
    bad = await payer("paych", "voucher", "check", "t2abc", "xyz")
    assert error_line(bad, "paych voucher check").startswith("failed to parse channel address 't2abc'")
    garbage = await payer("paych", "voucher", "check", str(CLIENT), "not=base64")
    assert (
        error_line(garbage, "paych voucher check") == "voucher: base64url without padding expected, found '='"
    )
    unknown = await payer("paych", "status", str(CLIENT))
    assert error_line(unknown, "paych status")
    too_much = await payer("paych", "add-funds", str(CLIENT), str(PROVIDER), "1e3")
    assert error_line(too_much, "paych add-funds").startswith("failed to parse amount '1e3'")
