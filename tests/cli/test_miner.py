"""`filpy miner ...` against a real node (tests/sealing/devnet.py: a genesis miner mining every tipset and
proving its sectors): a 2 KiB miner created with power.CreateMiner through Filpy.MinerCreate and served at
once (the node's `on_miner_created` starts its sealing pipeline, as a daemon does), a committed-capacity
sector pledged, seen sealing in `sealing jobs`, then Proving in `sectors list|status` with power in
`miner info`; `--json` equal to the node's answers; refusals as messages (`sectors seal` of a sector that
is not open for deals among them)."""

import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from chain.params import DEVNET
from chain.stmgr import miners as miner_queries
from chain.types.address import Address
from chain.types.fil import FIL_PRECISION
from node.mining.create import LocalMinerRecord
from node.sealing.pipeline import SealingPipeline
from node.sealing.states import SectorState
from rpc.client import HttpClient
from rpc.methods import full_node_registry
from rpc.server import BoundAddress, RpcServer
from tests.cli.client_kit import Filpy, error_line, fake_repo
from tests.rpc.chain_node import ADMIN_TOKEN, SECRET
from tests.sealing.devnet import OWNER, WAIT, WORKER, Devnet

pytestmark = pytest.mark.slow  # a miner created and a sector sealed and proven: about 20 s


class HeldSealer:
    """Holds the pipeline's first seal (PreCommit1) until released, so that the job can be seen
    running; the seal itself is the real one."""

    def __init__(self, pipeline: SealingPipeline) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.real = pipeline.sealer.seal_sector
        pipeline.sealer.seal_sector = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        self.gate.wait(WAIT)
        return self.real(*args, **kwargs)


async def test_create_pledge_seal_and_read_a_miner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nursery: trio.Nursery
) -> None:
    net = Devnet.new(tmp_path)
    holds: list[HeldSealer] = []
    async with net.running() as services:

        async def serve(record: LocalMinerRecord) -> None:
            pipeline = net.pipeline(record.id_address)
            holds.append(HeldSealer(pipeline))
            await net.start(services, pipeline)
            net.node.sealing[record.id_address] = pipeline

        net.node.on_miner_created = serve
        server = RpcServer(full_node_registry(), net.node, secret=SECRET, host="127.0.0.1", port=0)
        bound: BoundAddress = await services.start(server.run)
        filpy = Filpy(capsys, fake_repo(tmp_path / "repo", bound))
        api = HttpClient(bound.url("/rpc/v1"), token=ADMIN_TOKEN)

        # -- refusals, before anything is sent ------------------------------------------------------
        secp_worker = await filpy(
            "miner", "create", "--owner", str(OWNER), "--worker", str(OWNER), "--sector-size", "2KiB"
        )
        assert "must be a BLS key" in error_line(secp_worker, "miner create")
        odd = await filpy(
            "miner", "create", "--owner", str(OWNER), "--worker", str(WORKER), "--sector-size", "4KiB"
        )
        assert (
            error_line(odd, "miner create")
            == "the devnet network takes sectors of 2KiB, 8MiB, 512MiB, not 4KiB"
        )
        none_yet = await filpy("miner", "sectors", "pledge")
        assert error_line(none_yet, "miner sectors pledge").startswith("this node seals for no miner")

        # -- create ----------------------------------------------------------------------------------
        ran = await filpy.mining(
            net.step,
            "miner", "create", "--owner", str(OWNER), "--worker", str(WORKER), "--sector-size", "2KiB",
            "--pledge", "100",
        )  # fmt: skip
        assert ran.code == 0, ran.err
        (record,) = net.node.miners.list()
        miner = record.id_address.to_string("t")
        assert ran.lines[-3].startswith("Pushed CreateMiner message: bafy")
        assert ran.lines[-2] == f"New miners address is: {miner} ({record.robust_address.to_string('t')})"
        assert ran.lines[-1] == "Sector size: 2KiB (seal proof 5)"
        assert "restart" not in ran.out  # served at once
        head = net.head
        actor = net.node.state.get_actor(record.id_address, head)
        assert actor.balance == 100 * FIL_PRECISION

        listed = await filpy("miner", "list")
        header, row = listed.table()
        assert header == ["Miner", "Robust address", "Owner", "Worker", "Sector size", "Sealing"]
        assert row == [miner, record.robust_address.to_string("t"), str(OWNER), str(WORKER), "2 KiB", "yes"]
        assert (await filpy("miner", "list", "--json")).json() == await api.call("Filpy.MinerList")

        # -- pledge, and the job seen running --------------------------------------------------------
        pledged = await filpy("miner", "sectors", "pledge")
        assert pledged.out == "Created CC sector: 0\n"
        (held,) = holds
        with trio.fail_after(WAIT):
            while not held.entered.is_set():
                await trio.sleep(0.01)
        jobs = await filpy("miner", "sealing", "jobs")
        header, job, _ = jobs.table()
        assert header == ["ID", "Miner", "Sector", "Task", "State", "Time", "Progress"]
        assert job[1:5] == [miner, "0", "PC1", "running"]
        assert jobs.lines[-1] == "1 job"
        as_json = (await filpy("miner", "sealing", "jobs", "--miner", miner, "--json")).json()
        assert [j["Task"] for j in as_json] == ["seal/v0/precommit/1"]
        assert as_json == await api.call("Filpy.SealingJobs", None)
        held.gate.set()

        # -- sealed, proven, with power ---------------------------------------------------------------
        pipeline = net.node.sealing[record.id_address]
        await net.run_until(lambda: pipeline.record(0).state == SectorState.PROVING, what="sector 0 proving")
        listed_sectors = await filpy("miner", "sectors", "list")
        header, *rows = listed_sectors.table()
        assert header == ["ID", "State", "OnChain", "Active", "Expiration", "Deals"]
        assert rows[0][:4] == ["0", "Proving", "YES", "YES"] and rows[0][5] == "CC"
        statuses = (await filpy("miner", "sectors", "list", "--json")).json()
        assert statuses == [await api.call("Filpy.SectorsStatus", miner, 0, True)]

        status = await filpy("miner", "sectors", "status", "0", "--log")
        fields = status.fields()
        tree = net.node.state.tree(net.node.state.state_of(net.head).state_root)
        on_chain = miner_queries.sector_info(tree, record.id_address, 0)
        assert on_chain is not None
        assert (fields["SectorID"], fields["Status"], fields["CIDcommR"]) == (
            "0",
            "Proving",
            str(on_chain.sealed_cid),
        )
        assert fields["SealProof"] == "5" and fields["Activation"].startswith(f"{on_chain.activation} (")
        assert "Sector On Chain Info" in status.out and "Event Log" in status.out
        assert "event;Proving" in status.out
        assert (await filpy("miner", "sectors", "status", "0", "--json")).json() == statuses[0]

        info = await filpy("miner", "info")  # the node's only miner
        fields = info.fields()
        power = miner_queries.miner_power(tree, DEVNET, record.id_address)
        assert fields["Miner"] == f"{miner} (2 KiB sectors)"
        assert (fields["Owner"], fields["Worker"]) == (
            net.node.state.lookup_id(OWNER, net.head).to_string("t"),
            net.node.state.lookup_id(WORKER, net.head).to_string("t"),
        )
        assert power.miner.raw_byte_power == 2048
        assert fields["Raw power"].startswith("2 KiB / ")
        assert fields["Sectors"] == "Proving: 1"
        keyed = (await filpy("miner", "info", miner, "--json")).json()
        assert keyed == {
            "StateMinerInfo": await api.call("StateMinerInfo", miner, []),
            "StateMinerPower": await api.call("StateMinerPower", miner, []),
            "StateMinerProvingDeadline": await api.call("StateMinerProvingDeadline", miner, []),
        }
        genesis_miner = Address.new_id(1000).to_string("t")
        assert (await filpy("miner", "info", genesis_miner)).fields()[
            "Miner"
        ] == f"{genesis_miner} (2 KiB sectors)"

        missing = await filpy("miner", "sectors", "status", "7")
        assert error_line(missing, "miner sectors status") == f"miner {miner}: no sector 7"
        unknown = await filpy("miner", "sectors", "seal", "7")
        assert error_line(unknown, "miner sectors seal") == f"miner {miner}: no sector 7"
        sealed = await filpy("miner", "sectors", "seal", "0")  # Proving: no longer open for deals
        assert error_line(sealed, "miner sectors seal") == (
            f"miner {miner}: sector 0 is Proving, not open for deals (WaitDeals)"
        )
        not_ours = await filpy("miner", "sectors", "list", "--miner", genesis_miner)
        assert (
            error_line(not_ours, "miner sectors list")
            == f"this node does not seal for {genesis_miner} (it seals for {miner})"
        )
        await api.aclose()
        services.cancel_scope.cancel()
