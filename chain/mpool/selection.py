"""Choosing a block's messages from the pending ones (lotus chain/messagepool/selection.go, greedy).

Each sender's pending messages become chains: runs of consecutive nonces from the sender's state
nonce, cut where the gas limits would pass the block's, where a message's gas limit is under the cost
of storing it, or where the sender's balance could no longer pay for value plus GasFeeCap * GasLimit.
Within a sender, messages are grouped so that each chain has a better gas performance (the miner's
reward per unit of gas, scaled to a block) than the next one; chains of all senders are then taken
best first while they fit, and the tail is packed by trimming the chain that did not fit (which drops
the chains behind it of the same sender, keeping nonce order).

filpy always runs Lotus's greedy selection. Lotus switches to an "optimal" variant weighting chains by
the probability of the block being included when the ticket quality is at or below 0.84; with one
block per epoch (a devnet) the greedy choice is what that variant gives too.
"""

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from chain.crypto.signature import SigType
from chain.mpool.config import BLOCK_MESSAGE_LIMIT, BLOCK_SIG_TYPE_LIMIT
from chain.state.tree import Actor
from chain.types.address import Address
from chain.types.message import SignedMessage

# Lotus gasguess.MinGas: a chain needs at least this much room to be worth trimming into the block.
MIN_GAS: Final = 1_298_450
# A message paying less than the base fee costs the miner 3x its shortfall (Lotus getGasReward).
_PENALTY_MULTIPLIER: Final = 3


def gas_reward(msg: SignedMessage, base_fee: int) -> int:
    """What including msg earns the miner at this base fee (negative: what it costs it)."""
    m = msg.message
    premium = min(m.gas_fee_cap - base_fee, m.gas_premium)
    reward = premium * m.gas_limit
    return reward * _PENALTY_MULTIPLIER if reward < 0 else reward


def gas_perf(reward: int, gas_limit: int, block_gas_limit: int) -> float:
    """The reward scaled to a whole block's gas."""
    return reward * block_gas_limit / gas_limit


@dataclass(eq=False, slots=True)
class MsgChain:
    msgs: list[SignedMessage]
    gas_reward: int
    gas_limit: int
    gas_perf: float
    sig_type: int
    valid: bool = True
    next: "MsgChain | None" = field(default=None, repr=False)

    def sort_key(self) -> tuple[float, int]:
        """Best first: higher performance, then higher reward (Lotus msgChain.Before)."""
        return (-self.gas_perf, -self.gas_reward)

    def before(self, other: "MsgChain") -> bool:
        return self.gas_perf > other.gas_perf or (
            self.gas_perf == other.gas_perf and self.gas_reward > other.gas_reward
        )

    def invalidate(self) -> None:
        chain: MsgChain | None = self
        while chain is not None:
            chain.valid = False
            chain.msgs = []
            following = chain.next
            chain.next = None
            chain = following

    def trim(self, gas_limit: int, msg_limit: int, base_fee: int, block_gas_limit: int) -> None:
        """Drop messages from the end until the chain fits gas_limit and msg_limit and performs;
        the sender's later chains can no longer follow, so they are invalidated."""
        i = len(self.msgs) - 1
        while i >= 0 and (self.gas_limit > gas_limit or self.gas_perf < 0 or i >= msg_limit):
            dropped = self.msgs[i]
            self.gas_reward -= gas_reward(dropped, base_fee)
            self.gas_limit -= dropped.message.gas_limit
            self.gas_perf = (
                gas_perf(self.gas_reward, self.gas_limit, block_gas_limit) if self.gas_limit > 0 else 0.0
            )
            i -= 1
        if i < 0:
            self.msgs = []
            self.valid = False
        else:
            self.msgs = self.msgs[: i + 1]
        if self.next is not None:
            self.next.invalidate()
            self.next = None


def message_chains(
    msgs: Iterable[SignedMessage],
    actor: Actor | None,
    base_fee: int,
    min_gas: Callable[[SignedMessage], int],
    block_gas_limit: int,
) -> list[MsgChain]:
    """One sender's pending messages as chains in nonce order (Lotus createMessageChains)."""
    if actor is None:
        return []
    ordered = sorted(msgs, key=lambda m: m.message.nonce)
    nonce = actor.nonce
    balance = actor.balance
    total_gas = 0
    usable: list[SignedMessage] = []
    rewards: list[int] = []
    for msg in ordered:
        m = msg.message
        if m.nonce < nonce:
            continue  # already applied: its successors may still be good
        if m.nonce != nonce or m.gas_limit < min_gas(msg):
            break
        total_gas += m.gas_limit
        if total_gas > block_gas_limit:
            break
        cost = m.gas_fee_cap * m.gas_limit + m.value
        if balance < cost:
            break
        balance -= cost
        nonce += 1
        usable.append(msg)
        rewards.append(gas_reward(msg, base_fee))
    usable = usable[:BLOCK_MESSAGE_LIMIT]
    if not usable:
        return []

    def new_chain(i: int) -> MsgChain:
        msg = usable[i]
        limit = msg.message.gas_limit
        return MsgChain(
            [msg], rewards[i], limit, gas_perf(rewards[i], limit, block_gas_limit), int(msg.signature.type)
        )

    chains: list[MsgChain] = []
    current = new_chain(0)
    for i in range(1, len(usable)):
        reward = current.gas_reward + rewards[i]
        limit = current.gas_limit + usable[i].message.gas_limit
        perf = gas_perf(reward, limit, block_gas_limit)
        if perf < current.gas_perf:
            chains.append(current)
            current = new_chain(i)
        else:
            current.msgs.append(usable[i])
            current.gas_reward, current.gas_limit, current.gas_perf = reward, limit, perf
    chains.append(current)

    # Merge until every chain performs better than the one after it.
    merged = True
    while merged:
        merged = False
        for i in range(len(chains) - 1, 0, -1):
            later, earlier = chains[i], chains[i - 1]
            if later.valid and later.gas_perf >= earlier.gas_perf:
                earlier.msgs.extend(later.msgs)
                earlier.gas_reward += later.gas_reward
                earlier.gas_limit += later.gas_limit
                earlier.gas_perf = gas_perf(earlier.gas_reward, earlier.gas_limit, block_gas_limit)
                later.valid = False
                merged = True
        chains = [c for c in chains if c.valid]
    for earlier, later in itertools.pairwise(chains):
        earlier.next = later
    return chains


@dataclass(slots=True)
class Selection:
    """Messages chosen so far and the room left."""

    gas_limit: int
    msgs: list[SignedMessage] = field(default_factory=list)
    secp_limit: int = BLOCK_SIG_TYPE_LIMIT
    bls_limit: int = BLOCK_SIG_TYPE_LIMIT

    def _type_limit(self, sig_type: int) -> int:
        return self.bls_limit if sig_type == SigType.BLS else self.secp_limit

    def try_add(self, chain: MsgChain) -> bool:
        n = len(chain.msgs)
        if n + len(self.msgs) > BLOCK_MESSAGE_LIMIT or self.gas_limit < chain.gas_limit:
            return False
        if self._type_limit(chain.sig_type) < n:
            return False
        self.msgs.extend(chain.msgs)
        if chain.sig_type == SigType.BLS:
            self.bls_limit -= n
        else:
            self.secp_limit -= n
        self.gas_limit -= chain.gas_limit
        return True

    def trim_chain(self, chain: MsgChain, base_fee: int, block_gas_limit: int) -> None:
        msg_limit = min(BLOCK_MESSAGE_LIMIT - len(self.msgs), self._type_limit(chain.sig_type))
        if chain.gas_limit > self.gas_limit or len(chain.msgs) > msg_limit:
            chain.trim(self.gas_limit, msg_limit, base_fee, block_gas_limit)


def pack(chains: list[MsgChain], result: Selection, base_fee: int, block_gas_limit: int) -> None:
    """Add the best chains while they fit, then pack the tail by trimming (Lotus's merge and tail
    loops)."""
    chains.sort(key=MsgChain.sort_key)
    if not chains or chains[0].gas_perf < 0:
        return
    last = len(chains)
    for i, chain in enumerate(chains):
        if chain.gas_perf < 0:
            break
        if not result.try_add(chain):
            last = i
            break
    # Each pass either trims chains[last] (shrinking it or invalidating it) or ends, so it is bounded
    # by the number of messages.
    while result.gas_limit >= MIN_GAS and last < len(chains):
        result.trim_chain(chains[last], base_fee, block_gas_limit)
        if chains[last].valid:  # push it down to its place in the order
            i = last
            while i < len(chains) - 1 and not chains[i].before(chains[i + 1]):
                chains[i], chains[i + 1] = chains[i + 1], chains[i]
                i += 1
        blocked = None
        for i in range(last, len(chains)):
            chain = chains[i]
            if not chain.valid:
                continue
            if chain.gas_perf < 0:
                return
            if result.try_add(chain):
                chain.valid = False  # taken: never again
                continue
            blocked = i
            break
        if blocked is None:
            return
        last = blocked


def select_messages(
    pending: Mapping[Address, Mapping[int, SignedMessage]],
    actors: Callable[[Address], Actor | None],
    base_fee: int,
    min_gas: Callable[[SignedMessage], int],
    block_gas_limit: int,
    priority: Iterable[Address] = (),
) -> list[SignedMessage]:
    """A block's messages from the pending ones of each sender (keyed by key address): the priority
    senders' first, then everyone's by gas performance."""
    result = Selection(gas_limit=block_gas_limit)
    rest = dict(pending)
    first: list[MsgChain] = []
    for sender in priority:
        msgs = rest.pop(sender, None)
        if msgs:
            first += message_chains(msgs.values(), actors(sender), base_fee, min_gas, block_gas_limit)
    if first:
        pack(first, result, base_fee, block_gas_limit)
        if result.gas_limit < MIN_GAS or len(result.msgs) >= BLOCK_MESSAGE_LIMIT:
            return result.msgs
    chains: list[MsgChain] = []
    for sender, msgs in rest.items():
        chains += message_chains(msgs.values(), actors(sender), base_fee, min_gas, block_gas_limit)
    pack(chains, result, base_fee, block_gas_limit)
    return result.msgs
