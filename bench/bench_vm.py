"""VM throughput: signed transfers applied per second (signature checks included) and state flush time.

A state with many funded secp256k1 accounts; a batch of signed transfers between them, decoded from
their wire bytes as a syncing node would get them. Each message's signature is checked against its
sender's key address, then the message is applied; after the batch the state is flushed. Target:
>= 2,000 transfers/s on one core.
"""

import time
from typing import Final

from actors import builtin
from bench.accounts import bench_vm, funded_state
from bench.common import report, section
from chain.crypto.keys import KeyType, PrivateKey
from chain.state.tree import StateTree
from chain.store.blockstore import MemoryBlockstore
from chain.types.address import Address
from chain.types.message import Message, SignedMessage, sign_message

SENDERS: Final = 500
MESSAGES: Final = 4000
TARGET: Final = 2000.0
FIL: Final = 10**18


def _setup() -> tuple[StateTree, list[PrivateKey], list[Address]]:
    """The system and init actors, actors to receive burns and tips, and SENDERS funded accounts."""
    keys = [PrivateKey.derive(KeyType.SECP256K1, f"bench-{i}".encode()) for i in range(SENDERS)]
    tree = funded_state(
        MemoryBlockstore(),
        keys,
        1_000_000 * FIL,
        empty_accounts=(builtin.REWARD_ACTOR_ADDR, builtin.BURNT_FUNDS_ACTOR_ADDR),
    )
    return tree, keys, [Address.of_key(key) for key in keys]


def _messages(keys: list[PrivateKey], addresses: list[Address]) -> list[SignedMessage]:
    out = []
    for n in range(MESSAGES):
        sender = n % SENDERS
        msg = Message(
            to=addresses[(sender * 7 + 1) % SENDERS],
            from_=addresses[sender],
            nonce=n // SENDERS,
            value=1000 + n,
            gas_limit=1_000_000,
            gas_fee_cap=10_000,
            gas_premium=1_000,
            method=0,
        )
        out.append(sign_message(msg, keys[sender]))
    # As received from the network: nothing cached but the bytes.
    return [SignedMessage.from_bytes(m.to_bytes()) for m in out]


def run() -> None:
    section("VM: signed secp256k1 transfers (signature check + apply), state flush")
    tree, keys, addresses = _setup()
    batch = _messages(keys, addresses)
    vm = bench_vm(tree, 1)
    start = time.perf_counter()
    failed = 0
    for smsg in batch:
        smsg.verify_signature(smsg.message.from_)
        if vm.apply_message(smsg).exit_code != 0:
            failed += 1
    elapsed = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"{failed} of {len(batch)} transfers failed")
    rate = len(batch) / elapsed
    report(
        "transfers applied", rate, "msgs/s", f"target >= {TARGET:,.0f}, {len(batch)} msgs, {SENDERS} senders"
    )
    start = time.perf_counter()
    tree.flush()
    flush = time.perf_counter() - start
    report("state flush after the batch", flush * 1000, "ms", f"{SENDERS + 2} dirty actors")
