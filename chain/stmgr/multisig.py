"""Multisig queries on a state tree (Lotus MsigGetAvailableBalance, MsigGetVested, MsigGetPending):
what a multisig may spend given its vesting schedule, and its pending transactions."""

from actors import builtin
from actors.multisig.types import MultisigState, Transaction
from actors.util.keys import parse_i64_key
from chain.encoding.errors import DecodeError
from chain.state.hamt import DEFAULT_BITWIDTH, Hamt
from chain.state.tree import StateTree
from chain.stmgr.actors import StateQueryError, get_actor, read_actor_state
from chain.store.blockstore import BlockNotFound
from chain.types.address import Address


def multisig_state(tree: StateTree, address: Address) -> MultisigState:
    if get_actor(tree, address).code != builtin.MULTISIG_ACTOR_CODE:
        raise StateQueryError(f"{address} is not a multisig actor")
    state: MultisigState = read_actor_state(tree, address, MultisigState)
    return state


def locked_balance(state: MultisigState, epoch: int) -> int:
    """What the vesting schedule still locks at epoch (Lotus multisig State.LockedBalance)."""
    return state.amount_locked(epoch - state.start_epoch)


def available_balance(tree: StateTree, address: Address, epoch: int) -> int:
    """The multisig's balance less what is still locked at epoch."""
    balance = get_actor(tree, address).balance
    return balance - locked_balance(multisig_state(tree, address), epoch)


def vested_between(tree: StateTree, address: Address, start: int, end: int) -> int:
    """What vested between two epochs (the schedule read from this state)."""
    state = multisig_state(tree, address)
    return locked_balance(state, start) - locked_balance(state, end)


def pending_transactions(tree: StateTree, address: Address) -> list[tuple[int, Transaction]]:
    """The multisig's pending transactions by ID, in ID order."""
    state = multisig_state(tree, address)
    try:
        pending = Hamt.load(tree.store, state.pending_txs, DEFAULT_BITWIDTH)
        found = [(parse_i64_key(key), Transaction.from_cbor(raw)) for key, raw in pending.items()]
    except (BlockNotFound, DecodeError) as exc:
        raise StateQueryError(f"pending transactions of {address}: {exc}") from None
    return sorted(found, key=lambda item: item[0])
