"""A devnet chain whose beacon is drand (chain/consensus/drand.py) instead of Lotus's mock.

- Blocks carry the drand rounds of their epochs from the genesis on, and validation rejects a block
  carrying a bad one (another key's signature, a signature moved to another round, a skipped round, a
  mock entry).
- The interactive seal seed cannot be known before the pre-commit: a miner who guesses it as the mock
  beacon would give it (which on a mock chain is exactly the seed, so a seal can be faked for it) and
  proves with that guess fails ProveCommit on the drand chain; the proof for the seed the chain draws
  passes.
"""

from typing import Final

import pytest

from actors.miner.state import MinerState, PreCommits, Sectors
from actors.miner.types import MinerMethod, PreCommitSectorParams, ProveCommitSectorParams
from chain.consensus import validation as v
from chain.consensus.beacon import MOCK_ROUND_OFFSET, MockBeacon
from chain.consensus.drand import DrandKey
from chain.consensus.fullblock import FullBlock
from chain.crypto.randomness import DomainSeparationTag, draw_randomness, mock_beacon_data
from chain.encoding import dagcbor
from chain.params import DEVNET
from chain.store.blockstore import get_cbor
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.message import SignedMessage
from chain.vm.exitcode import ExitCode
from chain.vm.syscalls import sealed_cid
from proofs import seal
from proofs.registered import make_prover_id
from tests.consensus.devchain import DevChain, resigned
from tests.consensus.drandchain import INFO, drand_beacon, drand_genesis

SEAL_PROOF: Final = 5  # StackedDrg2KiBV1_1, the devnet miners' sectors


@pytest.fixture(scope="module")
def dc() -> DevChain:
    chain = DevChain.new(1, 2, genesis=drand_genesis(), beacon=drand_beacon())
    chain.advance(2)
    return chain


def test_blocks_carry_drand_rounds_from_the_genesis_on(dc: DevChain) -> None:
    assert dc.genesis.header.beacon_entries == (INFO.genesis_entry,)
    rounds: list[int] = []
    for block in dc.produced:
        rounds.extend(e.round for e in block.header.beacon_entries)
        assert [e.round for e in block.header.beacon_entries][-1] == block.header.height
    assert rounds == list(range(1, dc.head.height + 1))  # one round per epoch, none skipped
    # randomness is drawn from the signatures the blocks carry (blake2b of the entry's data)
    entry = dc.sm.beacon_entry(dc.head, 2)
    assert entry.round == 2 and len(entry.data) == 96
    tag, entropy = DomainSeparationTag.InteractiveSealChallengeSeed, b"x"
    drawn = dc.sm.draw_beacon_randomness(dc.head, tag, 2, entropy)
    assert drawn == draw_randomness(entry.data, tag, 2, entropy)


def next_block(dc: DevChain, gap: int) -> FullBlock:
    """A block `gap` epochs above the head (gap - 1 null rounds), from the first epoch one is won."""
    miner = dc.miners[0].id_address
    for epoch in range(dc.head.height + gap, dc.head.height + gap + 40):
        block = dc.produce(miner, epoch)
        if block is not None:
            return block
    raise AssertionError("the miner never won")


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        ("another key's signature", "does not verify"),
        ("a signature moved to another round", "does not verify"),
        ("a skipped round", "expected beacon entries for rounds"),
        ("the mock's entry", "a signature is 96 bytes"),
        ("no entries", "got none"),
    ],
)
def test_validation_rejects_a_block_carrying_a_bad_drand_entry(dc: DevChain, what: str, reason: str) -> None:
    good = next_block(dc, 3)
    dc.validate(good)
    entries = good.header.beacon_entries
    assert len(entries) >= 3
    first, last = entries[0], entries[-1]
    forged: tuple[BeaconEntry, ...]
    if what == "another key's signature":
        other = DrandKey.derive(b"not the beacon")
        forged = (*entries[:-1], BeaconEntry(last.round, other.sign_round(last.round, entries[-2].data)))
    elif what == "a signature moved to another round":
        forged = (BeaconEntry(first.round, entries[1].data), *entries[1:])
    elif what == "a skipped round":
        forged = (entries[0], *entries[2:])
    elif what == "the mock's entry":
        forged = (*entries[:-1], MockBeacon().entry(last.round))
    else:
        forged = ()
    worker = dc.miners[0].worker_key
    bad = resigned(good, worker, beacon_entries=forged)
    # a fresh beacon: nothing verified before, every check runs in full
    with pytest.raises(v.InvalidBeaconEntries, match=reason):
        v.validate_block(dc.sm, drand_beacon(), bad, now=bad.header.timestamp)


# -- the seal seed ---------------------------------------------------------------------------------------


def mock_seed_guess(miner: Address, seed_epoch: int) -> bytes:
    """The interactive seed as the mock beacon gives it: computable by anyone, for any epoch, ahead."""
    entropy = dagcbor.encode(miner.to_cbor())
    data = mock_beacon_data(seed_epoch + MOCK_ROUND_OFFSET)
    return draw_randomness(data, DomainSeparationTag.InteractiveSealChallengeSeed, seed_epoch, entropy)


def test_on_the_mock_chain_the_seed_is_known_in_advance() -> None:
    mock = DevChain.new(1, 2)
    mock.advance(3)
    miner = mock.miners[0].id_address
    entropy = dagcbor.encode(miner.to_cbor())
    tag = DomainSeparationTag.InteractiveSealChallengeSeed
    for epoch in (1, 2, 3):
        assert mock.sm.draw_beacon_randomness(mock.head, tag, epoch, entropy) == mock_seed_guess(miner, epoch)


def worker_message(dc: DevChain, method: int, params: object) -> SignedMessage:
    return dc.worker_message(dc.miners[0], method, params)


def include(dc: DevChain, message: SignedMessage) -> tuple[int, int]:
    """Mine the message into the next tipset and one more on top (whose parent state holds its
    receipt); its inclusion height and exit code."""
    included = dc.next_tipset([message]).height
    dc.next_tipset()
    found = dc.sm.search_msg(dc.head, message.cid())
    assert found is not None, "the message was not executed"
    return included, found.receipt.exit_code


def miner_state(dc: DevChain, miner: Address) -> MinerState:
    tree = dc.sm.tree(dc.sm.state_of(dc.head).state_root)
    actor = tree.get_actor(miner)
    assert actor is not None
    return MinerState.from_cbor(get_cbor(dc.store, actor.head))


@pytest.mark.parametrize("beacon", ["mock", "drand"])
def test_a_seal_for_a_seed_guessed_before_the_pre_commit(beacon: str) -> None:
    """On the mock chain the guess is the seed and its proof is accepted; on the drand chain the guess
    is wrong and ProveCommit refuses its proof, while the proof for the chain's seed passes."""
    if beacon == "drand":
        dc = DevChain.new(1, 2, genesis=drand_genesis(), beacon=drand_beacon())
    else:
        dc = DevChain.new(1, 2)
    dc.advance(1)
    miner = dc.miners[0].id_address
    number = 2  # the genesis holds sectors 0 and 1
    entropy = dagcbor.encode(miner.to_cbor())
    rand_epoch = dc.head.height
    ticket = dc.sm.draw_chain_randomness(dc.head, DomainSeparationTag.SealRandomness, rand_epoch, entropy)
    sealed = seal.seal(SEAL_PROOF, bytes(2048), make_prover_id(miner.id), number, ticket)
    expiration = dc.head.height + 1_000
    precommit_params = PreCommitSectorParams(
        SEAL_PROOF, number, sealed_cid(sealed.comm_r), rand_epoch, (), expiration
    )
    precommit = worker_message(dc, MinerMethod.PreCommitSector, precommit_params)

    # The miner picks the epoch its pre-commit lands in (the next one it mines) and, with the mock's
    # rule, the seed it will get: all before anything is on chain.
    next_epoch = dc.head.height + 1
    guessed = mock_seed_guess(miner, next_epoch + DEVNET.pre_commit_challenge_delay)
    guessed_proof = seal.prove_commit(sealed, guessed).to_bytes()

    included, code = include(dc, precommit)
    assert code == ExitCode.Ok and included == next_epoch  # the single miner wins every epoch
    info = PreCommits.load(dc.store, miner_state(dc, miner).pre_committed_sectors).get(number)
    assert info is not None and info.pre_commit_epoch == included
    seed_epoch = info.pre_commit_epoch + DEVNET.pre_commit_challenge_delay
    while dc.head.height <= seed_epoch:
        dc.next_tipset()
    seed = dc.sm.draw_beacon_randomness(
        dc.head, DomainSeparationTag.InteractiveSealChallengeSeed, seed_epoch, entropy
    )

    faked = worker_message(dc, MinerMethod.ProveCommitSector, ProveCommitSectorParams(number, guessed_proof))
    if beacon == "mock":
        assert seed == guessed  # known a whole challenge delay before it was "drawn"
        assert include(dc, faked)[1] == ExitCode.Ok
        return

    assert seed != guessed  # drand's round for the seed epoch was signed after the pre-commit
    # the proof for the guessed seed answers the wrong challenges: the actor's verification refuses it
    assert include(dc, faked)[1] == ExitCode.ErrIllegalArgument
    assert Sectors.load(dc.store, miner_state(dc, miner).sectors).get(number) is None
    # the proof for the chain's seed passes
    proof = seal.prove_commit(sealed, seed).to_bytes()
    honest = worker_message(dc, MinerMethod.ProveCommitSector, ProveCommitSectorParams(number, proof))
    assert include(dc, honest)[1] == ExitCode.Ok
    sector = Sectors.load(dc.store, miner_state(dc, miner).sectors).get(number)
    assert sector is not None and sector.sealed_cid == sealed_cid(sealed.comm_r)
