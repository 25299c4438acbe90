"""Messages after the fact: search_msg (execution tipset, receipt, lookback limit, replaced messages),
call and call_with_gas (applied on a copy, nothing kept), replay, and the per-tipset message
selection (a sender's nonce sequence across the blocks of a tipset)."""

from dataclasses import replace

import pytest

from actors.miner.types import GetControlAddressesReturn, MinerMethod
from chain.encoding import dagcbor
from chain.stmgr.actors import ActorNotFound
from chain.stmgr.chain import LOOKBACK_NO_LIMIT
from chain.stmgr.manager import MessageNotFound
from chain.stmgr.search import MessageReplaced, UnknownMessage
from chain.types.address import Address
from chain.types.message import SignedMessage, sign_message
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode
from tests.chain.messages import unpriced
from tests.consensus.devchain import ALICE, BOB, CAROL, DevChain

ALICE_ADDR, BOB_ADDR, CAROL_ADDR = Address.of_key(ALICE), Address.of_key(BOB), Address.of_key(CAROL)


class Scene:
    """A chain where a few messages landed at known tipsets."""

    def __init__(self) -> None:
        self.dc = DevChain.new()
        dc = self.dc
        dc.next_tipset()
        self.secp = dc.transfers(ALICE, CAROL_ADDR, 2, value=11)
        self.bls = dc.transfers(BOB, CAROL_ADDR, 1, value=13)[0]
        self.included = dc.next_tipset([*self.secp, self.bls])
        self.executed = dc.next_tipset()
        # alice's next message exists in two versions: the pool saw `original`, the chain got `bumped`
        (self.original,) = dc.transfers(ALICE, CAROL_ADDR, 1, value=17)
        self.bumped = sign_message(replace(self.original.message, gas_premium=2_000), ALICE)
        dc.store.put(self.original.cid(), self.original.to_bytes())
        self.replaced_in = dc.next_tipset([self.bumped])
        for _ in range(5):
            dc.next_tipset()
        # a message that no block carried
        (self.pending,) = dc.transfers(CAROL, ALICE_ADDR, 1)
        dc.store.put(self.pending.cid(), self.pending.to_bytes())


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene()


def child_of(dc: DevChain, ts: TipSet) -> TipSet:
    cur = dc.head
    while cur.parents != ts.key:
        cur = dc.chain.load_tipset(cur.parents)
    return cur


def test_search_finds_the_execution_tipset(scene: Scene) -> None:
    dc = scene.dc
    applied = [m.cid() for m in dc.sm.messages_for_tipset(scene.included)]
    for msg in [*scene.secp, scene.bls]:
        cid = msg.message.cid() if msg is scene.bls else msg.cid()
        found = dc.sm.search_msg(dc.head, cid)
        assert found is not None
        assert found.message == cid and found.tipset == scene.executed == child_of(dc, scene.included)
        assert found.height == scene.executed.height
        assert found.receipt == dc.sm.state_of(scene.included).receipts[applied.index(cid)]
        assert found.receipt.exit_code == 0


def test_search_from_the_execution_tipset_and_limits(scene: Scene) -> None:
    dc = scene.dc
    cid = scene.secp[0].cid()
    direct = dc.sm.search_msg(scene.executed, cid)
    assert direct is not None and direct.tipset == scene.executed
    # from a tipset before the execution, the message is not executed yet
    assert dc.sm.search_msg(scene.included, cid) is None
    distance = dc.head.height - scene.executed.height
    assert dc.sm.search_msg(dc.head, cid, limit=distance) is None
    assert dc.sm.search_msg(dc.head, cid, limit=distance + 1) is not None
    assert dc.sm.search_msg(dc.head, cid, limit=LOOKBACK_NO_LIMIT) is not None


def test_search_pending_and_unknown(scene: Scene) -> None:
    dc = scene.dc
    assert dc.sm.search_msg(dc.head, scene.pending.cid()) is None
    (never,) = dc.transfers(CAROL, ALICE_ADDR, 1, start=99)
    with pytest.raises(UnknownMessage, match="cannot search"):
        dc.sm.search_msg(dc.head, never.cid())


def test_search_replaced(scene: Scene) -> None:
    dc = scene.dc
    found = dc.sm.search_msg(dc.head, scene.original.cid(), allow_replaced=True)
    assert found is not None and found.message == scene.bumped.cid()
    assert found.tipset == child_of(dc, scene.replaced_in)
    with pytest.raises(MessageReplaced, match="replaced by"):
        dc.sm.search_msg(dc.head, scene.original.cid(), allow_replaced=False)
    # a different call at the same nonce is never a replacement
    other = sign_message(replace(scene.original.message, value=999), ALICE)
    dc.store.put(other.cid(), other.to_bytes())
    with pytest.raises(MessageReplaced, match="different message"):
        dc.sm.search_msg(dc.head, other.cid())


def test_call_changes_nothing(scene: Scene) -> None:
    dc = scene.dc
    before = len(dc.store)  # type: ignore[arg-type]
    root = dc.sm.state_of(dc.head).state_root
    msg = unpriced(CAROL_ADDR, ALICE_ADDR, value=5)
    result = dc.sm.call(msg, dc.head)
    assert result.receipt.exit_code == 0 and result.error is None
    assert result.message.nonce == dc.sm.get_actor(ALICE_ADDR, dc.head).nonce  # the sender's nonce
    assert result.message.gas_limit == 10_000_000_000  # a zero limit means the block gas limit
    assert len(dc.store) == before  # type: ignore[arg-type]
    assert dc.sm.state_of(dc.head).state_root == root


def test_call_returns_what_the_actor_returns(scene: Scene) -> None:
    dc = scene.dc
    miner = dc.miners[0]
    msg = unpriced(miner.id_address, ALICE_ADDR, method=MinerMethod.ControlAddresses)
    result = dc.sm.call(msg, dc.head)
    assert result.receipt.exit_code == 0
    ret = GetControlAddressesReturn.from_cbor(dagcbor.decode(result.receipt.return_data))
    assert ret.worker == dc.sm.lookup_id(Address.of_key(miner.worker_key), dc.head)
    bad = dc.sm.call(replace(msg, method=9999), dc.head)
    assert bad.receipt.exit_code == ExitCode.ErrUnhandledMessage and bad.error
    with pytest.raises(ActorNotFound):
        dc.sm.call(replace(msg, from_=Address.new_id(7777)), dc.head)


def test_call_with_gas_on_the_state_after_the_tipset(scene: Scene) -> None:
    """The message pool's gas estimation: real messages (nonces, gas) on the state after ts."""
    dc = scene.dc
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)  # the nonce after the head
    ret = dc.sm.call_with_gas(msg, [], dc.head)
    assert ret.exit_code == 0 and ret.receipt.gas_used > 0 and ret.gas_costs.base_fee_burn > 0
    prior = dc.transfers(ALICE, CAROL_ADDR, 2)
    (after,) = dc.transfers(ALICE, CAROL_ADDR, 1, start=prior[-1].message.nonce + 1)
    assert dc.sm.call_with_gas(after, prior, dc.head).exit_code == 0
    # without the pending messages before it, its nonce is not the sender's
    assert dc.sm.call_with_gas(after, [], dc.head).exit_code == ExitCode.SysErrSenderStateInvalid


def test_replay(scene: Scene) -> None:
    dc = scene.dc
    receipts = dc.sm.state_of(scene.included).receipts
    for i, msg in enumerate(dc.sm.messages_for_tipset(scene.included)):
        found, ret = dc.sm.replay(scene.included, msg.cid())
        assert found == msg and ret.receipt == receipts[i]
    with pytest.raises(MessageNotFound):
        dc.sm.replay(scene.included, scene.pending.cid())


def test_tipset_messages_follow_each_senders_nonces() -> None:
    """Two blocks of one tipset: the second carries alice's next messages and a conflicting duplicate
    of one already applied; only the nonce sequence is applied, once."""
    dc = DevChain.new()
    dc.next_tipset()
    first, second, third = dc.transfers(ALICE, CAROL_ADDR, 3)
    conflicting = sign_message(replace(first.message, value=12345), ALICE)
    for epoch in range(dc.head.height + 1, dc.head.height + 20):
        a = dc.produce(dc.miners[0].id_address, epoch, messages=[first, second])
        b = dc.produce(dc.miners[1].id_address, epoch, messages=[conflicting, second, third])
        if a is not None and b is not None:
            break
    else:
        raise AssertionError("no epoch where both miners win")
    ts = dc.apply([a, b])
    applied = dc.sm.messages_for_tipset(ts)
    order = {blk.cid(): i for i, blk in enumerate(ts.blocks)}
    if order[a.cid()] == 0:
        assert applied == [first, second, third]
    else:
        assert applied == [conflicting, second, third]
    assert len(dc.sm.state_of(ts).receipts) == 3
    assert all(r.exit_code == 0 for r in dc.sm.state_of(ts).receipts)


def test_id_address_senders_share_the_sequence() -> None:
    """Once a message names its sender by ID, every sender is keyed by ID (Lotus BlockMsgsForTipset):
    alice's messages by key address and by ID address form one sequence."""
    dc = DevChain.new()
    dc.next_tipset()
    alice_id = dc.sm.lookup_id(ALICE_ADDR, dc.head)
    by_key, by_id_dup, by_id_next = dc.transfers(ALICE, CAROL_ADDR, 3)
    dup = sign_message(replace(by_id_dup.message, from_=alice_id, nonce=by_key.message.nonce), ALICE)
    nxt = sign_message(replace(by_id_next.message, from_=alice_id, nonce=by_key.message.nonce + 1), ALICE)
    parent = dc.head
    block = next(
        blk
        for epoch in range(parent.height + 1, parent.height + 20)
        for miner in dc.miners
        if (blk := dc.produce(miner.id_address, epoch, messages=[by_key, dup, nxt])) is not None
    )
    ts = TipSet((block.header,))
    dc.chain.put_tipset(ts)
    assert dc.sm.messages_for_tipset(ts) == [by_key, nxt]
    assert isinstance(by_key, SignedMessage)
