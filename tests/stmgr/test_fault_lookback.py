"""Consensus faults judged with the worker key of the offending blocks' height, on a real devnet chain.

The state manager hands the VM the chain's lookback states (StateManager.lookback_states): the
consensus-fault syscall reads the miner's worker in the state an election at each block's height looks
back to, as Lotus does, instead of the state the report executes on. A miner that changes its worker
after signing two blocks at one height is still convicted by those blocks, and the same blocks signed
by the new key prove nothing.
"""

from dataclasses import replace
from typing import Final

import pytest

from actors.dispatch import encode_params
from actors.miner.types import ChangeWorkerAddressParams, MinerMethod, ReportConsensusFaultParams
from chain.consensus.fullblock import FullBlock
from chain.crypto.keys import KeyType, PrivateKey
from chain.params import DEVNET
from chain.stmgr.manager import NoLookbackState
from chain.types.address import Address
from chain.types.message import SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode
from tests.consensus.devchain import ALICE, CAROL, DevChain, resigned

# A short worker change, so that the change lands within finality of the blocks it follows.
POLICY: Final = replace(DEVNET, worker_key_change_delay=4)
NEW_WORKER: Final = PrivateKey.derive(KeyType.BLS, b"fault-lookback/new-worker")
REPORT_GAS: Final = 200_000_000


def receipt_of(dc: DevChain, msg: SignedMessage) -> MessageReceipt:
    found = dc.sm.search_msg(dc.head, msg.cid())
    assert found is not None, f"message {msg.cid()} did not execute"
    return found.receipt


def double_blocks(dc: DevChain, miner: Address) -> tuple[FullBlock, FullBlock]:
    """The miner's two valid blocks at the next epoch it wins (one empty, one with a transfer); the
    first and the other miners' blocks of that epoch become the head."""
    head = dc.head
    posts = [m for p in dc.miners if (m := dc.post_message(p)) is not None]
    extra = dc.signed(ALICE, Address.of_key(CAROL), value=1)
    for epoch in range(head.height + 1, head.height + 30):
        first = dc.produce(miner, epoch, parent=head, messages=posts)
        if first is None:
            continue
        second = dc.produce(miner, epoch, parent=head, messages=[*posts, extra])
        assert second is not None and second.header.cid() != first.header.cid()
        dc.validate(second)  # a valid block too, never part of the chain
        others = [b for m in dc.online - {miner} if (b := dc.produce(m, epoch, parent=head, messages=posts))]
        dc.apply([first, *others])
        return first, second
    raise AssertionError(f"{miner} won no epoch after {head.height}")


def test_a_worker_changed_after_the_blocks_still_convicts_with_the_old_key() -> None:
    dc = DevChain.new(policy=POLICY)
    offender, honest = dc.miners
    new_worker = Address.of_key(NEW_WORKER)
    dc.next_tipset([dc.signed(ALICE, new_worker, value=10**18)])  # the new worker's account
    change = ChangeWorkerAddressParams(new_worker, ())
    dc.next_tipset(
        [
            dc.signed(
                offender.owner_key,
                offender.id_address,
                method=MinerMethod.ChangeWorkerAddress,
                params=encode_params(change),
            )
        ]
    )
    changed_at = dc.head.height
    first, second = double_blocks(dc, offender.id_address)
    assert first.header.height > changed_at

    dc.online = {honest.id_address}  # the offender stays out of what follows
    while dc.head.height + 1 < changed_at + POLICY.worker_key_change_delay:
        dc.next_tipset()
    confirm = MinerMethod.ConfirmUpdateWorkerKey
    dc.next_tipset([dc.signed(offender.owner_key, offender.id_address, method=confirm)])
    dc.next_tipset()
    worker_now = dc.sm.account_key(dc.sm.miner_info(offender.id_address, dc.head).worker, dc.head)
    assert worker_now == new_worker  # the state the report executes on names the new worker

    # The same two blocks, signed by the new key, and then as the old key signed them.
    forged = [resigned(b, NEW_WORKER) for b in (first, second)]
    claims = [(forged[0].header, forged[1].header), (first.header, second.header)]
    reports = [
        dc.signed(
            CAROL,
            offender.id_address,
            method=MinerMethod.ReportConsensusFault,
            params=encode_params(ReportConsensusFaultParams(a.to_bytes(), b.to_bytes(), b"")),
            nonce=dc.nonce(Address.of_key(CAROL)) + i,
            gas_limit=REPORT_GAS,
        )
        for i, (a, b) in enumerate(claims)
    ]
    dc.next_tipset(reports)
    dc.next_tipset()
    assert dc.head.height - POLICY.chain_finality <= first.header.height  # still within finality
    refused, convicted = (receipt_of(dc, r) for r in reports)
    assert refused.exit_code == ExitCode.ErrIllegalArgument
    assert convicted.exit_code == ExitCode.Ok
    info = dc.sm.miner_info(offender.id_address, dc.head)
    assert info.consensus_fault_elapsed > dc.head.height - 2


def test_lookback_states_follow_the_chain_and_refuse_the_future() -> None:
    dc = DevChain.new()
    dc.advance(POLICY.chain_finality + 5)
    head = dc.head
    states = dc.sm.lookback_states(head)
    for round_ in (1, POLICY.chain_finality, head.height, head.height + 3):
        _, root = dc.sm.lookback(head, round_)
        assert states(round_).flush() == root
    with pytest.raises(NoLookbackState, match="not below the tipset"):
        states(head.height + POLICY.chain_finality)
    genesis_states = dc.sm.lookback_states(TipSet((dc.genesis.header,)))
    with pytest.raises(NoLookbackState):
        genesis_states(1)
