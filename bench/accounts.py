"""A state of funded accounts for the benchmarks that apply or pool messages."""

from collections.abc import Sequence

from actors import builtin
from actors.account.types import AccountState
from chain.crypto.keys import PrivateKey
from chain.crypto.randomness import DeterministicRandomness
from chain.encoding import dagcbor
from chain.params import DEVNET
from chain.state.tree import EMPTY_OBJECT_CID, Actor, StateTree
from chain.store.blockstore import Blockstore, put_cbor
from chain.types.address import Address
from chain.vm.tipset_apply import implicit_message
from chain.vm.vm import VM

BASE_FEE = 100


def bench_vm(tree: StateTree, epoch: int) -> VM:
    return VM(tree, epoch=epoch, base_fee=BASE_FEE, randomness=DeterministicRandomness(), policy=DEVNET)


def funded_state(
    store: Blockstore, keys: Sequence[PrivateKey], balance: int, *, empty_accounts: Sequence[Address] = ()
) -> StateTree:
    """The system and init actors (constructed through the VM), an empty account at each of
    `empty_accounts`, and an account holding `balance` for each key; flushed."""
    tree = StateTree.new(store)
    vm = bench_vm(tree, 0)
    for address, code, params in (
        (builtin.SYSTEM_ACTOR_ADDR, builtin.SYSTEM_ACTOR_CODE, b""),
        (builtin.INIT_ACTOR_ADDR, builtin.INIT_ACTOR_CODE, dagcbor.encode(["bench"])),
    ):
        tree.set_actor(address, Actor(code, EMPTY_OBJECT_CID, 0, 0))
        constructor = implicit_message(address, 1, params, nonce=0, gas_limit=1 << 40)
        if vm.apply_implicit_message(constructor).exit_code != 0:
            raise RuntimeError(f"constructing {address} failed")
    for address in empty_accounts:
        tree.set_actor(address, Actor(builtin.ACCOUNT_ACTOR_CODE, EMPTY_OBJECT_CID, 0, 0))
    for key in keys:
        address = Address.of_key(key)
        id_address = tree.register_new_address(address)
        head = put_cbor(store, AccountState(address).to_cbor())
        tree.set_actor(id_address, Actor(builtin.ACCOUNT_ACTOR_CODE, head, 0, balance))
    tree.flush()
    return tree
