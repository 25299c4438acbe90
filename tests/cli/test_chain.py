"""`filpy chain head|get-block|get-message|export` against a real node: what they print is what the node
holds, `--json` is the node's answer unchanged, and an export streamed over a WebSocket is a CAR whose
roots are the head and whose every block hashes to its CID."""

from pathlib import Path

from chain.store.car import CarReader
from chain.types.fil import format_fil
from tests.cli.client_kit import Filpy, error_line
from tests.cli.conftest import Node


async def test_head(served: Node, filpy: Filpy) -> None:
    head = served.node.chain.head()
    ran = await filpy("chain", "head")
    fields = ran.fields()
    assert fields["Height"] == str(head.height)
    assert fields["Parent weight"] == str(head.blocks[0].parent_weight)
    assert fields["Parent base fee"] == format_fil(head.blocks[0].parent_base_fee)
    rows = [row for row in ran.table() if row[0].startswith("bafy")]
    assert [(row[0], row[1]) for row in rows] == [(str(b.cid()), b.miner.to_string("t")) for b in head.blocks]
    assert (await filpy("chain", "head", "--height")).out == f"{head.height}\n"
    async with served.api() as api:
        assert (await filpy("chain", "head", "--json")).json() == await api.call("ChainHead")


async def test_get_block(served: Node, filpy: Filpy) -> None:
    first = served.mined.tipsets[0]
    block = first.blocks[0]
    ran = await filpy("chain", "get-block", str(block.cid()))
    fields = ran.fields()
    assert (fields["CID"], fields["Height"], fields["Miner"]) == (
        str(block.cid()),
        str(block.height),
        "t01000",
    )
    assert fields["Parent state root"] == str(block.parent_state_root)
    carried = len(served.mined.bls) + len(served.mined.secp)
    counts = int(fields["BLS messages"]) + int(fields["Secp256k1 messages"])
    assert 0 < counts <= carried
    async with served.api() as api:
        answer = await api.call("ChainGetBlock", {"/": str(block.cid())})
    assert (await filpy("chain", "getblock", str(block.cid()), "--json")).json() == answer


async def test_get_message(served: Node, filpy: Filpy) -> None:
    signed = served.mined.secp[1]
    ran = await filpy("chain", "get-message", str(signed.cid()))
    fields = ran.fields()
    msg = signed.message
    assert (fields["From"], fields["To"]) == (str(msg.from_), str(msg.to))
    assert (fields["Nonce"], fields["Value"]) == (str(msg.nonce), format_fil(msg.value))
    async with served.api() as api:
        answer = await api.call("ChainGetMessage", {"/": str(signed.cid())})
    assert (await filpy("chain", "get-msg", str(signed.cid()), "--json")).json() == answer


async def test_export_streams_a_car_of_the_chain(served: Node, filpy: Filpy, tmp_path: Path) -> None:
    out = tmp_path / "chain.car"
    ran = await filpy("chain", "export", "--recent-stateroots", "2", str(out))
    assert ran.code == 0, ran.err
    size = out.stat().st_size
    assert ran.out == f"exported {size} bytes to {out}\n"
    assert not (tmp_path / "chain.car.part").exists()
    head = served.node.chain.head()
    with out.open("rb") as stream:
        reader = CarReader(stream)
        assert list(reader.roots) == [b.cid() for b in head.blocks]
        cids = {cid for cid, _ in reader}  # every block is checked against its CID as it is read
    genesis = served.node.chain.genesis()
    assert genesis.cid() in cids and head.blocks[0].parent_state_root in cids
    again = await filpy("chain", "export", str(out))
    assert error_line(again, "chain export") == f"{out} exists: choose another file"


async def test_export_of_an_older_tipset(served: Node, filpy: Filpy, tmp_path: Path) -> None:
    first = served.mined.tipsets[0]
    out = tmp_path / "at-1.car"
    assert (await filpy("chain", "export", "--tipset", f"@{first.height}", str(out))).code == 0
    with out.open("rb") as stream:
        assert list(CarReader(stream).roots) == [b.cid() for b in first.blocks]
    by_cids = tmp_path / "by-cids.car"
    cids = ",".join(str(b.cid()) for b in first.blocks)
    assert (await filpy("chain", "export", "--tipset", cids, str(by_cids))).code == 0
    assert by_cids.read_bytes() == out.read_bytes()


async def test_export_refusals(filpy: Filpy, tmp_path: Path) -> None:
    out = tmp_path / "x.car"
    unknown = "bafy2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4"
    said = error_line(await filpy("chain", "export", "--tipset", unknown, str(out)), "chain export")
    assert said.startswith("loading tipset ")
    assert not out.exists() and not (tmp_path / "x.car.part").exists()
    skip = await filpy("chain", "export", "--skip-old-msgs", str(out))
    assert error_line(skip, "chain export") == "--skip-old-msgs needs --recent-stateroots"
    bad = await filpy("chain", "export", "--tipset", "@x", str(out))
    assert (
        error_line(bad, "chain export")
        == "failed to parse tipset '@x': expected @head, @<height> or block CIDs"
    )
