"""node/markets/paych_store.py: records round-trip through LevelDB and its memory twin, a change lands
whole or not at all, reopening keeps everything, and an unreadable record is named."""

from dataclasses import replace
from pathlib import Path

import pytest

from actors.paych.types import SignedVoucher
from chain.chainstore.metadata import LevelDBMetadata
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding.cid import CID
from chain.store.blockstore import LevelDBBlockstore
from chain.types.address import Address
from node.markets.paych_store import (
    PAYCH_NAMESPACE,
    ChannelRecord,
    MessageRecord,
    PaychStore,
    PaychStoreError,
    VoucherRecord,
    new_channel_id,
)
from node.markets.paych_types import Direction

PAYER = PrivateKey.derive(KeyType.SECP256K1, b"paych-store/payer")
CHANNEL = Address.new_actor(b"paych-store/channel")
MESSAGE = CID.hash_of(b"paych-store/create")


def _voucher(lane: int, nonce: int, amount: int) -> SignedVoucher:
    sv = SignedVoucher(CHANNEL, 0, 0, b"", None, lane, nonce, amount, 0)
    return replace(sv, signature=PAYER.sign(sv.signing_bytes()))


def _record(channel: Address | None = CHANNEL) -> ChannelRecord:
    return ChannelRecord(
        channel_id=new_channel_id(),
        channel=channel,
        control=Address.of_key(PAYER),
        target=Address.new_id(1234),
        direction=Direction.OUTBOUND,
        amount=7,
        create_msg=MESSAGE if channel is None else None,
    )


def _fill(store: PaychStore) -> ChannelRecord:
    rec = _record()
    with store.change() as change:
        change.put_channel(rec)
        change.put_voucher(rec.channel_id, VoucherRecord(_voucher(1, 2, 30), b"proof"))
        change.put_voucher(rec.channel_id, VoucherRecord(_voucher(0, 1, 10), submitted=True))
        change.put_voucher(rec.channel_id, VoucherRecord(_voucher(1, 1, 20)))
        change.put_message(MessageRecord(rec.channel_id, MESSAGE, received=True, error="boom"))
    return rec


def test_records_round_trip_in_memory() -> None:
    store = PaychStore.in_memory()
    rec = _fill(store)
    assert store.channel(rec.channel_id) == rec
    assert store.by_address(CHANNEL) == rec
    assert store.channels() == [rec]
    assert rec.from_ == Address.of_key(PAYER) and rec.to == Address.new_id(1234)
    # lane, then nonce order, whatever the order of writing
    assert [(v.voucher.lane, v.voucher.nonce, v.voucher.amount) for v in store.vouchers(rec.channel_id)] == [
        (0, 1, 10),
        (1, 1, 20),
        (1, 2, 30),
    ]
    held = store.voucher(rec.channel_id, _voucher(1, 2, 999))  # found by lane and nonce
    assert held is not None and held.proof == b"proof" and held.voucher.amount == 30
    assert store.message(MESSAGE) == MessageRecord(rec.channel_id, MESSAGE, True, "boom")
    assert store.message(CID.hash_of(b"other")) is None
    assert store.by_address(Address.new_id(99)) is None


def test_a_change_that_raises_lands_nothing() -> None:
    store = PaychStore.in_memory()
    rec = _record()
    with pytest.raises(RuntimeError, match="crash"), store.change() as change:
        change.put_channel(rec)
        change.put_voucher(rec.channel_id, VoucherRecord(_voucher(0, 1, 1)))
        raise RuntimeError("crash before the batch is written")
    assert store.channels() == [] and store.vouchers(rec.channel_id) == []


def test_removing_a_channel_removes_its_address_and_vouchers() -> None:
    store = PaychStore.in_memory()
    rec = _fill(store)
    other = _record(Address.new_actor(b"another channel"))
    with store.change() as change:
        change.put_channel(other)
        change.put_voucher(other.channel_id, VoucherRecord(_voucher(0, 1, 5)))
    with store.change() as change:
        change.remove_channel(rec)
    assert store.channel(rec.channel_id) is None and store.by_address(CHANNEL) is None
    assert store.vouchers(rec.channel_id) == []
    assert store.channels() == [other] and len(store.vouchers(other.channel_id)) == 1


def test_leveldb_store_survives_reopening(tmp_path: Path) -> None:
    with LevelDBBlockstore(tmp_path / "db") as blocks:
        rec = _fill(PaychStore(LevelDBMetadata(blocks.db, namespace=PAYCH_NAMESPACE)))
        pending = _record(channel=None)
        with (
            pytest.raises(RuntimeError),
            PaychStore(LevelDBMetadata(blocks.db, namespace=PAYCH_NAMESPACE)).change() as c,
        ):
            c.put_channel(pending)
            raise RuntimeError("lost")
    with LevelDBBlockstore(tmp_path / "db") as blocks:
        store = PaychStore(LevelDBMetadata(blocks.db, namespace=PAYCH_NAMESPACE))
        assert store.channels() == [rec]
        assert [v.submitted for v in store.vouchers(rec.channel_id)] == [True, False, False]
        assert store.message(MESSAGE) is not None


def test_an_unreadable_record_is_named() -> None:
    store = PaychStore.in_memory()
    rec = _fill(store)
    store._meta.put(b"c/" + rec.channel_id.encode(), b"\x82\x01\x02")  # [1, 2]: not a ChannelRecord
    with pytest.raises(PaychStoreError, match=f"record b'c/{rec.channel_id}' is unreadable: ChannelRecord"):
        store.channels()
