"""A node with a sealing pipeline in its own process, for the kill -9 test (tests/sealing/test_kill.py).

`python -m tests.sealing.sealing_node REPO` opens (or makes) the devnet in REPO on disk (LevelDB
datastore, keystore, sectors: tests/sealing/devnet.py's Devnet.open), creates a 2 KiB miner the first
time (recorded in the local miners list, as `filpy miner create` does) and pledges sector 0, or takes up
the recorded miner and its sectors after a restart; then it mines, runs the genesis miner's Window PoSt
scheduler and the sealing pipeline until sector 0 is Proving, and exits 0.

It writes one JSON line per sector transition to stdout ({"sector": n, "state": ...}) and appends a line
to REPO/seals.log (fsync'ed) each time a sector is really sealed (not found finished on disk), so that
the test can kill it at a chosen state and count the seals across runs.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

from node.logs import configure
from node.sealing.pipeline import SealingPipeline
from node.sealing.states import SectorState
from tests.sealing.devnet import Devnet, fast_config


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def main(root: Path) -> None:
    net = Devnet.open(root)
    async with net.running() as nursery:
        recorded = net.miners.list()
        miner = recorded[0].id_address if recorded else (await net.create_miner()).id_address
        _emit({"miner": miner.to_string()})
        pipeline: SealingPipeline = net.pipeline(miner, config=fast_config())
        real_seal = pipeline.sealer.seal_sector

        def logged_seal(*args: Any, **kwargs: Any) -> Any:
            out = real_seal(*args, **kwargs)
            if not out.adopted:
                with (root / "seals.log").open("a") as log:
                    log.write(f"sector {args[1]}\n")
                    log.flush()
                    os.fsync(log.fileno())
            return out

        pipeline.sealer.seal_sector = logged_seal  # type: ignore[method-assign]
        changes = pipeline.subscribe()

        async def report() -> None:
            async for change in changes:
                _emit({"sector": change.number, "state": change.new})

        nursery.start_soon(report)
        await net.start(nursery, pipeline)
        if not pipeline.sectors_list():
            await pipeline.pledge_sector()
        _emit({"resumed": {str(n): pipeline.record(n).state for n in pipeline.sectors_list()}})
        await net.run_until(lambda: pipeline.record(0).state == SectorState.PROVING, epochs=200)
        _emit({"done": pipeline.record(0).state})
        nursery.cancel_scope.cancel()
    net.node.chain.close()


if __name__ == "__main__":
    configure(level="info")  # logs to stderr: stdout carries the JSON lines
    trio.run(main, Path(sys.argv[1]))
