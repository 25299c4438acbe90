"""The beacon of a running `filpy devnet` over JSON-RPC (issue 12): a new devnet runs its own drand
chain by default, and StateGetBeaconEntry (/rpc/v1) and BeaconGetEntry (/rpc/v0) serve its rounds: each
epoch's entry is a round signed over sha256(previous signature || round) by the key in the repo's
drand.json (checked here with blspy, from round 0 the genesis commits to), the same entry the epoch's
block carries; an epoch whose round has not been produced is an RPC error. With `--beacon mock` the
entries are Lotus's mock (computable by anyone, also for future epochs).

Every process is stopped by its PID, also when a test fails."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from chain.consensus.beacon import MockBeacon
from chain.consensus.drand import public_key_point, signature_verifies
from chain.types.beacon import BeaconEntry
from node.beacon.setup import read_chain_info
from rpc.client import HttpClient, RpcCallError, endpoint_from_multiaddr
from tests.e2e.devnet_process import DevnetProcess

pytestmark = pytest.mark.slow

HEIGHT: Final = 4
WAIT: Final = 60.0
FAR: Final = 10_000  # epochs above the head: a round nobody has produced yet


@pytest.fixture
def devnets() -> Iterator[list[DevnetProcess]]:
    started: list[DevnetProcess] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.kill()


async def entries_up_to_height(devnet: DevnetProcess) -> tuple[Any, dict[int, BeaconEntry]]:
    """The head once it is at HEIGHT or above, and each epoch's entry from both API versions (equal)."""
    token = (devnet.repo / "token").read_text().strip()
    api_file = (devnet.repo / "api").read_text()
    v1 = HttpClient(endpoint_from_multiaddr(api_file), token=token)
    v0 = HttpClient(endpoint_from_multiaddr(api_file, api="v0"), token=token)
    async with v1, v0:
        with trio.fail_after(WAIT):
            while (head := await v1.call("ChainHead"))["Height"] < HEIGHT:
                await trio.sleep(0.5)
        entries = {}
        for epoch in range(1, head["Height"] + 1):
            latest = await v1.call("StateGetBeaconEntry", epoch)
            assert await v0.call("BeaconGetEntry", epoch) == latest
            entries[epoch] = BeaconEntry.from_json(latest)
            tipset = await v1.call("ChainGetTipSetByHeight", epoch, None)
            if tipset["Height"] == epoch:  # not a null round: its blocks carry the entry
                for block in tipset["Blocks"]:
                    assert block["BeaconEntries"][-1] == latest
        return head, entries


async def test_a_devnet_serves_its_drand_rounds(tmp_path: Path, devnets: list[DevnetProcess]) -> None:
    devnet = DevnetProcess(tmp_path / "repo", "--block-delay", "1")
    devnets.append(devnet)
    url = devnet.wait_ready()
    assert "drand, chain" in devnet.output() and "produced by this node" in devnet.output()
    head, entries = await entries_up_to_height(devnet)

    info = read_chain_info(devnet.repo / "drand.json")
    key = public_key_point(info.public_key)
    assert info.period == 1
    previous = info.genesis_entry  # round 0: the group hash the genesis block carries
    async with devnet.client(url) as api:
        genesis = await api.call("ChainGetGenesis")
        assert BeaconEntry.from_json(genesis["Blocks"][0]["BeaconEntries"][-1]) == previous
        for epoch in sorted(entries):
            entry = entries[epoch]
            assert entry.round == epoch  # one round per epoch, from the Filecoin genesis time
            assert signature_verifies(key, entry.round, previous.data, entry.data)
            assert not signature_verifies(key, entry.round + 1, previous.data, entry.data)
            previous = entry
        with pytest.raises(RpcCallError, match="beacon entry of epoch"):
            await api.call("StateGetBeaconEntry", head["Height"] + FAR)


async def test_a_mock_devnet_serves_lotus_mock_entries(tmp_path: Path, devnets: list[DevnetProcess]) -> None:
    devnet = DevnetProcess(tmp_path / "repo", "--block-delay", "1", "--beacon", "mock")
    devnets.append(devnet)
    url = devnet.wait_ready()
    assert "mock (Lotus's" in devnet.output() and not (devnet.repo / "drand.json").exists()
    head, entries = await entries_up_to_height(devnet)
    mock = MockBeacon()
    for epoch, entry in entries.items():
        assert entry == mock.entry(mock.max_beacon_round_for_epoch(epoch))
    async with devnet.client(url) as api:
        future = head["Height"] + FAR
        expected = mock.entry(mock.max_beacon_round_for_epoch(future))
        assert BeaconEntry.from_json(await api.call("StateGetBeaconEntry", future)) == expected
