"""A chain on the VM alone, for scripted scenarios: one block per epoch, signed messages applied through
apply_tipset (cron at every epoch), randomness from a deterministic source, and Window PoSt provers
that answer their miners' deadlines with real proofs from proofs/post.py.

Every tipset also checks two ledgers: the sum of all balances never changes, and the burnt-funds actor
holds exactly the gas burns, the rewards burnt and the penalties the scenario declared (`expect_burn`),
so an unexpected penalty or leak fails the scenario at the tipset where it happens.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from actors import builtin
from actors.dispatch import encode_params
from actors.miner.deadlines import Deadline, Deadlines
from actors.miner.policy import DeadlineInfo
from actors.miner.state import MinerState
from actors.miner.types import MinerMethod, PoStPartition, SubmitWindowedPoStParams
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.randomness import (
    DeterministicRandomness,
    DomainSeparationTag,
    RandomnessSource,
    draw_randomness_from_digest,
)
from chain.crypto.signature import verify
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.params import Policy
from chain.state.tree import StateTree
from chain.store.blockstore import Blockstore, get_cbor
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.block import PoStProof
from chain.types.message import Message, SignedMessage, sign_message
from chain.vm.exitcode import ExitCode
from chain.vm.gas import GasOutputs
from chain.vm.tipset_apply import BlockMessages, TipsetResult, apply_tipset
from chain.vm.vm import ApplyRet
from proofs import post

BASE_FEE: Final = 100
GAS_LIMIT: Final = 3_000_000_000
FEE_CAP: Final = 200  # above the base fee; the premium is 0, so no tips reach the block producer


@dataclass(frozen=True, slots=True)
class Party:
    """A key holder who signs messages."""

    key: PrivateKey

    @property
    def address(self) -> Address:
        return Address.of_key(self.key)

    @classmethod
    def derive(cls, key_type: KeyType, name: str) -> "Party":
        return cls(PrivateKey.derive(key_type, f"scenario/{name}".encode()))


def gas_paid(ret: ApplyRet) -> int:
    """What the sender paid for gas (base fee burn, over-estimation burn and tip)."""
    out: GasOutputs = ret.gas_costs
    return out.base_fee_burn + out.over_estimation_burn + out.miner_tip


class SplitRandomness:
    """Up to the genesis (epoch 0) from `before` (a genesis block's), after it from `after`."""

    __slots__ = ("_after", "_before")

    def __init__(self, before: RandomnessSource | None, after: RandomnessSource) -> None:
        self._before = before
        self._after = after

    def _source(self, epoch: int) -> RandomnessSource:
        return self._before if self._before is not None and epoch <= 0 else self._after

    def chain_digest(self, epoch: int) -> bytes:
        return self._source(epoch).chain_digest(epoch)

    def beacon_digest(self, epoch: int) -> bytes:
        return self._source(epoch).beacon_digest(epoch)


@dataclass
class Prover:
    """Proves a miner's deadlines with the sectors it holds; `auto` makes every tipset do it on time."""

    miner: Address
    worker: Party
    post_proof: int
    sectors: dict[int, post.ProvingSector] = field(default_factory=dict)
    auto: bool = True
    posted: list[tuple[int, int]] = field(default_factory=list)  # (epoch, deadline index)


@dataclass
class Chain:
    store: Blockstore
    tree: StateTree
    policy: Policy
    randomness: RandomnessSource
    epoch: int
    producer: Address  # the miner of every block (an account burns its rewards, a miner keeps them)
    provers: list[Prover] = field(default_factory=list)
    expected_burnt: int = 0
    total: int = 0
    tipsets: int = 0
    sent: list[Message] = field(default_factory=list)
    roots: dict[int, CID] = field(default_factory=dict)  # the state after each tipset, by epoch

    def __post_init__(self) -> None:
        self.expected_burnt = self.balance(builtin.BURNT_FUNDS_ACTOR_ADDR)
        self.total = self.total_balance()
        self.roots[self.epoch] = self.tree.flush()

    def lookback_state(self, round_: int) -> StateTree:
        """The state an election at round_ looks back to (the state manager's rule on a chain without
        null rounds): after the tipset at round_ - finality, or the first state for early rounds."""
        target = max(round_ - self.policy.chain_finality, min(self.roots))
        if target >= self.epoch:
            raise ValueError(f"round {round_} looks back to {target}, not below epoch {self.epoch}")
        return StateTree.load(self.store, self.roots[max(e for e in self.roots if e <= target)])

    # -- reading the state ------------------------------------------------------------------------------
    def balance(self, address: Address) -> int:
        actor = self.tree.get_actor(address)
        assert actor is not None, f"no actor at {address}"
        return actor.balance

    def total_balance(self) -> int:
        return sum(actor.balance for _, actor in self.tree.actors())

    def state(self, address: Address, state_type: Any) -> Any:
        actor = self.tree.get_actor(address)
        assert actor is not None, f"no actor at {address}"
        return state_type.from_cbor(get_cbor(self.store, actor.head))

    def id_of(self, address: Address) -> Address:
        found = self.tree.lookup_id(address)
        assert found is not None, f"{address} has no ID"
        return found

    def draw_chain(self, tag: int, epoch: int, entropy: bytes) -> bytes:
        return draw_randomness_from_digest(self.randomness.chain_digest(epoch), tag, epoch, entropy)

    def draw_beacon(self, tag: int, epoch: int, entropy: bytes) -> bytes:
        return draw_randomness_from_digest(self.randomness.beacon_digest(epoch), tag, epoch, entropy)

    def expect_burn(self, amount: int) -> None:
        """The scenario expects this much more to reach the burnt-funds actor (a penalty, a fee)."""
        self.expected_burnt += amount

    # -- messages and tipsets ---------------------------------------------------------------------------
    def message(self, sender: Party, to: Address, method: int, params: Any = None, value: int = 0) -> Message:
        nonce_actor = self.tree.get_actor(sender.address)
        assert nonce_actor is not None, f"sender {sender.address} has no actor"
        return Message(
            to=to,
            from_=sender.address,
            nonce=nonce_actor.nonce,
            value=value,
            gas_limit=GAS_LIMIT,
            gas_fee_cap=FEE_CAP,
            gas_premium=0,
            method=method,
            params=encode_params(params),
        )

    def tipset(self, signed: Sequence[tuple[Party, Message]] = ()) -> TipsetResult:
        """The next epoch's tipset: one block by the producer with these messages (nonces assigned in
        order per sender; signed here, BLS ones carried unsigned as a block carries them, after checking
        their signatures) and the provers' PoSts. Checks the ledgers afterwards; `self.sent` holds the
        scenario's messages as applied."""
        epoch = self.epoch + 1
        nonces: dict[Address, int] = {}
        bls: list[Message] = []
        secp: list[SignedMessage] = []
        self.sent = []
        posts: set[Any] = set()
        for i, (party, draft) in enumerate([*signed, *self._posts(epoch)]):
            sender = party.address
            if sender not in nonces:
                nonces[sender] = draft.nonce
            msg = replace(draft, nonce=nonces[sender])
            nonces[sender] += 1
            if i < len(signed):
                self.sent.append(msg)
            else:
                posts.add(msg.cid())
            smsg = sign_message(msg, party.key)
            if party.key.type is KeyType.BLS:
                verify(smsg.signature, sender, msg.signing_bytes())
                bls.append(msg)
            else:
                secp.append(smsg)
        reward_before = self.balance(builtin.REWARD_ACTOR_ADDR)
        result = apply_tipset(
            self.store,
            self.tree.flush(),
            self.epoch,
            epoch,
            [BlockMessages(self.producer, bls_messages=bls, secpk_messages=secp)],
            base_fee=BASE_FEE,
            randomness=self.randomness,
            policy=self.policy,
            tree=self.tree,
            lookback_state=self.lookback_state,
        )
        self.epoch = epoch
        self.roots[epoch] = result.state_root
        self.tipsets += 1
        for cid, ret in result.applied:
            self.expected_burnt += ret.gas_costs.base_fee_burn + ret.gas_costs.over_estimation_burn
            assert cid not in posts or ret.exit_code == 0, f"epoch {epoch}: a Window PoSt failed: {ret.error}"
        producer = self.tree.get_actor(self.producer)
        assert producer is not None
        if producer.code != builtin.MINER_ACTOR_CODE:
            # An account refuses ApplyRewards: the reward actor burns the block reward.
            self.expected_burnt += reward_before - self.balance(builtin.REWARD_ACTOR_ADDR)
        assert self.total_balance() == self.total, f"epoch {epoch}: the balances no longer add up"
        burnt = self.balance(builtin.BURNT_FUNDS_ACTOR_ADDR)
        assert burnt == self.expected_burnt, (
            f"epoch {epoch}: burnt funds {burnt}, expected {self.expected_burnt} "
            f"(off by {burnt - self.expected_burnt})"
        )
        return result

    def apply(self, sender: Party, to: Address, method: int, params: Any = None, value: int = 0) -> ApplyRet:
        """One message in the next tipset; returns what applying it gave (the caller checks the code)."""
        result = self.tipset([(sender, self.message(sender, to, method, params, value))])
        (msg,) = self.sent
        for cid, ret in result.applied:
            if cid == msg.cid():
                return ret
        raise AssertionError("the message was not applied")

    def ok(self, sender: Party, to: Address, method: int, params: Any = None, value: int = 0) -> Any:
        """apply() that must succeed; returns the decoded return value (None if empty)."""
        ret = self.apply(sender, to, method, params, value)
        assert ret.exit_code == ExitCode.Ok, f"method {method} to {to} failed: {ret.exit_code} {ret.error}"
        data = ret.receipt.return_data
        return dagcbor.decode(data) if data else None

    def advance_to(self, epoch: int) -> None:
        """Empty tipsets (with the provers' PoSts) until the chain is at epoch."""
        assert epoch >= self.epoch, f"cannot go back from {self.epoch} to {epoch}"
        while self.epoch < epoch:
            self.tipset()

    # -- Window PoSt ------------------------------------------------------------------------------------
    def deadline_info(self, miner: Address, epoch: int | None = None) -> DeadlineInfo:
        state = self.state(miner, MinerState)
        at = self.epoch + 1 if epoch is None else epoch
        return DeadlineInfo.from_epoch(self.policy, state.proving_period_start, at)

    def deadline(self, miner: Address, index: int) -> Deadline:
        state = self.state(miner, MinerState)
        return Deadlines.load(self.store, state.deadlines).get(self.store, index)

    def locate(self, miner: Address, sector: int) -> tuple[int, int]:
        """(deadline, partition) holding a sector."""
        for index in range(self.policy.wpost_period_deadlines):
            for p_index, partition in self.deadline(miner, index).load_partitions(self.store).items():
                if sector in partition.sectors:
                    return index, p_index
        raise AssertionError(f"sector {sector} of {miner} is in no deadline")

    def post_message(self, prover: Prover, epoch: int) -> Message | None:
        """The SubmitWindowedPoSt the prover sends at epoch, if its current deadline is open and has
        partitions with sectors to prove that are not proven yet."""
        info = self.deadline_info(prover.miner, epoch)
        if not info.is_open():
            return None
        deadline = self.deadline(prover.miner, info.index)
        partitions: list[PoStPartition] = []
        proven: list[int] = []
        for index, partition in deadline.load_partitions(self.store).items():
            if index in deadline.partitions_posted:
                continue
            active = partition.live() - (partition.faults - partition.recoveries)
            if not active:
                continue
            partitions.append(PoStPartition(index, BitField()))
            proven.extend(active)
        if not partitions:
            return None
        entropy = dagcbor.encode(prover.miner.to_cbor())
        randomness = self.draw_beacon(DomainSeparationTag.WindowedPoStChallengeSeed, info.challenge, entropy)
        proof = post.generate_window_post(prover.post_proof, randomness, [prover.sectors[n] for n in proven])
        commit_epoch = epoch - 1
        params = SubmitWindowedPoStParams(
            deadline=info.index,
            partitions=tuple(partitions),
            proofs=(PoStProof(prover.post_proof, proof.to_bytes()),),
            chain_commit_epoch=commit_epoch,
            chain_commit_rand=self.draw_chain(DomainSeparationTag.PoStChainCommit, commit_epoch, b""),
        )
        return self.message(prover.worker, prover.miner, MinerMethod.SubmitWindowedPoSt, params)

    def _posts(self, epoch: int) -> list[tuple[Party, Message]]:
        posts = []
        for prover in self.provers:
            if not prover.auto:
                continue
            msg = self.post_message(prover, epoch)
            if msg is not None:
                posts.append((prover.worker, msg))
                prover.posted.append((epoch, self.deadline_info(prover.miner, epoch).index))
        return posts


def chain_randomness(before: RandomnessSource | None, seed: bytes) -> SplitRandomness:
    return SplitRandomness(before, DeterministicRandomness(seed))
