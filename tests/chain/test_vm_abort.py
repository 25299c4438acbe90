"""Machine failures (memory, recursion, the store) abort execution and change nothing; an actor's own
programming error stays a deterministic SysErrIllegalInstruction receipt."""

from collections.abc import Iterable, Iterator

import pytest

from actors.cron.types import CronEntry
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.state.tree import StateTree
from chain.store.blockstore import MemoryBlockstore, get_cbor
from chain.types.address import Address
from chain.vm.abort import ExecutionAborted, MissingBlock, StoreFailed
from chain.vm.exitcode import ExitCode
from chain.vm.tipset_apply import BlockMessages, ImplicitMessageFailed
from tests.chain.vm_helpers import (
    FIL,
    RelayParams,
    World,
    expect_exit,
    make_world,
)

EXHAUST_MEMORY, RECURSE_IN_PYTHON, READ_STATE, VERIFY_SIGNATURE = 10, 11, 12, 13
TICKER = Address.new_id(103)  # the first actor made after make_world's three accounts


class FlakyStore:
    """A blockstore whose reads of chosen blocks fail as a broken disk's would."""

    def __init__(self, inner: MemoryBlockstore) -> None:
        self.inner = inner
        self.broken: set[CID] = set()

    def get(self, cid: CID) -> bytes | None:
        if cid in self.broken:
            raise OSError(5, "Input/output error")
        return self.inner.get(cid)

    def put(self, cid: CID, data: bytes) -> None:
        self.inner.put(cid, data)

    def has(self, cid: CID) -> bool:
        return self.inner.has(cid)

    def delete(self, cid: CID) -> None:
        self.inner.delete(cid)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.inner.put_many(blocks)


def state_roots(store: MemoryBlockstore) -> Iterator[CID]:
    """Every block of the store that is a state root ([5, actors HAMT, info])."""
    for cid, data in store.items():
        raw = dagcbor.decode(data)
        if type(raw) is list and len(raw) == 3 and raw[0] == 5 and all(type(x) is CID for x in raw[1:]):
            yield cid


def probe_value(world: World, probe: Address) -> int:
    value: int = get_cbor(world.store, world.tree.get_actor(probe).head)[0]  # type: ignore[union-attr]
    return value


def aborts(world: World, method: int, *, to: Address, params: bytes = b"") -> ExecutionAborted:
    root = world.tree.flush()
    sender_before = world.tree.get_actor(world.ids[0])
    with pytest.raises(ExecutionAborted) as info:
        world.vm().apply_message(world.message(0, to, method=method, params=params))
    # Nothing happened: no escrow taken, no nonce used, no actor state kept.
    assert world.tree.snapshot_depth == 0
    assert world.tree.get_actor(world.ids[0]) == sender_before
    assert world.tree.flush() == root
    return info.value


def test_programming_error_in_an_actor_stays_an_illegal_instruction_receipt() -> None:
    world = make_world()
    probe = world.add_probe()
    ret = world.vm().apply_message(world.message(0, probe, method=5))
    expect_exit(ret.exit_code, ExitCode.SysErrIllegalInstruction)
    assert "ZeroDivisionError" in (ret.error or "")
    assert world.nonce(world.ids[0]) == 1  # a receipt: the message counted and paid for gas


@pytest.mark.parametrize(
    ("method", "failure"), [(EXHAUST_MEMORY, "MemoryError"), (RECURSE_IN_PYTHON, "RecursionError")]
)
def test_resource_exhaustion_aborts_the_message(method: int, failure: str) -> None:
    world = make_world()
    probe = world.add_probe()
    error = aborts(world, method, to=probe)
    assert failure in str(error) and "aborted, nothing applied" in str(error)
    assert probe_value(world, probe) == 0  # the 777 / 888 the method wrote is gone


@pytest.mark.parametrize("method", [EXHAUST_MEMORY, RECURSE_IN_PYTHON])
def test_exhaustion_in_a_nested_send_is_not_a_failed_send(method: int) -> None:
    """rt.send returns a callee's failure to its caller as an exit code; a machine failure must not
    be one, or the caller would go on and commit a state other nodes do not compute."""
    world = make_world()
    relay, target = world.add_probe(), world.add_probe()
    params = dagcbor.encode(RelayParams(target, method, b"", 0).to_cbor())
    aborts(world, 2, to=relay, params=params)


def test_a_block_missing_from_the_store_aborts() -> None:
    world = make_world()
    probe = world.add_probe()
    world.tree.flush()
    head = world.tree.get_actor(probe).head  # type: ignore[union-attr]
    world.store.delete(head)
    error = aborts(world, READ_STATE, to=probe)
    assert isinstance(error.__cause__, MissingBlock) and error.__cause__.cid == head


def test_a_block_missing_under_a_signer_aborts_the_signature_check() -> None:
    """verify_signature reads the signer's account state for its key: a missing block there is the
    store's failure, not an unknown signer (which would be ErrIllegalArgument)."""
    world = make_world()
    probe = world.add_probe()
    signer = world.ids[1]
    data = b"signed by account 1"
    args = [signer.to_bytes(), world.keys[1].sign(data).to_bytes(), data]
    ret = world.vm().apply_message(
        world.message(0, probe, method=VERIFY_SIGNATURE, params=dagcbor.encode(args))
    )
    assert ret.exit_code == 0 and dagcbor.decode(ret.receipt.return_data) is True
    world.tree.flush()
    world.store.delete(world.tree.get_actor(signer).head)  # type: ignore[union-attr]
    error = aborts(world, VERIFY_SIGNATURE, to=probe, params=dagcbor.encode(args))
    assert "BlockNotFound" in str(error)


def test_a_failing_store_read_aborts() -> None:
    world = make_world()
    probe = world.add_probe()
    root = world.tree.flush()
    flaky = FlakyStore(world.store)
    world.tree = StateTree.load(flaky, root)  # type: ignore[arg-type]
    flaky.broken.add(world.tree.get_actor(probe).head)  # type: ignore[union-attr]
    error = aborts(world, READ_STATE, to=probe)
    assert isinstance(error.__cause__, StoreFailed) and "Input/output error" in str(error)
    flaky.broken.clear()
    ret = world.vm().apply_message(world.message(0, probe, method=READ_STATE))
    assert ret.exit_code == 0 and dagcbor.decode(ret.receipt.return_data) == 0


def ticker_world() -> World:
    world = make_world(cron_entries=(CronEntry(TICKER, 9),))
    assert world.add_probe() == TICKER
    world.tree.flush()
    return world


def test_exhaustion_aborts_the_whole_tipset_and_flushes_nothing() -> None:
    world = ticker_world()
    probe = world.add_probe()
    parent = world.tree.flush()
    roots_before = set(state_roots(world.store))
    good = world.message(0, world.addresses[1], value=FIL, nonce=0)
    bad = world.message(1, probe, method=EXHAUST_MEMORY, nonce=0)
    # Epochs 1 and 2 are null rounds whose crons run (and tick) before the block's messages.
    with pytest.raises(ExecutionAborted, match="MemoryError"):
        world.apply_tipset(0, 3, [BlockMessages(world.ids[2], secpk_messages=[good, bad])])
    assert world.tree.snapshot_depth == 0
    assert world.tree.flush() == parent
    assert set(state_roots(world.store)) == roots_before  # no null round's state was flushed
    assert get_cbor(world.store, world.tree.get_actor(TICKER).head) == [0]  # type: ignore[union-attr]

    # The same tree then applies the tipset without the bad message exactly as a fresh node does.
    root = world.apply_tipset(0, 3, [BlockMessages(world.ids[2], secpk_messages=[good])]).state_root
    fresh = ticker_world()
    fresh.add_probe()
    fresh_good = fresh.message(0, fresh.addresses[1], value=FIL, nonce=0)
    assert fresh_good == good
    again = fresh.apply_tipset(0, 3, [BlockMessages(fresh.ids[2], secpk_messages=[fresh_good])])
    assert again.state_root == root


def test_a_failing_reward_leaves_the_tree_at_the_parent_state() -> None:
    world = ticker_world()
    parent = world.tree.flush()
    msg = world.message(0, world.addresses[1], value=FIL)
    with pytest.raises(ImplicitMessageFailed):
        world.apply_tipset(0, 1, [BlockMessages(Address.new_id(9999), secpk_messages=[msg])])
    assert world.tree.flush() == parent
