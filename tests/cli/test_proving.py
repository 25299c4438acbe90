"""`filpy miner proving ...` against a real node that proves for no miner (tests/rpc/chain_node.py: two
genesis miners of two 2 KiB sectors each, no Window PoSt scheduler): the chain's views of a named miner
as lotus-miner prints them, `--json` equal to the node's answers, and the refusals as messages. The
commands on a node that proves, with a fault, are tests/e2e/test_storage_faults.py."""

from chain.types.bitfield import BitField
from tests.cli.client_kit import Filpy, error_line
from tests.cli.conftest import Node
from tests.rpc.chain_node import miner_address


async def test_the_chains_views_of_a_named_miner(served: Node, filpy: Filpy) -> None:
    miner = str(miner_address())
    async with served.api() as api:
        info = await api.call("Filpy.ProvingInfo", miner, None)
        deadlines = await api.call("Filpy.ProvingDeadlines", miner, None)
        faults = await api.call("Filpy.ProvingFaults", miner, None)
    fields = (await filpy("miner", "proving", "info", "--miner", miner)).fields()
    assert fields["Miner"] == miner
    assert fields["Current Epoch"] == str(info["CurrentEpoch"])
    assert fields["Live Sectors"] == "2" and fields["Faults"] == "0 (0.00%)"
    assert fields["Deadline Index"] == str(info["DeadlineIndex"])
    assert fields["Deadline Open"].startswith(f"{info['DeadlineOpen']} (")
    assert (await filpy("miner", "proving", "info", "--miner", miner, "--json")).json() == info

    table = (await filpy("miner", "proving", "deadlines", "--miner", miner)).table()
    assert table[0] == [f"Miner: {miner}"]
    assert table[1] == ["Deadline", "Open", "Partitions", "Sectors (Faults)", "Proven Partitions"]
    rows = {row[0]: row for row in table[2:]}
    assert len(rows) == len(deadlines)
    (holding,) = [d for d in deadlines if d["Partitions"]]
    assert rows[str(holding["Index"])][2:4] == ["1", "2 (0)"]
    assert (await filpy("miner", "proving", "deadlines", "--miner", miner, "--json")).json() == deadlines

    one = (
        await filpy("miner", "proving", "deadline", str(holding["Index"]), "--miner", miner, "-n")
    ).fields()
    assert one["Deadline Open"] == str(holding["Open"]) and one["Partitions"] == "1"
    live = list(BitField.from_json(holding["Partitions"][0]["LiveSectors"]))
    assert one["Live Sector Numbers"] == str(live) and one["Faulty Sector Numbers"] == "[]"

    assert faults == []
    listed = await filpy("miner", "proving", "faults", "--miner", miner)
    assert listed.table() == [[f"Miner: {miner}"], ["Deadline", "Partition", "Sector", "Status", "Reason"]]


async def test_refusals(served: Node, filpy: Filpy) -> None:
    refused = await filpy("miner", "proving", "info")
    assert error_line(refused, "miner proving info") == "this node proves for no miner: name one with --miner"
    miner = str(miner_address())
    missing = await filpy("miner", "proving", "deadline", "12", "--miner", miner)
    assert error_line(missing, "miner proving deadline") == "deadline 12 does not exist (0 to 11)"
    unchecked = await filpy("miner", "proving", "check", "0", "--miner", miner)
    assert error_line(unchecked, "miner proving check").startswith(f"this node does not prove for {miner}: ")
