"""The provider stopped where it stands (its tasks cancelled, no clean-up, as a killed process leaves
them) and started again over the same LevelDB: every deal resumes from its recorded state. A transfer
cut by the stop resumes from the bytes on disk; a deal whose publish message went out just before the
stop, unrecorded, is found in the pool or on chain and never published twice."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import plyvel
import pytest
import trio

from actors import builtin
from actors.market.types import MarketMethod, PublishStorageDealsParams
from chain.chainstore.metadata import LevelDBMetadata
from node.markets.deal_states import StorageDealStatus as S
from tests.markets.deal_net import WAIT, DealNet, FakeSealer, FirstResponseCut, deal_file, deal_net

pytestmark = pytest.mark.slow


@contextmanager
def leveldb(path: Path) -> Iterator[LevelDBMetadata]:
    db = plyvel.DB(str(path), create_if_missing=True)
    try:
        yield LevelDBMetadata(db, namespace=b"/markets/", sync=True)
    finally:
        db.close()


def publish_messages(net: DealNet) -> list[PublishStorageDealsParams]:
    """Every PublishStorageDeals on the chain, oldest first."""
    return [
        PublishStorageDealsParams.from_bytes(m.params)
        for m in net.chain_messages()
        if m.to == builtin.STORAGE_MARKET_ACTOR_ADDR and m.method == MarketMethod.PublishStorageDeals
    ]


async def start(net: DealNet, path: Path) -> Any:
    return await net.start_deal(net.import_file(deal_file(path)))


async def test_a_transfer_cut_by_a_restart_resumes(tmp_path: Path) -> None:
    class HoldingDataApp(FirstResponseCut):
        """The first response stops after 600 bytes and hangs until released."""

        def __init__(self) -> None:
            super().__init__(600)
            self.held = trio.Event()
            self.release = trio.Event()

        async def after_cut(self) -> None:
            self.held.set()
            await self.release.wait()

    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    reopened = None
    try:
        data = HoldingDataApp()
        net = deal_net(
            tmp_path, provider_meta=LevelDBMetadata(db, namespace=b"/markets/", sync=True), data_app=data
        )
        async with net.running() as nursery:
            proposal = await start(net, tmp_path / "file")
            with trio.fail_after(WAIT):
                await data.held.wait()
            partial = tmp_path / "provider" / "deal-staging"
            await net.until(lambda: any(p.stat().st_size == 600 for p in partial.glob("*.partial")))
            net.stop_provider()
            data.release.set()
            (record,) = net.provider.deals()
            assert record.state == S.StorageDealTransferring
            db.close()  # the process is gone, and its database with it
            reopened = plyvel.DB(str(tmp_path / "db"))
            await net.restart_provider(nursery, LevelDBMetadata(reopened, namespace=b"/markets/", sync=True))
            await net.deal_reaches(proposal, S.StorageDealStaged)
    finally:
        db.close()
        if reopened is not None:
            reopened.close()
    assert data.requests == [None, "bytes=600-"]
    sealer = net.sealer
    assert isinstance(sealer, FakeSealer) and len(sealer.added) == 1


@pytest.mark.parametrize("landed", [False, True], ids=["in-the-pool", "on-chain"])
async def test_a_publication_sent_but_not_recorded_is_adopted(tmp_path: Path, landed: bool) -> None:
    with leveldb(tmp_path / "db") as meta:
        net = deal_net(tmp_path, provider_meta=meta)
        async with net.running() as nursery:
            provider = net.provider
            assert provider._publisher is not None
            original = provider._publisher.publish
            sent = trio.Event()

            async def publish_then_die(deal: Any) -> Any:
                await original(deal)  # the message is in the pool ...
                net.mining = landed
                sent.set()
                await trio.sleep_forever()  # ... and the process dies before it records it

            provider._publisher.publish = publish_then_die  # type: ignore[method-assign]
            proposal = await start(net, tmp_path / "file")
            with trio.fail_after(WAIT):
                await sent.wait()
            if landed:
                await net.until(lambda: len(publish_messages(net)) == 1)
            net.stop_provider()
            (record,) = net.provider.deals()
            assert record.state == S.StorageDealPublish and record.publish_cid is None
            await net.restart_provider(nursery, meta)
            net.mining = True
            await net.deal_reaches(proposal, S.StorageDealStaged)
            (adopted,) = net.provider.deals()
            words = "found on chain" if landed else "found in the pool"
            assert any(words in e.message for e in adopted.events)
    published = publish_messages(net)
    assert len(published) == 1 and len(published[0].deals) == 1
