"""`filpy state ...` and `filpy mpool pending` against a real node: fields from the node's state, `--json`
equal to the node's answer, waiting for a message while tipsets are mined, and refusals as messages."""

from chain.types.fil import format_fil
from tests.cli.client_kit import Filpy, error_line
from tests.cli.conftest import Node
from tests.rpc.chain_node import ALICE, ALICE_ADDR, BOB_ADDR, CAROL_ADDR, miner_address, transfer


async def test_actor(served: Node, filpy: Filpy) -> None:
    async with served.api() as api:
        actor = await api.call("StateGetActor", str(CAROL_ADDR), [])
        miner = await api.call("StateGetActor", str(miner_address()), [])
    fields = (await filpy("state", "actor", str(CAROL_ADDR))).fields()
    assert fields == {
        "Address": str(CAROL_ADDR),
        "Balance": format_fil(int(actor["Balance"])),
        "Nonce": str(actor["Nonce"]),
        "Code": f"{actor['Code']['/']} (account)",
        "Head": actor["Head"]["/"],
    }
    assert (
        (await filpy("state", "get-actor", str(miner_address()))).fields()["Code"].endswith("(storageminer)")
    )
    assert (await filpy("state", "actor", str(miner_address()), "--json")).json() == miner
    first = served.mined.tipsets[0]
    async with served.api() as api:
        then = await api.call("StateGetActor", str(CAROL_ADDR), [{"/": str(c)} for c in first.cids])
    at_first = await filpy("state", "actor", str(CAROL_ADDR), "--tipset", f"@{first.height}", "--json")
    assert at_first.json() == then and then != actor


async def test_miner_power(served: Node, filpy: Filpy) -> None:
    miner = str(miner_address())
    fields = (await filpy("state", "miner-power", miner)).fields()
    assert fields["Quality-adjusted power"] == "4 Ki / 8 Ki (50.0000%)"  # two 2 KiB sectors of four
    assert fields["Raw power"] == "4 KiB / 8 KiB (50.0000%)"
    assert fields["Above consensus minimum"] == "yes"
    async with served.api() as api:
        answer = await api.call("StateMinerPower", miner, [])
    assert (await filpy("state", "power", miner, "--json")).json() == answer
    not_miner = await filpy("state", "miner-power", str(ALICE_ADDR))
    assert error_line(not_miner, "state miner-power") == f"{ALICE_ADDR} is not a storage miner actor"


async def test_lookup_both_ways(served: Node, filpy: Filpy) -> None:
    async with served.api() as api:
        id_address = await api.call("StateLookupID", str(BOB_ADDR), [])
    assert (await filpy("state", "lookup", str(BOB_ADDR))).out == f"{id_address}\n"
    assert (await filpy("state", "lookup", "-r", id_address)).out == f"{BOB_ADDR}\n"
    unknown = "t1d2xrzcslx7xlbbylc5c3d5lvandqw4iwl6epxba"
    assert error_line(await filpy("state", "lookup", unknown), "state lookup").startswith("actor not found")


async def test_wait_msg_and_search_msg(served: Node, filpy: Filpy) -> None:
    signed = transfer(ALICE, 2, CAROL_ADDR, 777)
    served.node.mpool.push(signed)
    cid = str(signed.cid())
    missing = await filpy("state", "search-msg", cid)
    assert error_line(missing, "state search-msg") == f"failed to find message: {cid}"
    waited = await filpy.mining(served.mine, "state", "wait-msg", "--confidence", "2", cid)
    assert waited.code == 0, waited.err
    async with served.api() as api:
        lookup = await api.call("StateSearchMsg", [], {"/": cid}, None, True)
        assert lookup is not None
        assert served.node.chain.head().height - lookup["Height"] >= 2
    assert waited.fields()["Exit Code"] == "0" and waited.fields()["Height"] == str(lookup["Height"])
    assert (await filpy("state", "search-msg", cid, "--json")).json() == lookup
    assert (await filpy("state", "wait-msg", cid, "--confidence", "0", "--json")).json() == lookup


async def test_mpool_pending(served: Node, filpy: Filpy) -> None:
    mine = transfer(ALICE, 2, CAROL_ADDR, 5)
    served.node.mpool.push(mine)
    ran = await filpy("mpool", "pending")
    header, *rows = ran.table()
    assert header[:5] == ["CID", "From", "To", "Nonce", "Value"]
    assert [row[:5] for row in rows[:-1]] == [
        [str(mine.cid()), str(ALICE_ADDR), str(CAROL_ADDR), "2", "0.000000000000000005 FIL"]
    ]
    assert ran.lines[-1] == "1 pending message"
    assert (await filpy("mpool", "pending", "--cids")).out == f"{mine.cid()}\n"
    async with served.api() as api:
        answer = await api.call("MpoolPending", [])
    assert (await filpy("mpool", "pending", "--json")).json() == answer
    assert (
        await filpy("mpool", "pending", "--local", "--json")
    ).json() == answer  # ALICE's key is the node's
    assert (await filpy("mpool", "pending", "--to", str(BOB_ADDR), "--json")).json() == []
    assert (await filpy("mpool", "pending", "--from", str(ALICE_ADDR), "--cids")).out == f"{mine.cid()}\n"
